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
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.steady_client import SteadyClient as RouterSteadyClient


@dataclass
class Answer:
    at: float
    ok: bool
    prediction: Any = None


class SteadyClient(RouterSteadyClient):
    """The router's steady client (one keep-alive connection, requests back to back, a
    request the server dropped unanswered on an idle connection sent once more), plus when
    each answer came and which model gave it (`timeline`)."""

    def __init__(self, url: str, rows: dict[str, Any], pause: float = 0.002) -> None:
        port = urlsplit(url).port
        assert port is not None and urlsplit(url).path == "/invocations", url
        super().__init__(port, json.dumps(rows).encode(), accept=self._record)
        self.pause = pause
        self.timeline: list[Answer] = []

    def _record(self, status: int, answer: bytes) -> bool:
        ok = status == 200
        prediction = json.loads(answer)["predictions"][0] if ok else None
        self.timeline.append(Answer(time.monotonic(), ok, prediction))
        return ok

    def _post(self, conn: http.client.HTTPConnection) -> tuple[int, bytes]:
        if self.pause:
            time.sleep(self.pause)  # leave the shared CPUs to the servers under test
        return super()._post(conn)

    def wait_for(self, count: int, timeout: float = 120.0) -> None:
        """Until `count` more answers arrived (the server is really being used)."""
        target = self.sent + count
        end = time.monotonic() + timeout
        while self.sent < target:
            if time.monotonic() > end:
                raise AssertionError(f"only {self.sent} answers, wanted {target}")
            time.sleep(0.01)

    def longest_gap(self) -> float:
        times = [a.at for a in self.timeline if a.ok]
        return max((b - a for a, b in itertools.pairwise(times)), default=0.0)

    def predictions(self, since: int = 0) -> Counter[Any]:
        """Which answers clients got, from the `since`-th answer on."""
        return Counter(a.prediction for a in self.timeline[since:] if a.ok)


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
