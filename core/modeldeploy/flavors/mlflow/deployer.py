"""The embedded default deployer: servers are local daemons recorded under MODELDEPLOY_HOME."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import shutil
import socket
import sys
import tempfile
import time
import uuid as uuid_lib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, ClassVar, cast

from modeldeploy.config import ServiceConfig
from modeldeploy.deployer import ModelDeployer, ServerQuery
from modeldeploy.errors import InvalidConfigError
from modeldeploy.flavors.mlflow.config import MLflowDeployerSettings, MLflowServerConfig
from modeldeploy.flavors.mlflow.hygiene import check_host, check_private_dir, prune_models
from modeldeploy.flavors.mlflow.records import (
    RECORD,
    DamagedRecordError,
    read_json_strict,
    write_json,
)
from modeldeploy.flavors.mlflow.server import MLflowModelServer
from modeldeploy.home import default_home
from modeldeploy.progressive.queries import ROUTER
from modeldeploy.redaction import get_logger
from modeldeploy.traffic import Capability
from modeldeploy.version import __version__

logger = get_logger("modeldeploy")

STALE_STAGING_SECONDS = 3600
MLFLOW_APP = "mlflow.pyfunc.scoring_server.app:app"
#: the same app, imported through a module that makes a retiring server end keep-alive
#: connections cleanly (see graceful.py)
GRACEFUL_APP = "modeldeploy.flavors.mlflow.graceful:app"


class MLflowModelDeployer(ModelDeployer):
    """Serves models with `mlflow.pyfunc.scoring_server` on this machine, no cluster needed."""

    flavor: ClassVar[str] = "mlflow"
    config_class: ClassVar[type[ServiceConfig]] = MLflowServerConfig
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {
            Capability.TRAFFIC_SPLIT,
            Capability.MIRROR,
            Capability.SIDE_BY_SIDE,
            Capability.SPLIT_AGREEMENT,
            Capability.VARIANT_URLS,
        }
    )
    metric_queries = ROUTER
    settings_class = MLflowDeployerSettings
    settings: MLflowDeployerSettings

    def __init__(self, settings: MLflowDeployerSettings | dict[str, Any] | None = None) -> None:
        super().__init__(settings)
        self.home = (self.settings.home or default_home()).expanduser().resolve()
        self.servers_dir = self.home / "servers"
        self._home_checked = False
        self._staged: dict[str, Path] = {}
        #: record files skipped by the last listing, and why
        self.damaged: dict[str, str] = {}

    def _check_home(self) -> None:
        """Before the home is first read or written (not when the deployer is made, so a
        deployer that only parses configs needs no home)."""
        if not self._home_checked:
            check_private_dir(self.home, "the mlflow flavor's home (MODELDEPLOY_HOME)")
            check_private_dir(self.servers_dir, "its servers directory")
            self._home_checked = True

    def close(self) -> None:
        """Remove model copies staged by `validate_deploy` that no deploy consumed."""
        for staged in self._staged.values():
            _remove_staging(staged, self.servers_dir)
        self._staged.clear()

    @property
    def tracking_uri(self) -> str:
        from modeldeploy.home import default_tracking_uri

        self._check_home()
        return (
            self.settings.tracking_uri
            or os.environ.get("MLFLOW_TRACKING_URI")
            or default_tracking_uri(self.home)
        )

    def location(self) -> str:
        return f"home {self.home}"

    def scope(self) -> str:
        return str(self.home)

    # -- records ---------------------------------------------------------------------

    def _list_servers(self, query: ServerQuery) -> Iterable[MLflowModelServer]:
        self._check_home()
        if not self.servers_dir.is_dir():
            return []
        if query.service_uuid is not None:
            candidates = [self.servers_dir / str(query.service_uuid)]
        else:
            candidates = [p for p in self.servers_dir.iterdir() if not p.name.startswith(".")]
        servers = []
        self.damaged = {}
        for server_dir in candidates:
            try:
                server = self._load_server(server_dir)
            except DamagedRecordError as exc:
                self.damaged[str(server_dir / RECORD)] = str(exc)
                logger.warning(
                    "skipping model server record: %s; fix or remove that folder (other "
                    "servers are unaffected)",
                    exc,
                )
                continue
            if server is not None:
                servers.append(server)
                prune_models(server_dir, server._record, server.status)
        self._collect_garbage()
        return servers

    def _load_server(self, server_dir: Path) -> MLflowModelServer | None:
        """The server recorded in `server_dir`; None if there is none (yet)."""
        if server_dir.is_symlink():
            raise DamagedRecordError(f"{server_dir} is a symbolic link, which is not followed")
        record = read_json_strict(server_dir / RECORD)
        if record is None:
            return None
        try:
            return MLflowModelServer(self, server_dir, record)
        except KeyError as exc:
            raise DamagedRecordError(f"{server_dir / RECORD} has no {exc} field") from None
        except (ValueError, TypeError) as exc:
            problem = " ".join(str(exc).split())[:300]
            raise DamagedRecordError(f"{server_dir / RECORD} is not valid: {problem}") from None

    def _collect_garbage(self) -> None:
        """Remove what a process killed half way left behind: staging and deleted folders."""
        now = time.time()
        for path in self.servers_dir.iterdir():
            if path.is_symlink() or not path.is_dir():
                continue
            unfinished = path.name.startswith(".staging-") or (
                not path.name.startswith(".") and not (path / RECORD).exists()
            )
            with contextlib.suppress(FileNotFoundError):
                if (
                    path.name.startswith(".deleted-")
                    or _orphaned_staging(path)
                    or (unfinished and now - path.stat().st_mtime > STALE_STAGING_SECONDS)
                ):
                    shutil.rmtree(path, ignore_errors=True)

    def _make_dirs(self) -> None:
        """Home and servers directory, private to this user."""
        self._check_home()
        self.home.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.servers_dir.mkdir(mode=0o700, exist_ok=True)

    @contextlib.contextmanager
    def _deploy_lock(self, config: ServiceConfig) -> Iterator[None]:
        self._make_dirs()
        with (self.servers_dir / ".deploy.lock").open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # -- validation ------------------------------------------------------------------

    def validate_deploy(self, config: ServiceConfig) -> None:
        """Resolve and download the model now, so a bad URI is refused before any change."""
        assert isinstance(config, MLflowServerConfig)
        check_host(config.host)
        if (
            config.port is not None
            and not self._is_ours(config)
            and not _port_free(config.host, config.port)
        ):
            raise InvalidConfigError(
                f"port {config.port} on {config.host} is already in use; pick another port or "
                "leave it unset to get a free one"
            )
        self._stage_model(config.model_uri)

    def _is_ours(self, config: MLflowServerConfig) -> bool:
        """True if an equivalent server of ours already holds the port (in-place update)."""
        return any(
            cast(MLflowServerConfig, s.config).port == config.port
            for s in self.find_model_server(
                pipeline_name=config.pipeline_name,
                pipeline_step_name=config.step_name,
                model_name=config.model_name,
            )
        )

    def _stage_model(self, model_uri: str) -> Path:
        staged = self._staged.get(model_uri)
        if staged is not None and staged.exists():
            return staged
        self._make_dirs()
        # The pid in the name lets a later listing remove it once this process is gone.
        target = Path(tempfile.mkdtemp(prefix=f".staging-{os.getpid()}-", dir=self.servers_dir))
        try:
            local = self._download(model_uri, target)
        except BaseException:
            shutil.rmtree(target, ignore_errors=True)
            raise
        self._staged[model_uri] = local
        return local

    def _download(self, model_uri: str, target: Path) -> Path:
        from modeldeploy.flavors import registry_for

        path = Path(model_uri.removeprefix("file://")).expanduser()
        if "://" not in model_uri and ":/" not in model_uri and not path.exists():
            raise InvalidConfigError(
                f"model URI {model_uri} does not exist; pass the path of a saved MLflow model "
                "or a runs:/, models:/ or storage URI"
            )
        import mlflow

        registry = registry_for(self)
        try:
            with registry.using_tracking_uri():
                local = Path(mlflow.artifacts.download_artifacts(model_uri, dst_path=str(target)))
        except Exception as exc:
            raise InvalidConfigError(
                f"cannot fetch model {model_uri} (tracking URI {registry!r}): "
                f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}; check the URI "
                "and that the run or registered version exists"
            ) from None
        mlmodel = local / "MLmodel"
        if not mlmodel.is_file():
            raise InvalidConfigError(
                f"{model_uri} is not an MLflow model (no MLmodel file); save it with "
                "mlflow.<flavor>.save_model or log_model"
            )
        from mlflow.models import Model

        try:
            flavors = Model.load(str(mlmodel)).flavors
        except Exception as exc:
            raise InvalidConfigError(f"{model_uri} has an unreadable MLmodel file: {exc}") from None
        if "python_function" not in flavors:
            raise InvalidConfigError(
                f"{model_uri} has no python_function flavor (it has {', '.join(flavors)}), so "
                "MLflow's scoring server cannot load it; log it with a pyfunc-capable flavor"
            )
        return local

    # -- launch ----------------------------------------------------------------------

    def prepare_launch(
        self,
        server_dir: Path,
        config: MLflowServerConfig,
        generation: int,
        current: dict[str, Any] | None = None,
        serving: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Place the model's files in the server folder and return the scoring-server command.

        A config that only repeats what is recorded or what still serves (same model URI and
        settings) reuses its launch, so reverting a failed or interrupted rollout restarts
        nothing: the supervisor acknowledges a launch equal to its serving one.
        """
        fingerprint = _fingerprint(config)
        for launch in ((current or {}).get("launch"), serving):
            if launch and launch.get("fingerprint") == fingerprint:
                return cast("dict[str, Any]", launch)
        staged = self._stage_model(config.model_uri)
        model_dir = server_dir / "models" / str(generation)
        model_dir.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(model_dir, ignore_errors=True)
        os.replace(staged, model_dir)
        _remove_staging(staged, self.servers_dir)
        self._staged.pop(config.model_uri, None)
        from mlflow.pyfunc import scoring_server

        command, command_env = scoring_server.get_cmd(
            str(model_dir), None, None, config.request_timeout, config.workers
        )
        added_env = {k: v for k, v in command_env.items() if os.environ.get(k) != v}
        # drop the leading "uvicorn"
        args = [GRACEFUL_APP if a == MLFLOW_APP else a for a in command.split()[1:]]
        return {
            "argv": [sys.executable, "-m", "uvicorn", "--fd", "{fd}", *args],
            "env": added_env,
            "fingerprint": fingerprint,
            "workers": config.workers,
            "model_dir": str(model_dir),
        }

    def _create_server(self, config: ServiceConfig) -> MLflowModelServer:
        assert isinstance(config, MLflowServerConfig)
        if config.port is None:
            config = config.model_copy(update={"port": _free_port(config.host)})
        server_uuid = uuid_lib.uuid4()
        server_dir = self.servers_dir / str(server_uuid)
        server_dir.mkdir(parents=True)
        now = _now()
        record = {
            "uuid": str(server_uuid),
            "engine_version": __version__,
            "created_at": now,
            "updated_at": now,
            "generation": 1,
            "config": config.to_record(),
            "launch": self.prepare_launch(server_dir, config, 1),
        }
        # A folder without record.json is not a server yet; the record appears whole.
        write_json(server_dir / RECORD, record)
        server = MLflowModelServer(self, server_dir, record)
        server.start()
        return server


def _remove_staging(staged: Path, servers_dir: Path) -> None:
    """Remove the staging folder holding `staged`. MLflow downloads models:/ URIs into the
    staging folder itself (which may just have been moved whole): never take
    `staged.parent` blindly, which would then be the servers directory."""
    for folder in (staged, *staged.parents):
        if folder.name.startswith(".staging-") and folder.parent == servers_dir:
            shutil.rmtree(folder, ignore_errors=True)
            return


def _orphaned_staging(path: Path) -> bool:
    """A `.staging-<pid>-*` folder whose process has exited: nothing will consume it."""
    if not path.name.startswith(".staging-"):
        return False
    pid = path.name.split("-")[1]
    return pid.isdigit() and not Path(f"/proc/{pid}").exists()


def _fingerprint(config: MLflowServerConfig) -> str:
    relevant = f"{config.model_uri}|{config.workers}|{config.request_timeout}"
    return hashlib.sha256(relevant.encode()).hexdigest()[:16]


def _port_free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise InvalidConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    return True


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat()
