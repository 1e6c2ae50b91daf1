"""A real MLServer (the Open Inference Protocol reference runtime) serving a small sklearn
model on loopback, from a virtualenv of its own.

MLServer cannot share the main venv (it pins fastapi below what Airflow needs), so it lives
in `.venv-mlserver` beside it, built with `uv` the first time it is needed. The model is
trained by that venv's own scikit-learn, so the pickle matches the runtime that loads it.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".venv-mlserver"
UV = ROOT / ".venv" / "bin" / "uv"
PACKAGES = ("mlserver", "mlserver-sklearn")

TRAIN = """
import json, sys, joblib
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
X, y = load_iris(return_X_y=True)
model = LogisticRegression(max_iter=1000).fit(X, y)
joblib.dump(model, sys.argv[1] + "/model.joblib")
print(json.dumps(model.predict(X[[0, 100]]).tolist()))
"""


class MLServerUnavailable(RuntimeError):
    """MLServer could not be installed or started here; the message says why."""


@dataclass
class MLServer:
    url: str
    model_name: str
    expected: list[int]  # what the model predicts for IRIS_ROWS


IRIS_ROWS = [[5.1, 3.5, 1.4, 0.2], [6.3, 3.3, 6.0, 2.5]]


def ensure_venv() -> Path:
    """Build `.venv-mlserver` once (under a file lock, so parallel workers wait for it)."""
    python = VENV / "bin" / "python"
    lock = ROOT / ".venv" / ".mlserver-venv.lock"  # inside the ignored main venv
    with open(lock, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        if (VENV / "bin" / "mlserver").exists():
            return python
        steps = [
            [
                str(UV),
                "venv",
                str(VENV),
                "--python",
                f"{sys.version_info[0]}.{sys.version_info[1]}",
            ],
            [str(UV), "pip", "install", "--python", str(python), *PACKAGES],
        ]
        for step in steps:
            done = subprocess.run(step, capture_output=True, text=True, timeout=600)
            if done.returncode != 0:
                raise MLServerUnavailable(
                    f"`{' '.join(step)}` failed ({done.returncode}): {done.stderr[-2000:]}"
                )
    return python


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def run_mlserver(workdir: Path, model_name: str, timeout: float = 180.0) -> Iterator[MLServer]:
    python = ensure_venv()
    model_dir = workdir / model_name
    model_dir.mkdir(parents=True)
    trained = subprocess.run(
        [str(python), "-c", TRAIN, str(model_dir)], capture_output=True, text=True, timeout=300
    )
    if trained.returncode != 0:
        raise MLServerUnavailable(f"training the test model failed: {trained.stderr[-2000:]}")
    expected = json.loads(trained.stdout.strip().splitlines()[-1])
    (model_dir / "model-settings.json").write_text(
        json.dumps(
            {
                "name": model_name,
                "implementation": "mlserver_sklearn.SKLearnModel",
                "parameters": {"uri": "./model.joblib", "version": "v1"},
            }
        )
    )
    http_port, grpc_port, metrics_port = _free_port(), _free_port(), _free_port()
    (workdir / "settings.json").write_text(
        json.dumps(
            {
                "host": "127.0.0.1",
                "http_port": http_port,
                "grpc_port": grpc_port,
                "metrics_port": metrics_port,
                "parallel_workers": 0,
                "debug": False,
            }
        )
    )
    proc = subprocess.Popen(
        [str(VENV / "bin" / "mlserver"), "start", str(workdir)],
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    ready = threading.Event()
    output: list[str] = []
    banner = f"Uvicorn running on http://127.0.0.1:{http_port}"

    def pump() -> None:  # read MLServer's log; its own banner says when HTTP is up
        assert proc.stdout is not None
        for line in proc.stdout:
            output.append(line)
            if banner in line:
                ready.set()
        ready.set()

    threading.Thread(target=pump, daemon=True).start()
    try:
        if not ready.wait(timeout) or proc.poll() is not None:
            raise MLServerUnavailable("MLServer did not start: " + "".join(output[-30:])[-3000:])
        url = f"http://127.0.0.1:{http_port}"
        import urllib.request

        with urllib.request.urlopen(f"{url}/v2/models/{model_name}/ready", timeout=10) as resp:
            if resp.status != 200:
                raise MLServerUnavailable(f"MLServer is up but model {model_name} is not ready")
        yield MLServer(url, model_name, expected)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
