"""The local daemon behind one model server: holds the port, runs MLflow's scoring server.

Run as `python -m modeldeploy.flavors.mlflow.supervisor <server-dir>` in a session of its own.
It binds the port once and hands the listening socket to each scoring-server child
(`uvicorn --fd`). An in-place update starts the new child on the same socket, waits
until it has loaded the model, then retires the old one: the port and URL never change
and no request is refused. If the new model fails to load, the old child keeps serving.

While the record names a challenger, both variants run on private loopback ports and the
traffic router (`router.py`, asyncio in a thread of this process) accepts on the public
socket instead; when the challenger is promoted or removed, a child on the public socket
takes over again and the router drains. See `routing.py` for that half.

Stdlib only, so the daemon starts in milliseconds and survives the process that made it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modeldeploy.flavors.mlflow.records import (
    DAEMON,
    DEFAULT_LOG_MAX_BYTES,
    LOG,
    RECORD,
    STATUS,
    RotatingLog,
    daemon_identity,
    read_json,
    write_json,
)

if TYPE_CHECKING:
    from modeldeploy.flavors.mlflow.routing import Routing

# uvicorn prints the first once per worker after the app (and so the model) has loaded,
# and the second once it accepts on the socket (after the app with one worker, before
# the workers with several); ready means both.
STARTED_MARKER = "Application startup complete"
SERVING_MARKER = "Uvicorn running on"
SERVER_DIR_ENV = "MODELDEPLOY_SERVER_DIR"
GRACE_SECONDS = 10.0
RESTART_BACKOFF = (1.0, 2.0, 5.0, 10.0, 30.0)
# Ask the kernel to SIGTERM the scoring server if its supervisor dies, then exec it.
_PDEATHSIG_EXEC = (
    "import ctypes, os, signal, sys; "
    "ctypes.CDLL(None).prctl(1, signal.SIGTERM); "
    "os.execv(sys.argv[1], sys.argv[1:])"
)


def _now() -> str:
    return datetime.now(UTC).isoformat()


class Child:
    """One scoring-server process serving one generation."""

    def __init__(self, generation: int, spec: dict[str, Any], sock: socket.socket, log: Log):
        self.generation = generation
        self.spec = spec
        self.ready = threading.Event()
        self.tail: deque[str] = deque(maxlen=20)
        self._workers = int(spec.get("workers", 1))
        self._started = 0
        self._serving = False
        argv = [a.replace("{fd}", str(sock.fileno())) for a in spec["argv"]]
        env = {**os.environ, **spec.get("env", {}), SERVER_DIR_ENV: log.server_dir}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _PDEATHSIG_EXEC, *argv],
            env=env,
            pass_fds=(sock.fileno(),),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
        self._reader = threading.Thread(target=self._pump, args=(log,), daemon=True)
        self._reader.start()

    def _pump(self, log: Log) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            log.write(line)
            self.tail.append(line.rstrip())
            self._started += STARTED_MARKER in line
            self._serving = self._serving or SERVING_MARKER in line
            if self._serving and self._started >= self._workers:
                self.ready.set()

    def exited(self) -> bool:
        return self.proc.poll() is not None

    def failure(self) -> str:
        self._reader.join(timeout=2)
        lines = [line for line in self.tail if line.strip()]
        detail = " | ".join(lines[-5:]) or "no output"
        return f"scoring server exited with code {self.proc.returncode}: {detail}"

    def terminate(self, grace: float = GRACE_SECONDS) -> None:
        """SIGTERM lets uvicorn finish in-flight requests; SIGKILL after the grace period."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(timeout=2)


class Log:
    def __init__(self, server_dir: Path, max_bytes: int = DEFAULT_LOG_MAX_BYTES) -> None:
        self.server_dir = str(server_dir)
        self._file = RotatingLog(server_dir / LOG, max_bytes, redirect_std=True)
        self._lock = threading.Lock()

    def write(self, line: str) -> None:
        with self._lock:
            self._file.write(line if line.endswith("\n") else line + "\n")

    def note(self, message: str) -> None:
        self.write(f"{_now()} [modeldeploy] {message}")


