"""The MLflow Model Registry: candidate versions, their metrics, and the `champion` alias."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from modeldeploy.errors import InvalidConfigError, RegistryError
from modeldeploy.home import default_tracking_uri

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
_tracking_lock = threading.RLock()
_MLFLOW_URI_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


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
    """Thin, typed layer over `MlflowClient`; the tracking URI is explicit, never global."""

    def __init__(self, tracking_uri: str | None = None) -> None:
        import os

        self.tracking_uri = (
            tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri()
        )
        self._client: MlflowClient | None = None

    def __repr__(self) -> str:
        return f"ModelRegistry(tracking_uri={_redact(self.tracking_uri)!r})"

    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            from mlflow import MlflowClient

            self._client = MlflowClient(
                tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri
            )
        return self._client

    @contextlib.contextmanager
    def using_tracking_uri(self) -> Iterator[None]:
        """MLflow's fluent helpers read a global URI; point it at ours for one call only."""
        import os

        import mlflow

        with _tracking_lock:
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
                for key, value in saved_env.items():
                    if value is None:
                        os.environ.pop(key, None)
                    else:
                        os.environ[key] = value

    def set_experiment(self, name: str) -> str:
        """Make `name` the active MLflow experiment, creating it if needed; returns its id.

        With a file-backed store (the default SQLite one) MLflow would put artifacts in
        `./mlruns` of whatever directory the process runs in; new experiments keep theirs
        beside the database instead.
        """
        import mlflow

        experiment = self.client.get_experiment_by_name(name)
        if experiment is not None:
            experiment_id = experiment.experiment_id
        else:
            location = None
            if self.tracking_uri.startswith("sqlite:///"):
                database = Path(self.tracking_uri.removeprefix("sqlite:///"))
                location = (database.parent / "artifacts" / name).as_uri()
            experiment_id = self.client.create_experiment(name, artifact_location=location)
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
        try:
            mv = self.client.get_model_version(model_name, str(version))
        except Exception as exc:
            raise RegistryError(
                f"version {version} of model {model_name} is not in the registry: "
                f"{_first_line(exc)}"
            ) from None
        return _to_info(mv)

    def set_version_tags(self, model_name: str, version: str, tags: Mapping[str, str]) -> None:
        for key, value in tags.items():
            self.client.set_model_version_tag(model_name, str(version), key, value)

    def get_champion(self, model_name: str) -> ModelVersionInfo | None:
        from mlflow.exceptions import MlflowException

        try:
            mv = self.client.get_model_version_by_alias(model_name, CHAMPION_ALIAS)
        except MlflowException:
            return None
        return _to_info(mv)

    def champion_history(self, model_name: str) -> list[str]:
        from mlflow.exceptions import MlflowException

        try:
            model = self.client.get_registered_model(model_name)
        except MlflowException:
            return []
        return list(json.loads(model.tags.get(HISTORY_TAG, "[]")))

    def promote(self, model_name: str, version: str) -> None:
        """Move the `champion` alias to `version` and remember the move for rollback."""
        history = self.champion_history(model_name)
        if not history or history[-1] != str(version):
            history.append(str(version))
        self.client.set_registered_model_alias(model_name, CHAMPION_ALIAS, str(version))
        self._write_history(model_name, history)

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
        self.client.set_registered_model_alias(model_name, CHAMPION_ALIAS, history[-1])
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
        self.client.delete_registered_model_alias(model_name, CHAMPION_ALIAS)
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

    def mark_rolled_back(self, model_name: str, version: str, reason: str) -> None:
        """Tag a version that was taken out of service: when, why, and no more `gate: passed`."""
        from datetime import UTC, datetime

        self.set_version_tags(
            model_name,
            version,
            {
                GATE_TAG: "rolled_back",
                ROLLED_BACK_AT_TAG: datetime.now(UTC).isoformat(timespec="seconds"),
                ROLLED_BACK_REASON_TAG: reason[:5000],
            },
        )

    def _write_history(self, model_name: str, history: list[str]) -> None:
        self.client.set_registered_model_tag(model_name, HISTORY_TAG, json.dumps(history[-50:]))


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


def _redact(uri: str) -> str:
    """Drop credentials from URIs such as postgresql://user:pass@host/db."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(uri)
    if parts.password is None and parts.username is None:
        return uri
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, f"***@{host}", parts.path, parts.query, parts.fragment))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
