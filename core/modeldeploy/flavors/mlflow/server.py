"""A model server backed by a local supervisor daemon and its MLflow scoring server."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, cast
from uuid import UUID

from modeldeploy.errors import ModelDeployError, PlatformError
from modeldeploy.flavors.mlflow.config import MLflowServerConfig
from modeldeploy.flavors.mlflow.records import (
    DAEMON,
    LOG,
    RECORD,
    STATUS,
    SUPERVISOR_MODULE,
    live_daemon_pid,
    read_json,
    tail_lines,
    write_json,
)
from modeldeploy.flavors.mlflow.supervisor import SERVER_DIR_ENV
from modeldeploy.flavors.mlflow.traffic import LocalTrafficControl
from modeldeploy.redaction import redact
from modeldeploy.status import ServiceState, ServiceStatus

if TYPE_CHECKING:
    from modeldeploy.flavors.mlflow.deployer import MLflowModelDeployer
    from modeldeploy.http import JsonClient

from modeldeploy.server import ModelServer

LAUNCH_GRACE_SECONDS = 10.0
#: who launched the daemon last, and its pid once spawned (the daemon writes STATUS itself)
LAUNCH = "launch.json"
KEEPER_MODULE = "modeldeploy.flavors.mlflow.keeper"


class MLflowModelServer(LocalTrafficControl, ModelServer):
    """Implements `modeldeploy.traffic.TrafficControl` (see `traffic.py`)."""

    flavor: ClassVar[str] = "mlflow"
    config: MLflowServerConfig

    def __init__(
        self,
        deployer: MLflowModelDeployer,
        server_dir: Path,
        record: dict[str, Any],
    ) -> None:
        config = MLflowServerConfig.model_validate(
            {k: v for k, v in record["config"].items() if k != "flavor"}
        )
        created = datetime.fromisoformat(record["created_at"])
        status = ServiceStatus(
            generation=int(record["generation"]), created_at=created, updated_at=created
        )
        super().__init__(UUID(record["uuid"]), config, status)
        self._deployer = deployer
        self.dir = server_dir
        self._record = record
        self._client: JsonClient | None = None
        self._reconcile(read_json(server_dir / STATUS))

    # -- status ------------------------------------------------------------------------

    @property
    def prediction_url(self) -> str | None:
        host = self.config.host
        host = f"[{host}]" if ":" in host else host
        if host in ("0.0.0.0", "[::]"):
            host = "127.0.0.1"
        return f"http://{host}:{self.config.port}/invocations"

    def where(self) -> str:
        return f"{self.config.model_name} on {self.config.host}:{self.config.port}"

    def _reconcile(self, status: dict[str, Any] | None) -> None:
        """Turn the daemon's status file and the process table into a ServiceStatus."""
        s = self.status
        s.generation = int(self._record["generation"])
        status = status or {}
        s.observed_generation = status.get("observed_generation")
        s.last_error = status.get("last_error")
        if status.get("updated_at"):
            s.updated_at = datetime.fromisoformat(status["updated_at"])
        if live_daemon_pid(self.dir) is None and _launch_in_progress(self.dir, status):
            s.state = ServiceState.PENDING_STARTUP
            return
        if live_daemon_pid(self.dir) is None:
            # No supervisor: stopped, never started, crashed, or its pid now belongs to
            # another program. Nothing serves; drop the stale pid record and any orphan.
            if (self.dir / DAEMON).exists():
                (self.dir / DAEMON).unlink(missing_ok=True)
                _kill_orphans(self.dir)
                if status.get("state") not in (None, "inactive", "error"):
                    status = self._record_crash(status)
                    s.last_error = status["last_error"]
            s.observed_generation = None
            s.state = (
                ServiceState.ERROR if status.get("state") == "error" else ServiceState.INACTIVE
            )
            return
        state = status.get("state", "pending_startup")
        if status.get("failed_generation") == s.generation:
            s.state = ServiceState.ERROR
            s.observed_generation = s.generation
        else:
            s.state = ServiceState(state)

    def _record_crash(self, status: dict[str, Any]) -> dict[str, Any]:
        """A supervisor gone without stopping: failed (not stopped) until started again."""
        lines = redact(" | ".join(tail_lines(self.dir / LOG, 5))) or "empty"
        crashed = {
            **status,
            "state": "error",
            "last_error": (
                f"the daemon exited without stopping cleanly (killed or crashed); start it "
                f"with `modeldeploy models start {self.uuid}` or deploy again. Last lines of "
                f"{self.dir / LOG}: {lines}"
            ),
            "updated_at": _now(),
        }
        write_json(self.dir / STATUS, crashed)
        return crashed

    def check_status(self) -> ServiceStatus:
        record = read_json(self.dir / RECORD)
        if record is None:
            self.status.state = ServiceState.INACTIVE
            self.status.last_error = "the server's record is gone (deleted)"
            return self.status
        self._record = record
        self._reconcile(read_json(self.dir / STATUS))
        return self.status

    # -- verbs -------------------------------------------------------------------------

    def update(self, config: Any) -> None:
        new = cast(MLflowServerConfig, self._deployer.parse_config(config))
        if new.port is not None and new.port != self.config.port:
            raise ModelDeployError(
                f"server {self.uuid} listens on port {self.config.port}; an in-place update "
                f"keeps its port and URL, so port {new.port} cannot be applied. Leave the port "
                "unset, or deploy with replace=False to start a second server"
            )
        new = new.model_copy(update={"port": self.config.port, "host": self.config.host})
        # Fresh from disk: another process may have added a challenger (traffic.py) since.
        current = read_json(self.dir / RECORD) or self._record
        generation = int(current["generation"]) + 1
        serving = (read_json(self.dir / STATUS) or {}).get("serving_launch")
        launch = self._deployer.prepare_launch(self.dir, new, generation, current, serving)
        record = {
            **current,
            "config": new.to_record(),
            "generation": generation,
            "launch": launch,
            "updated_at": _now(),
        }
        write_json(self.dir / RECORD, record)
        self._record = record
        self.config = new
        self.status.generation = generation
        self._signal(signal.SIGHUP)
        if self.status.state == ServiceState.ERROR and live_daemon_pid(self.dir) is None:
            self.start()  # its supervisor died: the deploy brings it back
        self.check_status()

    def start(self) -> None:
        if live_daemon_pid(self.dir) is not None:
            return
        _kill_orphans(self.dir)
        write_json(self.dir / LAUNCH, {"launcher": os.getpid()})
        write_json(self.dir / STATUS, {"state": "pending_startup", "launched_at": time.time()})
        module = KEEPER_MODULE if self.config.restart_policy == "on-failure" else SUPERVISOR_MODULE
        with (self.dir / LOG).open("a") as log:
            daemon = subprocess.Popen(
                [sys.executable, "-m", module, str(self.dir)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
                close_fds=True,
                cwd=self.dir,
            )
        # beside the status, which the daemon itself writes from now on
        write_json(self.dir / LAUNCH, {"launcher": os.getpid(), "launched_pid": daemon.pid})
        self.status.state = ServiceState.PENDING_STARTUP

    def stop(self, force: bool = False) -> None:
        pid = live_daemon_pid(self.dir)
        if pid is None:
            self.check_status()
            return
        if force:
            with contextlib.suppress(ProcessLookupError):
                # the group of its session: the supervisor's, or its keeper's
                os.killpg(os.getpgid(pid), signal.SIGKILL)
            _kill_orphans(self.dir)
            (self.dir / DAEMON).unlink(missing_ok=True)
        else:
            self._signal(signal.SIGTERM)
        self.status.state = ServiceState.PENDING_SHUTDOWN

    def delete(self, force: bool = False) -> None:
        self.stop(force=force)
        if not force:
            deadline = time.monotonic() + 15
            while live_daemon_pid(self.dir) is not None and time.monotonic() < deadline:
                time.sleep(0.02)
            if live_daemon_pid(self.dir) is not None:
                self.stop(force=True)
        _kill_orphans(self.dir)
        tomb = self.dir.with_name(f".deleted-{self.dir.name}")
        with contextlib.suppress(FileNotFoundError):
            os.replace(self.dir, tomb)  # atomic: the record vanishes at once
        shutil.rmtree(tomb, ignore_errors=True)

    def is_deleted(self) -> bool:
        return not self.dir.exists()

    def _signal(self, sig: signal.Signals) -> None:
        pid = live_daemon_pid(self.dir)
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    # -- logs and predictions ----------------------------------------------------------

    def logs(self, follow: bool = False, tail: int | None = None) -> Iterator[str]:
        path = self.dir / LOG
        if not path.exists():
            if not self.dir.exists():
                raise PlatformError(f"model server {self.uuid} was deleted; it has no logs")
            return
        with path.open("r", errors="replace") as handle:
            lines = handle.readlines()
            yield from (
                line.rstrip("\n")
                for line in (lines[-tail:] if tail else [] if tail == 0 else lines)
            )
            while follow:
                line = handle.readline()
                if line:
                    yield line.rstrip("\n")
                elif not self.dir.exists():
                    return
                elif _rotated(path, handle):
                    handle.close()
                    handle = path.open("r", errors="replace")
                else:
                    time.sleep(0.1)

    def predict(self, data: Any) -> Any:
        """POST `data` to MLflow's `/invocations`; DataFrames go as `dataframe_split`."""
        from modeldeploy.http import JsonClient

        if self._client is None:
            self._client = JsonClient(timeout=self.config.request_timeout)
        url = self.prediction_url
        assert url is not None
        answer = self._client.post_json(url, to_invocation_payload(data).encode())
        return answer.get("predictions", answer) if isinstance(answer, dict) else answer


def to_invocation_payload(data: Any) -> str:
    """Encode data in one of the input formats MLflow's scoring server accepts."""
    import json

    if isinstance(data, (str, bytes)):
        return data.decode() if isinstance(data, bytes) else data
    if (
        isinstance(data, dict)
        and {"dataframe_split", "dataframe_records", "inputs", "instances"} & data.keys()
    ):
        return json.dumps(data)
    module = type(data).__module__
    if module.startswith("pandas"):
        return json.dumps({"dataframe_split": dataframe_split(data)})
    if module.startswith("numpy"):
        return json.dumps({"inputs": data.tolist()})
    if isinstance(data, dict):
        return json.dumps(
            {"dataframe_split": {"columns": list(data), "data": [list(data.values())]}}
        )
    return json.dumps({"inputs": data})


def dataframe_split(frame: Any) -> dict[str, Any]:
    """A DataFrame as MLflow's `dataframe_split`, floats exact (not pandas' 10 digits).

    `DataFrame.to_json` rounds to `double_precision` (at most 15) digits, so live answers
    would differ from local ones; float columns are taken from the values instead, whose
    JSON (`repr`) round-trips. Other columns keep pandas' encoding (dates as ISO text).
    """
    import json
    import math

    if not hasattr(frame, "columns"):  # a Series: one column
        frame = frame.to_frame()
    split = json.loads(frame.to_json(orient="split", index=False, date_format="iso"))
    for index, dtype in enumerate(frame.dtypes):
        if dtype.kind == "f":
            values = frame.iloc[:, index].tolist()
            for row, value in zip(split["data"], values, strict=True):
                row[index] = None if math.isnan(value) else value
    return dict(split)


def _rotated(path: Path, handle: Any) -> bool:
    """True once `path` names another file than the one `handle` reads (log rotation)."""
    try:
        return os.stat(path).st_ino != os.fstat(handle.fileno()).st_ino
    except FileNotFoundError:
        return False


def _launch_in_progress(server_dir: Path, status: dict[str, Any]) -> bool:
    """A daemon launched moments ago may not have registered its pid yet. A launch whose
    launcher died before it spawned the daemon, or whose daemon already exited, is none
    (a deploy killed at that moment must not leave the next one waiting for it)."""
    launched = status.get("launched_at")
    if not (isinstance(launched, float) and 0 <= time.time() - launched < LAUNCH_GRACE_SECONDS):
        return False
    launch = read_json(server_dir / LAUNCH) or {}
    pid = launch.get("launched_pid", launch.get("launcher"))
    return not isinstance(pid, int) or _alive(pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _now() -> str:
    from datetime import UTC

    return datetime.now(UTC).isoformat()


def _kill_orphans(server_dir: Path) -> None:
    """Kill scoring servers of this record left behind by a supervisor that was killed."""
    marker = f"{SERVER_DIR_ENV}={server_dir}".encode()
    me = os.getpid()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == me:
            continue
        try:
            environ = (proc / "environ").read_bytes()
        except OSError:
            continue
        if marker in environ.split(b"\0"):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(proc.name), signal.SIGKILL)