class Supervisor:
    def __init__(self, server_dir: Path) -> None:
        self.dir = server_dir
        config = (read_json(server_dir / RECORD) or {}).get("config", {})
        self.log = Log(server_dir, int(config.get("log_max_bytes") or DEFAULT_LOG_MAX_BYTES))
        self.wake = threading.Event()
        self.stopping = False
        self.active: Child | None = None
        self.pending: Child | None = None
        self.failed_generation: int | None = None
        self.last_error: str | None = None
        self.crashes = 0
        self.restart_at = 0.0
        self.sock: socket.socket | None = None
        self.routing: Routing | None = None  # set while a challenger exists or drains

    # -- status ------------------------------------------------------------------------

    def publish(self, state: str) -> None:
        record = read_json(self.dir / RECORD) or {}
        config = record.get("config", {})
        observed = self.active.generation if self.active else None
        if self.routing is not None and self.routing.serving_generation is not None:
            observed = self.routing.serving_generation if observed is None else observed
        write_json(
            self.dir / STATUS,
            {
                "state": state,
                "traffic": self.routing.report() if self.routing is not None else None,
                "observed_generation": observed,
                "failed_generation": self.failed_generation,
                "last_error": self.last_error,
                "host": config.get("host"),
                "port": config.get("port"),
                "child_pid": self.active.proc.pid if self.active else None,
                # lets a deploy that puts this model back reuse it: no restart (deployer.py)
                "serving_launch": self.active.spec if self.active else None,
                "updated_at": _now(),
            },
        )

    # -- lifecycle ---------------------------------------------------------------------

    def bind(self, host: str, port: int) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted connections inherit this. uvicorn would set it itself, but it treats an
        # inherited `--fd` socket as AF_UNIX and skips it: 40 ms Nagle stalls per request.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        sock.listen(2048)
        sock.set_inheritable(True)
        self.sock = sock

    def run(self) -> int:
        record = read_json(self.dir / RECORD)
        if record is None:
            self.log.note("no record.json; nothing to serve")
            return 2
        config = record["config"]
        try:
            self.bind(config["host"], int(config["port"]))
        except OSError as exc:
            self.last_error = (
                f"cannot listen on {config['host']}:{config['port']}: {exc.strerror}; "
                "free the port or deploy with another one"
            )
            self.log.note(self.last_error)
            self.publish("error")
            return 1
        self.log.note(f"listening on {config['host']}:{config['port']} (pid {os.getpid()})")
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_stop)
        signal.signal(signal.SIGHUP, lambda *_: self.wake.set())
        self.publish("pending_startup")
        while not self.stopping:
            self.step()
            busy = self.pending or (self.routing is not None and self.routing.busy())
            self.wake.wait(0.05 if busy else 0.25)
            self.wake.clear()
        self.shutdown()
        return 0

    def _on_stop(self, *_: object) -> None:
        self.stopping = True
        self.wake.set()

    def step(self) -> None:
        record = read_json(self.dir / RECORD)
        if record is None:  # the record was deleted under us: stop serving
            self.stopping = True
            return
        desired, spec = int(record["generation"]), record["launch"]
        assert self.sock is not None
        if (record.get("traffic") or {}).get("challenger") or self.routing is not None:
            from modeldeploy.flavors.mlflow.routing import Routing

            self.routing = self.routing or Routing(self)
            if self.routing.step(record):
                return  # routed: the router serves, no child on the public socket
            if self.routing.finished():
                self.routing = None
                self.publish("active" if self.active else "pending_startup")

        if self.pending is not None:
            if self.pending.ready.is_set():
                self._promote_pending()
            elif self.pending.exited():
                self.failed_generation = self.pending.generation
                self.last_error = self.pending.failure()
                self.log.note(f"generation {self.pending.generation} failed: {self.last_error}")
                self.pending = None
                self.publish("active" if self.active else "error")
            elif self.pending.generation != desired:
                self.log.note(f"generation {self.pending.generation} superseded by {desired}")
                self.pending.terminate(grace=2)
                self.pending = None
            return

        if self.active is not None and self.active.exited():
            self.last_error = self.active.failure()
            self.log.note(f"scoring server died: {self.last_error}")
            self.active = None
            self.crashes += 1
            delay = RESTART_BACKOFF[min(self.crashes - 1, len(RESTART_BACKOFF) - 1)]
            self.restart_at = time.monotonic() + delay
            self.publish("error")
            return

        if self.active is not None and self.active.generation >= desired:
            return
        if self.active is not None and self.active.spec == spec:
            # Same model and settings (e.g. a reverted rollout): acknowledge, no restart.
            self.active.generation = desired
            self.failed_generation = None
            self.publish("active")
            return
        if self.failed_generation == desired or time.monotonic() < self.restart_at:
            return
        self.log.note(f"starting scoring server for generation {desired}")
        self.pending = Child(desired, spec, self.sock, self.log)
        if self.active is None and self.routing is None:
            self.publish("pending_startup")

    def _promote_pending(self) -> None:
        """Both children accept on the socket now; retire the old one, then say so.

        The new generation is published only once the old scoring server has exited
        (after finishing its in-flight requests), so when a deploy returns, every new
        request is answered by the new model.
        """
        assert self.pending is not None
        old, self.active, self.pending = self.active, self.pending, None
        self.failed_generation = None
        self.last_error = None
        self.crashes = 0
        if old is not None:
            self.log.note(f"retiring generation {old.generation}")
            old.terminate()
        self.log.note(f"generation {self.active.generation} is serving")
        self.publish("active")

    def shutdown(self) -> None:
        self.log.note("stopping")
        with contextlib.suppress(FileNotFoundError):
            self.publish("pending_shutdown")
        if self.routing is not None:
            self.routing.close()
        for child in (self.pending, self.active):
            if child is not None:
                child.terminate()
        self.active = self.pending = None
        if self.sock is not None:
            self.sock.close()
        if (self.dir / RECORD).exists():
            self.publish("inactive")
        (self.dir / DAEMON).unlink(missing_ok=True)
        self.log.note("stopped")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m modeldeploy.flavors.mlflow.supervisor SERVER_DIR", file=sys.stderr)
        return 2
    server_dir = Path(args[0]).resolve()
    lock = (server_dir / "supervisor.lock").open("w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return 0  # another supervisor already serves this record
    write_json(server_dir / DAEMON, daemon_identity(os.getpid()))
    try:
        return Supervisor(server_dir).run()
    except Exception as exc:
        Log(server_dir).note(f"supervisor crashed: {exc!r}")
        with contextlib.suppress(Exception):
            status = read_json(server_dir / STATUS) or {}
            write_json(server_dir / STATUS, {**status, "state": "error", "last_error": repr(exc)})
        raise
    finally:
        (server_dir / DAEMON).unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main())
