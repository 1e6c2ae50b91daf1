"""Kubernetes name and label syntax: validate what users give us, sanitize what we derive.

Kubernetes refuses an object whose name or labels break its syntax with a 422 after we
have already started writing; checking here lets a deploy fail before anything changes.
Sanitizing is deterministic, so the same pipeline name always maps to the same label
value and a label selector built from a filter finds exactly what was written.
"""

from __future__ import annotations

import hashlib
import re
from uuid import UUID

from modeldeploy.errors import InvalidConfigError

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")

MAX_LABEL = 63
MAX_SUBDOMAIN = 253
# KServe and Knative append "-predictor", "-predictor-00001-deployment" and the namespace to
# the InferenceService name for the objects they create; 45 characters leaves room for them.
MAX_SERVER_NAME = 45


def check_dns1123_label(value: str, what: str, max_length: int = MAX_LABEL) -> str:
    """Refuse a name Kubernetes would reject, saying which rule it breaks."""
    if not value or len(value) > max_length or not DNS1123_LABEL.match(value):
        raise InvalidConfigError(
            f"{what} {value!r} is not a valid Kubernetes name: use at most {max_length} "
            "lower-case letters, digits or '-', starting and ending with a letter or digit"
        )
    return value


def check_server_name(value: str) -> str:
    """Names of custom resources we create: DNS-1035 (KServe requires a leading letter)."""
    if not value or len(value) > MAX_SERVER_NAME or not DNS1035_LABEL.match(value):
        raise InvalidConfigError(
            f"model server name {value!r} is not valid: use at most {MAX_SERVER_NAME} "
            "lower-case letters, digits or '-', starting with a letter and ending with a "
            "letter or digit"
        )
    return value


def check_secret_name(value: str) -> str:
    if not value or len(value) > MAX_SUBDOMAIN or not DNS1123_SUBDOMAIN.match(value):
        raise InvalidConfigError(
            f"secret name {value!r} is not a valid Kubernetes name: use lower-case letters, "
            "digits, '-' or '.', starting and ending with a letter or digit"
        )
    return value


def short_hash(value: str, length: int = 8) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:length]


def label_value(value: str | None) -> str:
    """Map any string to a valid label value, deterministically.

    Values that are already valid are kept as they are (so `kubectl get -l` works with the
    names people know). Others are reduced to the allowed characters and suffixed with a
    hash of the original, so two different inputs do not collide after sanitizing.
    """
    if value is None:
        return ""
    if len(value) <= MAX_LABEL and LABEL_VALUE.match(value):
        return value
    digest = short_hash(value, 10)
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", value)
    cleaned = cleaned[: MAX_LABEL - len(digest) - 1].strip("-_.")
    return f"{cleaned}-{digest}" if cleaned else digest


def _named(model_name: str, suffix: str) -> str:
    slug = re.sub(r"[^a-z0-9-]+", "-", model_name.lower()).strip("-")
    if not slug or not slug[0].isalpha():
        slug = f"m-{slug}".rstrip("-")
    slug = slug[: MAX_SERVER_NAME - len(suffix) - 1].rstrip("-")
    return f"{slug}-{suffix}"


def server_name(model_name: str, uuid: UUID) -> str:
    """A DNS-1035 name for an extra server: the model's name plus a piece of its uuid."""
    return _named(model_name, uuid.hex[:8])


def equivalence_name(pipeline: str | None, step: str | None, model_name: str) -> str:
    """The one name of the server for a (pipeline, step, model): the model's name plus a
    hash of all three. Concurrent deploys of the same model then race for one name, and the
    API server lets exactly one create win (409 AlreadyExists for the others)."""
    key = "\0".join((pipeline or "", step or "", model_name))
    return _named(model_name, short_hash(key, 10))
