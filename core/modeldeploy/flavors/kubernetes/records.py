"""The record a model server carries on the cluster: labels to find it, annotations to rebuild it.

Labels (sanitized, so selectors can filter server-side) hold identity and lineage; the
annotations hold the full service config as JSON (no secrets: `ServiceConfig` holds none)
and the engine version, so a new process re-creates every model server from the cluster
alone. Everything is under our own prefix, and `app.kubernetes.io/managed-by` marks what is
ours: objects without it are never read back, changed or deleted.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import ValidationError

from modeldeploy.config import ServiceConfig
from modeldeploy.deployer import ServerQuery
from modeldeploy.flavors.kubernetes.naming import label_value, short_hash
from modeldeploy.redaction import get_logger
from modeldeploy.status import utcnow
from modeldeploy.version import __version__

logger = get_logger("modeldeploy.kubernetes")

PREFIX = "modeldeploy.io/"
MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGER = "modeldeploy"

LABEL_FLAVOR = PREFIX + "flavor"
LABEL_UUID = PREFIX + "uuid"
LABEL_PIPELINE = PREFIX + "pipeline"
LABEL_STEP = PREFIX + "step"
LABEL_MODEL = PREFIX + "model"
LABEL_RUN_ID = PREFIX + "run-id"
LABEL_MODEL_TYPE = PREFIX + "model-type"
LABEL_MODEL_URI = PREFIX + "model-uri-hash"
LABEL_SECRET = PREFIX + "secret"

ANNOTATION_CONFIG = PREFIX + "config"
ANNOTATION_VERSION = PREFIX + "engine-version"
ANNOTATION_CREATED = PREFIX + "created-at"
ANNOTATION_SECRET = PREFIX + "secret"
ANNOTATION_STOPPED = PREFIX + "stopped"


def uri_hash(uri: str) -> str:
    return short_hash(uri, 16)


def managed_selector(flavor: str | None = None) -> str:
    parts = [f"{MANAGED_BY}={MANAGER}"]
    if flavor:
        parts.append(f"{LABEL_FLAVOR}={flavor}")
    return ",".join(parts)


def is_managed(obj: Mapping[str, Any], flavor: str | None = None) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    if labels.get(MANAGED_BY) != MANAGER:
        return False
    return flavor is None or labels.get(LABEL_FLAVOR) == flavor


def record_labels(config: ServiceConfig, uuid: UUID, flavor: str) -> dict[str, str]:
    labels = {
        MANAGED_BY: MANAGER,
        LABEL_FLAVOR: flavor,
        LABEL_UUID: str(uuid),
        LABEL_PIPELINE: label_value(config.pipeline_name),
        LABEL_STEP: label_value(config.step_name),
        LABEL_MODEL: label_value(config.model_name),
        LABEL_MODEL_URI: uri_hash(config.model_uri),
    }
    if config.run_id:
        labels[LABEL_RUN_ID] = label_value(config.run_id)
    if config.model_type:
        labels[LABEL_MODEL_TYPE] = label_value(config.model_type)
    return labels


def record_annotations(config: ServiceConfig, created_at: datetime) -> dict[str, str]:
    return {
        ANNOTATION_CONFIG: json.dumps(config.to_record(), sort_keys=True, separators=(",", ":")),
        ANNOTATION_VERSION: __version__,
        ANNOTATION_CREATED: created_at.isoformat(),
    }


def query_selector(query: ServerQuery, flavor: str) -> str:
    """Push every filter we can down to the API server as a label selector.

    Sanitizing may map two values to one label, so the selector can match extra objects;
    the engine re-checks each server against the query, so it never returns too many.
    """
    parts = [managed_selector(flavor)]
    pairs: list[tuple[str, str | None]] = [
        (LABEL_UUID, str(query.service_uuid) if query.service_uuid else None),
        (LABEL_PIPELINE, query.pipeline_name),
        (LABEL_STEP, query.pipeline_step_name),
        (LABEL_MODEL, query.model_name),
        (LABEL_RUN_ID, query.run_id),
        (LABEL_MODEL_TYPE, query.model_type),
    ]
    for key, value in pairs:
        if value is not None:
            parts.append(f"{key}={label_value(value)}")
    if query.model_uri is not None:
        parts.append(f"{LABEL_MODEL_URI}={uri_hash(query.model_uri)}")
    return ",".join(parts)


class Record:
    """What we wrote on an object, parsed back: identity, config and creation time."""

    __slots__ = ("config", "created_at", "engine_version", "uuid")

    def __init__(
        self, uuid: UUID, config: ServiceConfig, created_at: datetime, engine_version: str
    ) -> None:
        self.uuid = uuid
        self.config = config
        self.created_at = created_at
        self.engine_version = engine_version


def read_record(obj: Mapping[str, Any], config_class: type[ServiceConfig]) -> Record | None:
    """Parse our record from an object; None (with a warning) if it is not ours or is damaged."""
    meta = obj.get("metadata") or {}
    labels = meta.get("labels") or {}
    annotations = meta.get("annotations") or {}
    name = meta.get("name")
    if labels.get(MANAGED_BY) != MANAGER:
        return None
    try:
        uuid = UUID(labels[LABEL_UUID])
        data = json.loads(annotations[ANNOTATION_CONFIG])
        data.pop("flavor", None)
        config = config_class.model_validate(data)
    except (KeyError, ValueError, TypeError, ValidationError) as exc:
        logger.warning(
            "skipping %s: its modeldeploy record is missing or damaged (%s)",
            name,
            type(exc).__name__,
        )
        return None
    created_at = _parse_time(annotations.get(ANNOTATION_CREATED)) or _parse_time(
        meta.get("creationTimestamp")
    )
    return Record(
        uuid=uuid,
        config=config,
        created_at=created_at or utcnow(),
        engine_version=str(annotations.get(ANNOTATION_VERSION) or "unknown"),
    )


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
