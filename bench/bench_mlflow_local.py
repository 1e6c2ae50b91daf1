"""Benchmarks of the local MLflow flavor, each figure printed beside its target.

- cold deploy to first prediction vs a bare `mlflow models serve` of the same model
- an in-place update under steady load: requests sent, failed, longest gap
- predict() latency vs raw HTTP to the same endpoint
- the `make demo` run after set-up, and the import time of `modeldeploy`

Run: .venv/bin/python bench/bench_mlflow_local.py
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _table import median, percentile, print_table  # noqa: E402

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
PY = sys.executable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def save_models(root: Path) -> tuple[Path, Path, dict]:
    import warnings

    import mlflow.sklearn
    from sklearn.datasets import load_iris
    from sklearn.dummy import DummyClassifier
    from sklearn.linear_model import LogisticRegression

    warnings.simplefilter("ignore")
    features, target = load_iris(return_X_y=True, as_frame=True)
    first, second = root / "a", root / "b"
    reqs = mlflow.sklearn.get_default_pip_requirements()
    mlflow.sklearn.save_model(
        LogisticRegression(max_iter=500).fit(features, target),
        first,
        input_example=features.head(2),
        pip_requirements=reqs,
    )
    mlflow.sklearn.save_model(
        DummyClassifier(strategy="constant", constant=2).fit(features, target),
        second,
        input_example=features.head(2),
        pip_requirements=reqs,
    )
    body = {"dataframe_split": json.loads(features.head(4).to_json(orient="split", index=False))}
    return first, second, body


def connect(port: int) -> http.client.HTTPConnection:
    """A raw HTTP client as a careful one is written: TCP_NODELAY, as urllib3 sets it."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.connect()
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return conn


