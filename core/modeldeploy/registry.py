"""The MLflow Model Registry: candidate versions, their metrics, and the `champion` alias."""

from __future__ import annotations

import contextlib
import copy
import json
import math
import threading
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ConfigDict

from modeldeploy.errors import InvalidConfigError, RegistryError
from modeldeploy.home import default_tracking_uri
from modeldeploy.records import DeploymentRecord, parse_entry
from modeldeploy.redaction import redact_uri as _redact
from modeldeploy.redaction import register_uri
from modeldeploy.waiting import Deadline, current_deadline

if TYPE_CHECKING:
    from mlflow import MlflowClient

CHAMPION_ALIAS = "champion"
TAG_PREFIX = "modeldeploy."
METRIC_TAG_PREFIX = TAG_PREFIX + "metric."
HISTORY_TAG = TAG_PREFIX + "champion_history"
GATE_TAG = TAG_PREFIX + "gate"
ROLLOUT_TAG = TAG_PREFIX + "rollout"
ROLLED_BACK_AT_TAG = TAG_PREFIX + "rolled_back_at"
ROLLED_BACK_REASON_TAG = TAG_PREFIX + "rolled_back_reason"
#: where and since when a version serves (written each time it is deployed or restored)
SERVER_UUID_TAG = TAG_PREFIX + "server_uuid"
URL_TAG = TAG_PREFIX + "url"
DEPLOYED_AT_TAG = TAG_PREFIX + "deployed_at"
FLAVOR_TAG = TAG_PREFIX + "flavor"
#: one tag per deployment record, `modeldeploy.history.<microseconds since the epoch>`
HISTORY_ENTRY_PREFIX = TAG_PREFIX + "history."
_tracking_lock = threading.RLock()
_MLFLOW_URI_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
#: MLflow's HTTP retries for our calls (its default, 7 with backoff 2, takes minutes)
MAX_RETRIES = 2
BACKOFF_FACTOR = 1
#: seconds one registry request may take when no deadline is tighter
REQUEST_TIMEOUT = 30.0
T = TypeVar("T")


class ModelVersionInfo(BaseModel):
    """A registered version with what the gate and a rollback need."""

    model_config = ConfigDict(protected_namespaces=())

    name: str
    version: str
    model_uri: str
    source: str
    metrics: dict[str, float]
    tags: dict[str, str]
    aliases: list[str]


