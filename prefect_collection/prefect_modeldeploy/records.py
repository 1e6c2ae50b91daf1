"""A deployment record (`modeldeploy.records`) as Prefect sees it: an event and an artifact.

Each rollout, rollback or gate rejection emits a Prefect event that automations can react
to, about the resource ``modeldeploy.model.<flavor>.<model>``:
``modeldeploy.model.deployed``, ``modeldeploy.model.rolled_back``,
``modeldeploy.model.gate.rejected`` (and ``modeldeploy.model.reported`` for a shadow
rollout), with the record as its payload. A markdown artifact keyed
``modeldeploy-<model>`` shows the action, versions, URL and the gate's report on the
flow-run page; its versions are the model's rollouts. A deploy or rollout that fails and is
undone by the engine raises with its record (`ModelDeployError.record`): the task publishes
that rollback, headed "Rolled back", before it fails (`publishing_rollbacks`).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modeldeploy.records import DeploymentRecord

EVENT_NAMES = {
    "deployed": "modeldeploy.model.deployed",
    "rolled_back": "modeldeploy.model.rolled_back",
    "rejected": "modeldeploy.model.gate.rejected",
    "reported": "modeldeploy.model.reported",
}

_NOT_KEY = re.compile(r"[^a-z0-9-]+")


def resource_id(record: DeploymentRecord) -> str:
    """`modeldeploy.model.<flavor>.<model>`: the resource the events are about."""
    return f"modeldeploy.model.{record.flavor or 'unknown'}.{record.model_name}"


def artifact_key(model_name: str) -> str:
    """The artifact key of a model's rollouts (Prefect keys: lowercase, digits, dashes)."""
    return "modeldeploy-" + (_NOT_KEY.sub("-", model_name.lower()).strip("-") or "model")


def publish_record(record: DeploymentRecord | None) -> None:
    """Emit the record's event and create its markdown artifact (nothing for None)."""
    if record is None:
        return
    from prefect.artifacts import create_markdown_artifact
    from prefect.events import emit_event

    resource = {
        "prefect.resource.id": resource_id(record),
        "prefect.resource.name": record.model_name,
        "modeldeploy.flavor": record.flavor or "unknown",
        "modeldeploy.scope": record.scope or "",
        "modeldeploy.version": record.version or "",
        "modeldeploy.serving-version": record.serving_version or "",
    }
    related: list[dict[str, Any]] = []
    if record.server_uuid:
        related.append(
            {
                "prefect.resource.id": f"modeldeploy.model-server.{record.server_uuid}",
                "prefect.resource.role": "model-server",
            }
        )
    emit_event(
        event=EVENT_NAMES[record.action],
        resource=resource,
        related=related,
        payload=record.entry(),
    )
    create_markdown_artifact(
        markdown=record.to_markdown(),
        key=artifact_key(record.model_name),
        description=record.summary()[:500],
    )


@contextlib.contextmanager
def publishing_rollbacks() -> Iterator[None]:
    """Around an engine call: an error that carries the record of the rollback the engine
    did before raising has that record published, then goes on failing the task."""
    from modeldeploy.errors import ModelDeployError

    try:
        yield
    except ModelDeployError as exc:
        publish_record(exc.record)
        raise