def post(port: int, body: bytes, conn: http.client.HTTPConnection | None = None) -> int:
    own = conn is None
    conn = conn or connect(port)
    try:
        conn.request("POST", "/invocations", body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        if own:
            conn.close()


def wait_first_answer(port: int, body: bytes, started: float, limit: float = 180) -> float:
    while time.monotonic() - started < limit:
        try:
            if post(port, body) == 200:
                return time.monotonic() - started
        except OSError:
            pass
        time.sleep(0.02)
    raise TimeoutError(f"no answer on port {port} after {limit}s")


def bare_mlflow_serve(model: Path, body: bytes) -> float:
    port = free_port()
    started = time.monotonic()
    proc = subprocess.Popen(
        [
            PY,
            "-m",
            "mlflow",
            "models",
            "serve",
            "-m",
            str(model),
            "-p",
            str(port),
            "--env-manager",
            "local",
            "-h",
            "127.0.0.1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        # `mlflow models serve` runs a bare `uvicorn`, found on PATH: the venv's bin.
        env={**os.environ, "PATH": f"{Path(PY).parent}:{os.environ.get('PATH', '')}"},
    )
    try:
        return wait_first_answer(port, body, started)
    finally:
        os.killpg(proc.pid, 15)
        proc.wait()


def cold_deploy(home: Path, model: Path, body: dict) -> tuple[float, str]:
    """A fresh process deploys and predicts once; timed from process start."""
    script = (
        "import json, sys; from modeldeploy import create_deployer;"
        f"d = create_deployer('mlflow', {{'home': {str(home)!r}}});"
        f"s = d.deploy_model({{'model_name': 'bench', 'model_uri': {str(model)!r}}}, timeout=300);"
        f"s.predict({json.dumps(body)}); print(s.uuid)"
    )
    started = time.monotonic()
    out = subprocess.run([PY, "-c", script], capture_output=True, text=True, check=True)
    return time.monotonic() - started, out.stdout.strip()


class Load:
    """Steady requests on fresh connections (and one keep-alive client) during an update."""

    def __init__(self, port: int, body: bytes) -> None:
        self.port, self.body = port, body
        self.stop = threading.Event()
        self.sent = self.failed = self.retried = 0
        self.longest_gap = 0.0
        self.lock = threading.Lock()

    def run(self, keep_alive: bool) -> None:
        last_ok = time.monotonic()
        conn = connect(self.port) if keep_alive else None
        while not self.stop.is_set():
            try:
                ok = post(self.port, self.body, conn) == 200
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                if conn is None:
                    ok = False
                else:
                    # The server closed this idle keep-alive connection as the request
                    # left: no response byte came back, so like urllib3 and browsers do
                    # for idempotent requests, reconnect and send it again (counted).
                    conn.close()
                    conn = connect(self.port)
                    self.retried += 1
                    ok = post(self.port, self.body, conn) == 200
            except OSError:
                ok = False
            now = time.monotonic()
            with self.lock:
                self.sent += 1
                if ok:
                    self.longest_gap = max(self.longest_gap, now - last_ok)
                    last_ok = now
                else:
                    self.failed += 1


def main() -> None:
    from modeldeploy.flavors.mlflow.deployer import MLflowModelDeployer

    rows: list[tuple[str, str, str, bool | None]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        first, second, body = save_models(root)
        raw_body = json.dumps(body).encode()

        bare = median([bare_mlflow_serve(first, raw_body) for _ in range(2)])
        ours, uuid = cold_deploy(root / "home", first, body)
        rows.append(
            ("bare `mlflow models serve` to first answer", f"{bare:.2f} s", "reference", None)
        )
        rows.append(
            (
                "cold deploy to first prediction",
                f"{ours:.2f} s ({ours / bare:.2f}x)",
                "<= 1.2x bare",
                ours <= 1.2 * bare,
            )
        )

        deployer = MLflowModelDeployer({"home": root / "home"})
        server = deployer.get_model_server(uuid)
        port = server.config.port
        assert port is not None

        # predict() vs raw HTTP on a persistent connection, interleaved to share the noise.
        conn = connect(port)
        ours_lat, raw_lat = [], []
        for _ in range(300):
            t = time.perf_counter()
            server.predict(body)
            ours_lat.append(time.perf_counter() - t)
            t = time.perf_counter()
            post(port, raw_body, conn)
            raw_lat.append(time.perf_counter() - t)
        p_ours, p_raw = median(ours_lat) * 1000, median(raw_lat) * 1000
        rows.append(
            (
                "predict() p50 vs raw HTTP p50",
                f"{p_ours:.2f} ms vs {p_raw:.2f} ms ({p_ours / p_raw:.2f}x)",
                "within 10%",
                p_ours <= 1.1 * p_raw,
            )
        )
        rows.append(("predict() p95", f"{percentile(ours_lat, 95) * 1000:.2f} ms", "-", None))

        for keep_alive in (False, True):
            load = Load(port, raw_body)
            worker = threading.Thread(target=load.run, args=(keep_alive,), daemon=True)
            worker.start()
            time.sleep(1.0)  # steady state before the update
            new_model = second if not keep_alive else first
            t = time.monotonic()
            result = deployer.deploy(
                {"model_name": "bench", "model_uri": str(new_model)}, timeout=300
            )
            update_s = time.monotonic() - t
            time.sleep(1.0)
            load.stop.set()
            worker.join()
            kind = "keep-alive client" if keep_alive else "new connection per request"
            assert result.action == "updated" and result.server.config.port == port
            rows.append(
                (
                    f"update under load ({kind}): sent / failed / retried",
                    f"{load.sent} / {load.failed} / {load.retried}",
                    "0 failed",
                    load.failed == 0,
                )
            )
            rows.append(
                (
                    f"update under load ({kind}): longest gap",
                    f"{load.longest_gap * 1000:.0f} ms (update took {update_s:.1f} s)",
                    "< 100 ms",
                    load.longest_gap < 0.1,
                )
            )

        deployer.delete_model_server(uuid, timeout=60)

    demo_home = Path(tempfile.mkdtemp())
    env = {**os.environ, "MODELDEPLOY_HOME": str(demo_home)}
    times = []
    for _ in range(2):  # the first run creates, the second updates in place
        t = time.monotonic()
        subprocess.run(  # what `make demo` runs: the Airflow DAG under dag.test()
            [PY, str(ROOT / "example_dags/run_airflow_demo.py")],
            env=env,
            check=True,
            capture_output=True,
        )
        times.append(time.monotonic() - t)
    MLflowModelDeployer({"home": demo_home}).find_model_server()[0].delete(force=True)
    for label, took in zip(("first (creates)", "second (updates in place)"), times, strict=True):
        rows.append((f"`make demo` after set-up, {label}", f"{took:.1f} s", "< 20 s", took < 20))

    imports = []
    for _ in range(5):
        t = time.monotonic()
        subprocess.run(
            [PY, "-c", "import modeldeploy, modeldeploy.flavors.mlflow.deployer"], check=True
        )
        imports.append(time.monotonic() - t)
    baseline = []
    for _ in range(5):
        t = time.monotonic()
        subprocess.run([PY, "-c", "import pydantic"], check=True)
        baseline.append(time.monotonic() - t)
    extra = (median(imports) - median(baseline)) * 1000
    rows.append(
        (
            "import modeldeploy + mlflow flavor (over pydantic)",
            f"{extra:.0f} ms",
            "informational",
            None,
        )
    )
    print_table("local MLflow flavor", rows)


if __name__ == "__main__":
    main()
