"""Shared by the progressive-delivery tests and bench/bench_progressive.py.

- `SteadyClient`: a thread that keeps sending predictions through the public URL and
  records every answer, so a test can count failed requests and the longest silence;
- `Prometheus`: the real Debian `prometheus` on loopback, scraping targets from a file;
- `save_erroring_model`: an MLflow model that loads fine and fails every prediction.
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import json
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Answer:
    at: float
    ok: bool
    prediction: Any = None
    error: str | None = None


@dataclass
class SteadyClient:
    """Sends `rows` to `url` back to back (one connection, like a real client) until stopped."""

    url: str
    rows: dict[str, Any]
    pause: float = 0.002
    answers: list[Answer] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> SteadyClient:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=30)

    def _run(self) -> None:
        parts = urlsplit(self.url)
        body = json.dumps(self.rows).encode()
        conn: http.client.HTTPConnection | None = None
        while not self._stop.is_set():
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(parts.netloc, timeout=30)
                conn.request("POST", parts.path, body, {"Content-Type": "application/json"})
                response = conn.getresponse()
                text = response.read().decode()
                if response.status == 200:
                    prediction = json.loads(text)["predictions"][0]
                    self.answers.append(Answer(time.monotonic(), True, prediction))
                else:
                    self.answers.append(Answer(time.monotonic(), False, error=text[:200]))
            except (OSError, http.client.HTTPException) as exc:
                self.answers.append(Answer(time.monotonic(), False, error=repr(exc)))
                if conn is not None:
                    conn.close()
                conn = None
            if self.pause:
                time.sleep(self.pause)
        if conn is not None:
            conn.close()

    def wait_for(self, count: int, timeout: float = 60.0) -> None:
        """Until `count` more answers arrived (the server is really being used)."""
        target = len(self.answers) + count
        end = time.monotonic() + timeout
        while len(self.answers) < target:
            if time.monotonic() > end:
                raise AssertionError(f"only {len(self.answers)} answers, wanted {target}")
            time.sleep(0.01)

    @property
    def failures(self) -> list[Answer]:
        return [a for a in self.answers if not a.ok]

    def longest_gap(self) -> float:
        times = [a.at for a in self.answers if a.ok]
        return max((b - a for a, b in itertools.pairwise(times)), default=0.0)

    def predictions(self, since: float = 0.0) -> Counter[Any]:
        return Counter(a.prediction for a in self.answers if a.ok and a.at >= since)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Prometheus:
    """A real Prometheus on loopback; `scrape(metrics_url)` adds a target and waits for it."""

    def __init__(self, workdir: Path, scrape_interval: str = "500ms") -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            raise RuntimeError("prometheus is not installed; run `make prometheus`")
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.targets = workdir / "targets.json"
        self.targets.write_text("[]")
        config = workdir / "prometheus.yml"
        config.write_text(
            "global:\n"
            f"  scrape_interval: {scrape_interval}\n"
            f"  evaluation_interval: {scrape_interval}\n"
            "scrape_configs:\n"
            "  - job_name: modeldeploy\n"
            "    file_sd_configs:\n"
            f"      - files: ['{self.targets}']\n"
            "        refresh_interval: 1s\n"
        )
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self._log = (workdir / "prometheus.log").open("w")
        self.process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--web.enable-lifecycle",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._until(lambda: self._get("/-/ready") is not None, "ready")

    def _get(self, path: str) -> Any:
        with (
            contextlib.suppress(OSError, ValueError),
            urllib.request.urlopen(self.url + path, timeout=2) as response,
        ):
            text = response.read().decode()
            return json.loads(text) if path.startswith("/api/") else text
        return None

    def _until(self, predicate: Any, what: str, timeout: float = 60.0) -> None:
        end = time.monotonic() + timeout
        while not predicate():
            if self.process.poll() is not None or time.monotonic() > end:
                raise RuntimeError(
                    f"prometheus not {what}: {(self.workdir / 'prometheus.log').read_text()}"
                )
            time.sleep(0.1)

    def scrape(self, metrics_url: str) -> None:
        parts = urlsplit(metrics_url)
        self.targets.write_text(
            json.dumps([{"targets": [parts.netloc], "labels": {"__metrics_path__": parts.path}}])
        )

        def up() -> bool:
            body = self._get("/api/v1/targets")
            active = (body or {}).get("data", {}).get("activeTargets", [])
            return any(
                t["labels"].get("instance") == parts.netloc and t["health"] == "up" for t in active
            )

        self._until(up, f"scraping {metrics_url}")

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()


ERRORING_MODEL = '''
import mlflow.pyfunc
from mlflow.models import set_model


class AlwaysFails(mlflow.pyfunc.PythonModel):
    """Loads fine, fails every prediction: a deliberately bad challenger."""

    def predict(self, context, model_input, params=None):
        raise RuntimeError("this challenger is broken on purpose")


set_model(AlwaysFails())
'''


def save_erroring_model(root: Path) -> Path:
    import mlflow.pyfunc

    code = root / "always_fails.py"
    code.write_text(ERRORING_MODEL)
    target = root / "always-fails"
    mlflow.pyfunc.save_model(
        str(target),
        python_model=str(code),
        pip_requirements=["mlflow"],
    )
    return target
