"""MLflow scoring servers of the data plane: one per model URI, started once, shared.

Each is what `mlflow models serve --env-manager local` runs (uvicorn over
`mlflow.pyfunc.scoring_server`, the command MLflow itself builds), on a loopback socket we
bind first and hand over with `--fd`, in a session of its own so closing stops its group.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path

import yaml

REQUEST_TIMEOUT = 60


def signature_columns(model_dir: str) -> list[str] | None:
    """Input column names from the model's signature (None: tensor or no signature)."""
    meta = yaml.safe_load((Path(model_dir) / "MLmodel").read_text()) or {}
    inputs = (meta.get("signature") or {}).get("inputs")
    if not inputs:
        return None
    specs = json.loads(inputs) if isinstance(inputs, str) else inputs
    names = [s.get("name") for s in specs if isinstance(s, dict) and s.get("type") != "tensor"]
    columns = [n for n in names if isinstance(n, str)]
    return columns if columns and len(columns) == len(names) else None


class ScoringServer:
    """One scoring-server process serving one local model folder."""

    def __init__(self, model_uri: str, model_dir: str) -> None:
        from mlflow.pyfunc import scoring_server

        if not (Path(model_dir) / "MLmodel").is_file():
            raise ValueError(
                f"{model_dir!r} (for {model_uri}) is no MLflow model folder: it has no MLmodel"
            )
        self.model_uri, self.model_dir = model_uri, model_dir
        self.columns = signature_columns(model_dir)
        self._ready = threading.Event()
        self._tail: deque[str] = deque(maxlen=20)
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(128)
        self.port = int(self._sock.getsockname()[1])
        command, env = scoring_server.get_cmd(model_dir, None, None, REQUEST_TIMEOUT, 1)
        fd = self._sock.fileno()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--fd", str(fd), *command.split()[1:]],
            env={**os.environ, **env},
            pass_fds=(fd,),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._pump, daemon=True, name="scoring-log")
        self._reader.start()

    def _pump(self) -> None:
        from modeldeploy.flavors.mlflow.supervisor import SERVING_MARKER, STARTED_MARKER

        assert self.proc.stdout is not None
        started = serving = False
        for line in self.proc.stdout:
            self._tail.append(line.rstrip())
            started = started or STARTED_MARKER in line
            serving = serving or SERVING_MARKER in line
            if started and serving:
                self._ready.set()

    @property
    def ready(self) -> bool:
        return self._ready.is_set() and self.proc.poll() is None

    def failure(self) -> str | None:
        if self.proc.poll() is None:
            return None
        self._reader.join(timeout=2)
        lines = " | ".join(line for line in list(self._tail)[-5:] if line.strip())
        return f"scoring server for {self.model_uri} exited ({self.proc.returncode}): {lines}"

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.1):
            failure = self.failure()
            if failure:
                raise RuntimeError(failure)
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"scoring server for {self.model_uri} not ready after {timeout:.0f} s: "
                    + " | ".join(self._tail)
                )

    def close(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._reader.join(timeout=2)
        self._sock.close()


class ScoringServers:
    """Model URI -> its scoring server."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._servers: dict[str, ScoringServer] = {}

    def register(self, model_uri: str, model_dir: str) -> None:
        with self._lock:
            known = self._servers.get(model_uri)
            if known is not None:
                if Path(known.model_dir).resolve() != Path(model_dir).resolve():
                    raise ValueError(
                        f"{model_uri} is already served from {known.model_dir}; one storage "
                        "URI maps to one model (register a new URI for a new model)"
                    )
                return
            self._servers[model_uri] = ScoringServer(model_uri, model_dir)

    def get(self, model_uri: str) -> ScoringServer | None:
        return self._servers.get(model_uri)

    def ready(self, model_uri: str) -> bool:
        server = self._servers.get(model_uri)
        return server is not None and server.ready

    def wait_ready(self, model_uri: str, timeout: float) -> None:
        server = self._servers.get(model_uri)
        if server is None:
            raise KeyError(f"no model registered for {model_uri}; call register_model first")
        server.wait_ready(timeout)

    def close(self) -> None:
        with self._lock:
            servers, self._servers = list(self._servers.values()), {}
        for server in servers:
            server.close()