class ModelRegistry:
    """Thin, typed layer over `MlflowClient`; the tracking URI is explicit, never global.

    Every call is bounded: MLflow's own HTTP retries (7 by default, with exponential
    backoff: minutes against a dead server) are cut to `MAX_RETRIES` for our calls, each
    try to `request_timeout` or what is left of the deadline given to `bounded` (else of
    the operation in progress, `modeldeploy.waiting.within`: a deploy's download). Failures
    become `RegistryError`s naming the URI with its password hidden; "not found" is told
    apart from "could not ask".
    """

    def __init__(
        self, tracking_uri: str | None = None, request_timeout: float = REQUEST_TIMEOUT
    ) -> None:
        import os

        self.tracking_uri = (
            tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri()
        )
        register_uri(self.tracking_uri)
        self.request_timeout = request_timeout
        self._deadline: Deadline | None = None
        self._client: MlflowClient | None = None

    def __repr__(self) -> str:
        return f"ModelRegistry(tracking_uri={_redact(self.tracking_uri)!r})"

    def bounded(self, deadline: Deadline) -> ModelRegistry:
        """This registry with every call made through it bounded by `deadline`."""
        bound = copy.copy(self)
        bound._deadline = deadline
        return bound

    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            from mlflow import MlflowClient

            self._client = MlflowClient(
                tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri
            )
        return self._client

    @contextlib.contextmanager
    def _bounded(self) -> Iterator[None]:
        """MLflow's HTTP retry settings, for the calls made inside only (it reads the
        environment on each request). Callers hold `_tracking_lock`."""
        import os

        per_try, retries = self.request_timeout, MAX_RETRIES
        deadline = self._deadline or current_deadline()
        if deadline is not None:
            budget = deadline.remaining() - BACKOFF_FACTOR * (2**MAX_RETRIES - 2)
            per_try = min(per_try, budget / (MAX_RETRIES + 1))
            if per_try < 1:  # (nearly) out of time, e.g. a slow first import: one short try
                per_try, retries = 1, 0
        settings = {
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(retries),
            "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": str(BACKOFF_FACTOR),
            "MLFLOW_HTTP_REQUEST_TIMEOUT": str(max(1, math.floor(per_try))),
        }
        saved = {k: os.environ.get(k) for k in settings}
        os.environ.update(settings)
        try:
            yield
        finally:
            _restore_env(saved)

    def _call(self, what: str, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` within the bounds; any failure is a RegistryError saying `what`."""
        with _tracking_lock, self._bounded():
            try:
                return fn(*args)
            except Exception as exc:
                raise self._error(what, exc) from None

    def _lookup(self, what: str, fn: Callable[..., T], *args: Any) -> T | None:
        """Like `_call`, but None when the registry says the object does not exist."""
        from mlflow.exceptions import MlflowException

        with _tracking_lock, self._bounded():
            try:
                return fn(*args)
            except MlflowException as exc:
                if _is_missing(exc):
                    return None
                raise self._error(what, exc) from None
            except Exception as exc:
                raise self._error(what, exc) from None

    def _error(self, what: str, exc: BaseException) -> RegistryError:
        return RegistryError(
            f"could not {what} in the MLflow registry at {_redact(self.tracking_uri)}: "
            f"{_first_line(exc)}; check that the tracking server is reachable and the "
            "credentials are right"
        )

    @contextlib.contextmanager
    def using_tracking_uri(self) -> Iterator[None]:
        """MLflow's fluent helpers read a global URI; point it at ours for one call only."""
        import os

        import mlflow

        with _tracking_lock, self._bounded():
            previous = mlflow.get_tracking_uri()
            previous_registry = mlflow.get_registry_uri()
            # set_*_uri also export MLFLOW_TRACKING_URI / MLFLOW_REGISTRY_URI; restoring
            # `previous` would leave MLflow's default (./mlflow.db in the current directory)
            # in the environment, where every later default lookup would pick it up.
            saved_env = {k: os.environ.get(k) for k in _MLFLOW_URI_ENV}
            mlflow.set_tracking_uri(self.tracking_uri)
            mlflow.set_registry_uri(self.tracking_uri)
            try:
                yield
            finally:
                mlflow.set_tracking_uri(previous)
                mlflow.set_registry_uri(previous_registry)
                _restore_env(saved_env)

    def set_experiment(self, name: str) -> str:
        """Make `name` the active MLflow experiment, creating it if needed; returns its id.

        With a file-backed store (the default SQLite one) MLflow would put artifacts in
        `./mlruns` of whatever directory the process runs in; new experiments keep theirs
        beside the database instead.
        """
        import mlflow

        experiment = self._call(
            "look up experiment " + name, self.client.get_experiment_by_name, name
        )
        if experiment is not None:
            experiment_id = experiment.experiment_id
        else:
            location = None
            if self.tracking_uri.startswith("sqlite:///"):
                database = Path(self.tracking_uri.removeprefix("sqlite:///"))
                location = (database.parent / "artifacts" / name).as_uri()
            experiment_id = self._call(
                f"create experiment {name}", self.client.create_experiment, name, location
            )
        with self.using_tracking_uri():
            mlflow.set_experiment(experiment_id=experiment_id)
        return experiment_id

    def register_candidate(
        self,
        model_name: str,
        model_uri: str,
        metrics: Mapping[str, float] | None = None,
        lineage: Mapping[str, str | None] | None = None,
        extra_tags: Mapping[str, str] | None = None,
    ) -> ModelVersionInfo:
        """Register `model_uri` as a new version carrying its metrics and lineage as tags."""
        import mlflow

        tags = {f"{METRIC_TAG_PREFIX}{k}": repr(float(v)) for k, v in (metrics or {}).items()}
        tags.update({f"{TAG_PREFIX}{k}": str(v) for k, v in (lineage or {}).items() if v})
        tags[f"{TAG_PREFIX}model_uri"] = model_uri
        tags.update(extra_tags or {})
        try:
            with self.using_tracking_uri():
                version = mlflow.register_model(
                    model_uri, model_name, await_registration_for=0, tags=tags
                )
        except Exception as exc:
            raise RegistryError(
                f"could not register {model_uri} as a version of {model_name} in the MLflow "
                f"registry at {_redact(self.tracking_uri)}: {_first_line(exc)}"
            ) from None
        return self.get_version(model_name, str(version.version))

    def get_version(self, model_name: str, version: str) -> ModelVersionInfo:
        what = f"read version {version} of model {model_name}"
        mv = self._lookup(what, self.client.get_model_version, model_name, str(version))
        if mv is None:
            raise RegistryError(
                f"version {version} of model {model_name} is not in the MLflow registry at "
                f"{_redact(self.tracking_uri)}"
            )
        return _to_info(mv)

    def set_version_tags(self, model_name: str, version: str, tags: Mapping[str, str]) -> None:
        for key, value in tags.items():
            self._call(
                f"tag version {version} of model {model_name}",
                self.client.set_model_version_tag,
                model_name,
                str(version),
                key,
                value,
            )

    def versions_tagged(self, model_name: str, key: str, value: str) -> list[ModelVersionInfo]:
        """Every version of `model_name` whose tag `key` is `value` (one registry search);
        none for a name holding both quote characters, which MLflow cannot search for."""
        name, wanted = _quoted(model_name), _quoted(value)
        if name is None or wanted is None:
            return []  # not expressible in MLflow's search syntax
        query = f"name={name} and tags.`{key}` = {wanted}"
        found = self._call(
            f"search the versions of model {model_name}",
            self.client.search_model_versions,
            query,
        )
        return [_to_info(mv) for mv in found]

    def get_champion(self, model_name: str) -> ModelVersionInfo | None:
        """The version under the `champion` alias; None only when the registry says there
        is none. A registry that cannot be asked raises: it never means "no champion"."""
        mv = self._lookup(
            f"look up the {CHAMPION_ALIAS} of model {model_name}",
            self.client.get_model_version_by_alias,
            model_name,
            CHAMPION_ALIAS,
        )
        return None if mv is None else _to_info(mv)

    def champion_history(self, model_name: str) -> list[str]:
        model = self._lookup(
            f"read model {model_name}", self.client.get_registered_model, model_name
        )
        return [] if model is None else list(json.loads(model.tags.get(HISTORY_TAG, "[]")))

    def promote(self, model_name: str, version: str) -> None:
        """Move the `champion` alias to `version` and remember the move for rollback."""
        history = self.champion_history(model_name)
        if not history or history[-1] != str(version):
            history.append(str(version))
        self._set_champion(model_name, str(version))
        self._write_history(model_name, history)

    def _set_champion(self, model_name: str, version: str) -> None:
        self._call(
            f"move {CHAMPION_ALIAS} of model {model_name} to version {version}",
            self.client.set_registered_model_alias,
            model_name,
            CHAMPION_ALIAS,
            version,
        )

    def previous_champion(self, model_name: str) -> ModelVersionInfo | None:
        history = self.champion_history(model_name)
        return self.get_version(model_name, history[-2]) if len(history) >= 2 else None

    def demote_to_previous(self, model_name: str) -> ModelVersionInfo:
        """Move `champion` back one step in its history (after a rollback redeployed it)."""
        history = self.champion_history(model_name)
        if len(history) < 2:
            raise InvalidConfigError(
                f"model {model_name} has no previous champion to roll back to "
                f"(champion history: {history or 'empty'})"
            )
        history.pop()
        self._set_champion(model_name, history[-1])
        self._write_history(model_name, history)
        return self.get_version(model_name, history[-1])

    def retract_champion(self, model_name: str, version: str) -> None:
        """Take `champion` off a model's first and only champion (its rollout was undone)."""
        history = self.champion_history(model_name)
        if history != [str(version)]:
            raise InvalidConfigError(
                f"version {version} of {model_name} is not its only champion "
                f"(history: {history}); use rollback instead"
            )
        self._call(
            f"remove {CHAMPION_ALIAS} from model {model_name}",
            self.client.delete_registered_model_alias,
            model_name,
            CHAMPION_ALIAS,
        )
        self._write_history(model_name, [])

    # --- reconciliation and tagging (see modeldeploy.reconcile) ------------------------

    def sync_history(self, model_name: str) -> list[str]:
        """Make the champion history end with the version the `champion` alias names.

        A process killed between moving the alias and writing the history leaves them
        apart; rollback reads the history, so it is repaired before anything uses it.
        """
        champion = self.get_champion(model_name)
        history = self.champion_history(model_name)
        if champion is not None and (not history or history[-1] != champion.version):
            history.append(champion.version)
            self._write_history(model_name, history)
        return history

    def version_before(self, model_name: str, version: str) -> ModelVersionInfo | None:
        """The champion that preceded `version` in the history (None if there was none)."""
        history = self.champion_history(model_name)
        if str(version) not in history:
            return None
        index = len(history) - 1 - history[::-1].index(str(version))
        return self.get_version(model_name, history[index - 1]) if index > 0 else None

    def mark_rolled_back(
        self, model_name: str, version: str, reason: str, at: datetime | None = None
    ) -> None:
        """Tag a version that was taken out of service: when, why, and no more `gate: passed`."""
        self.set_version_tags(
            model_name,
            version,
            {
                GATE_TAG: "rolled_back",
                ROLLED_BACK_AT_TAG: (at or datetime.now(UTC)).isoformat(timespec="seconds"),
                ROLLED_BACK_REASON_TAG: reason[:5000],
            },
        )

    # --- deployment records (see modeldeploy.records) --------------------------------

    def add_record(self, record: DeploymentRecord) -> None:
        """Keep `record` as a history entry of the version it is about, and tag versions
        with where they serve (deployed, restored) or why they stopped (rolled back)."""
        name, about = record.model_name, record.version or record.serving_version
        if about is None:
            return
        stamp = int(record.at.timestamp() * 1_000_000)
        entry = json.dumps(record.entry(), separators=(",", ":"))
        self.set_version_tags(name, about, {f"{HISTORY_ENTRY_PREFIX}{stamp:016d}": entry})
        if record.action == "rolled_back" and record.version is not None:
            self.mark_rolled_back(name, record.version, record.reason, record.at)
        if record.action in ("deployed", "rolled_back") and record.serving_version is not None:
            serving = {
                SERVER_UUID_TAG: record.server_uuid,
                URL_TAG: record.url,
                FLAVOR_TAG: record.flavor,
                DEPLOYED_AT_TAG: record.at.isoformat(timespec="seconds"),
            }
            tags = {k: v for k, v in serving.items() if v}
            self.set_version_tags(name, record.serving_version, tags)

    def deployment_history(self, model_name: str) -> list[DeploymentRecord]:
        """Every deployment record of `model_name`, oldest first (empty for an unknown model)."""
        records: list[DeploymentRecord] = []
        token: str | None = None
        query = "name = '{}'".format(model_name.replace("'", "\\'"))
        while True:
            page = self._call(
                f"read the versions of model {model_name}",
                self.client.search_model_versions,
                query,
                1000,
                None,
                token,
            )
            for mv in page:
                for key, value in (mv.tags or {}).items():
                    if key.startswith(HISTORY_ENTRY_PREFIX):
                        record = parse_entry(value)
                        if record is not None:
                            records.append(record)
            token = page.token
            if not token:
                return sorted(records, key=lambda r: r.at)

    def _write_history(self, model_name: str, history: list[str]) -> None:
        self._call(
            f"record the champion history of model {model_name}",
            self.client.set_registered_model_tag,
            model_name,
            HISTORY_TAG,
            json.dumps(history[-50:]),
        )


def _quoted(text: str) -> str | None:
    """`text` as an MLflow search literal: MLflow quotes with ' or " and has no escapes."""
    for quote in ("'", '"'):
        if quote not in text:
            return f"{quote}{text}{quote}"
    return None


def _to_info(mv: Any) -> ModelVersionInfo:
    tags = dict(mv.tags or {})
    metrics = {
        k[len(METRIC_TAG_PREFIX) :]: float(v)
        for k, v in tags.items()
        if k.startswith(METRIC_TAG_PREFIX)
    }
    return ModelVersionInfo(
        name=mv.name,
        version=str(mv.version),
        model_uri=tags.get(f"{TAG_PREFIX}model_uri", mv.source),
        source=mv.source,
        metrics=metrics,
        tags=tags,
        aliases=list(getattr(mv, "aliases", []) or []),
    )


def _is_missing(exc: Exception) -> bool:
    """MLflow's "does not exist" (an unknown model, or an alias not set: the SQL store
    says INVALID_PARAMETER_VALUE "... alias champion not found")."""
    code = getattr(exc, "error_code", None)
    return code == "RESOURCE_DOES_NOT_EXIST" or (
        code == "INVALID_PARAMETER_VALUE" and "not found" in str(exc)
    )


def _restore_env(saved: Mapping[str, str | None]) -> None:
    import os

    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
