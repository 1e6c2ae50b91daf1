"""Turn Kubernetes API failures into the engine's typed errors, with the API server's reason.

Only the `Status` object the server returns is quoted (its message and causes), never the
request body, so a Secret's values cannot end up in an exception.
"""

from __future__ import annotations

import json
from typing import Any, cast

from modeldeploy.errors import (
    ConflictError,
    InvalidConfigError,
    ModelDeployError,
    ModelServerNotFoundError,
    PlatformError,
)


def api_status(exc: BaseException) -> int | None:
    """HTTP status of a kubernetes `ApiException`, None for anything else."""
    from kubernetes.client.exceptions import ApiException

    if isinstance(exc, ApiException) and isinstance(exc.status, int):
        return exc.status
    return None


def status_body(exc: BaseException) -> dict[str, Any]:
    body = getattr(exc, "body", None)
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    if isinstance(body, str) and body.strip().startswith("{"):
        try:
            parsed = json.loads(body)
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}


def status_reason(exc: BaseException) -> str:
    """`reason` of the Status body (AlreadyExists, Conflict, Invalid...), or ''."""
    return str(status_body(exc).get("reason") or "")


def status_message(exc: BaseException) -> str:
    """The API server's own words: Status.message plus each cause, or the HTTP reason."""
    body = status_body(exc)
    message = str(body.get("message") or getattr(exc, "reason", None) or exc.__class__.__name__)
    causes = (body.get("details") or {}).get("causes") or []
    extra = [
        f"{c.get('field')}: {c.get('message')}"
        for c in causes
        if isinstance(c, dict) and c.get("message") and cast(str, c.get("message")) not in message
    ]
    return message + (f" ({'; '.join(extra)})" if extra else "")


def translate(exc: BaseException, doing: str, host: str | None = None) -> ModelDeployError:
    """A typed error for `exc`, saying what we were doing (`doing`) and what to do next."""
    status = api_status(exc)
    if status is None:
        where = f" at {host}" if host else ""
        return PlatformError(
            f"{doing} failed: the Kubernetes API{where} could not be reached "
            f"({type(exc).__name__}); check the cluster address in your kubeconfig and that "
            "the API server is up"
        )
    message = status_message(exc)
    if status == 404:
        return ModelServerNotFoundError(f"{doing}: not found ({message})")
    if status == 409:
        return ConflictError(
            f"{doing}: {message}. Another client changed the same object; retry, or find who "
            "else manages it"
        )
    if status in (400, 422):
        return InvalidConfigError(f"{doing}: the cluster refused the object: {message}")
    if status in (401, 403):
        return PlatformError(
            f"{doing}: permission denied ({message}); grant the deployer's identity the Role "
            "described in docs/flavors/kubernetes.md"
        )
    return PlatformError(f"{doing}: the Kubernetes API answered {status}: {message}")
