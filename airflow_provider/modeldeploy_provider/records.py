"""A deployment record (`modeldeploy.records`) as Airflow sees it: asset events and lineage.

Deploy and rollback operators list `MODEL_DEPLOYMENTS`, an asset alias, among their
outlets; when a rollout or rollback changes what serves a model, the task adds an event
for that model's asset, ``modeldeploy://<flavor>/<namespace-or-home>/<model>``, with the
record (version, URL, action...) as its extra. A DAG scheduled on `model_asset(...)` then
runs after each deployment. An asset of that URI listed in `outlets` gets the extra too.
OpenLineage (with ``apache-airflow-providers-openlineage``): the model version read from
the registry is the input, the serving endpoint the output.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow.sdk import Asset, AssetAlias

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage
    from modeldeploy.records import DeploymentRecord

#: the alias through which deploy and rollback tasks emit their models' asset events
MODEL_DEPLOYMENTS = AssetAlias("modeldeploy")
#: actions that change what serves, so an asset event is emitted for them
_SERVING_CHANGES = ("deployed", "rolled_back")


def model_asset(
    model_name: str, flavor: str | None = None, namespace: str | Path | None = None
) -> Asset:
    """The asset a model's deployments update, for `schedule=[...]` of a downstream DAG.

    :param flavor: the connection's flavor; the engine's default flavor if omitted.
    :param namespace: where that flavor's servers live: the Kubernetes namespace, or the
        local flavor's home directory. Omitted, only the default flavor has one
        (``$MODELDEPLOY_HOME``, else ``~/.modeldeploy``); a DAG file cannot ask a
        connection at parse time, so other flavors must name it.
    """
    from modeldeploy.flavors import DEFAULT_FLAVOR
    from modeldeploy.records import model_uri_of

    flavor = flavor or DEFAULT_FLAVOR
    if namespace is None:
        if flavor != DEFAULT_FLAVOR:
            raise ValueError(
                f"model_asset({model_name!r}, {flavor!r}): give namespace=, where the "
                "connection's model servers live (its Kubernetes namespace, for example)"
            )
        from modeldeploy.home import default_home

        namespace = default_home()
    return Asset(model_uri_of(flavor, str(namespace), model_name))


class DeploymentRecordsMixin:
    """Emits the record of a deploy or rollback task; mixed into those operators."""

    outlets: list[Any]
    _record: DeploymentRecord | None = None
    _tracking_uri: str | None = None

    def _add_deployments_alias(self) -> None:
        if not any(_is_ours(o) for o in self.outlets):
            self.outlets.append(MODEL_DEPLOYMENTS)

    def _emit_record(self, record: DeploymentRecord | None) -> None:
        """The record as this task's asset event (when serving changed), and for lineage."""
        self._record = record
        if record is None or record.action not in _SERVING_CHANGES:
            return
        from airflow.sdk import get_current_context

        events = get_current_context()["outlet_events"]
        extra: dict[str, Any] = record.entry()
        asset = Asset(record.uri)
        listed = [o for o in self.outlets if isinstance(o, Asset) and o.uri == asset.uri]
        for outlet in listed:  # the asset is an outlet itself: its event carries the record
            events[outlet].extra.update(extra)
        if not listed:
            events[MODEL_DEPLOYMENTS].add(asset, extra=extra)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage:
        """Input: the model version in the registry; output: the serving endpoint."""
        from airflow.providers.common.compat.openlineage.facet import Dataset
        from airflow.providers.openlineage.extractors import OperatorLineage
        from modeldeploy.redaction import redact_uri

        record = self._record
        if record is None:
            return OperatorLineage()
        inputs = []
        if record.version is not None and self._tracking_uri:
            name = f"models:/{record.model_name}/{record.version}"
            inputs.append(Dataset(namespace=redact_uri(self._tracking_uri), name=name))
        elif record.model_uri:
            inputs.append(_dataset_of(record.model_uri))
        outputs = [_dataset_of(record.url)] if record.url else []
        return OperatorLineage(inputs=inputs, outputs=outputs)


def _is_ours(outlet: object) -> bool:
    return isinstance(outlet, AssetAlias) and outlet.name == MODEL_DEPLOYMENTS.name


def _dataset_of(uri: str) -> Any:
    """An OpenLineage dataset for a URI: namespace `scheme://authority`, name its path."""
    from airflow.providers.common.compat.openlineage.facet import Dataset

    parts = urlsplit(uri)
    if not parts.scheme or not parts.netloc:
        return Dataset(namespace="file", name=uri)
    host = parts.netloc.rpartition("@")[2]  # never a user name or (redacted) password
    return Dataset(namespace=f"{parts.scheme}://{host}", name=parts.path or "/")
