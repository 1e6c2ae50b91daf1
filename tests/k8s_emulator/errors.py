"""Kubernetes ``Status`` error bodies, shaped as k8s.io/apimachinery/pkg/api/errors builds them.

Clients branch on ``reason`` and ``code`` (and sometimes on ``details.causes``), so the
emulator builds every failure through these helpers instead of ad-hoc dicts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

_OMIT = object()

# field.ErrorType -> (cause type, human string), as in apimachinery/pkg/util/validation/field.
_FIELD_TYPES: dict[str, str] = {
    "FieldValueNotFound": "Not found",
    "FieldValueRequired": "Required value",
    "FieldValueDuplicate": "Duplicate value",
    "FieldValueInvalid": "Invalid value",
    "FieldValueTypeInvalid": "Invalid value",
    "FieldValueNotSupported": "Unsupported value",
    "FieldValueForbidden": "Forbidden",
    "FieldValueTooLong": "Too long",
    "FieldValueTooMany": "Too many",
    "InternalError": "Internal error",
}
_NO_VALUE_TYPES = {
    "FieldValueRequired",
    "FieldValueForbidden",
    "FieldValueTooLong",
    "InternalError",
}


def go_value(value: Any) -> str:
    """Render a bad value the way Go's ``%q``/``%d``/``%#v`` would in a field error."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, int | float):
        return repr(value)
    if value is None:
        return "null"
    if isinstance(value, dict):
        inner = json.dumps(value, separators=(",", ":"), sort_keys=True)
        return "map[string]interface {}" + inner
    return json.dumps(value, separators=(",", ":"))


@dataclass
class FieldError:
    """One entry of a field.ErrorList; ``body()`` equals Go's ``ErrorBody()``."""

    type: str
    field: str
    value: Any = _OMIT
    detail: str = ""

    def body(self) -> str:
        text = _FIELD_TYPES[self.type]
        if self.type not in _NO_VALUE_TYPES and self.value is not _OMIT:
            text = f"{text}: {go_value(self.value)}"
        if self.detail:
            text = f"{text}: {self.detail}"
        return text

    def __str__(self) -> str:
        return f"{self.field}: {self.body()}" if self.field else self.body()


def required(path: str, detail: str = "") -> FieldError:
    return FieldError("FieldValueRequired", path, detail=detail)


def invalid(path: str, value: Any, detail: str) -> FieldError:
    return FieldError("FieldValueInvalid", path, value, detail)


def forbidden(path: str, detail: str) -> FieldError:
    return FieldError("FieldValueForbidden", path, detail=detail)


class ApiError(Exception):
    """An HTTP failure answered with a ``Status`` body (and optional extra headers)."""

    def __init__(self, status: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        super().__init__(status.get("message", ""))
        self.status = status
        self.headers = headers or {}

    @property
    def code(self) -> int:
        return int(self.status["code"])


@dataclass(frozen=True)
class Resource:
    """Group + plural, i.e. schema.GroupResource, used in error messages and details."""

    group: str
    plural: str
    kind: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def qualified(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def qualified_kind(self) -> str:
        return f"{self.kind}.{self.group}" if self.group else self.kind


def status_body(
    code: int, reason: str, message: str, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
    }
    if details is not None:
        body["details"] = details
    body["code"] = code
    return body


def _details(res: Resource, name: str) -> dict[str, Any]:
    d: dict[str, Any] = {"name": name}
    if res.group:
        d["group"] = res.group
    d["kind"] = res.plural
    return d


def not_found(res: Resource, name: str) -> ApiError:
    return ApiError(
        status_body(404, "NotFound", f'{res.qualified()} "{name}" not found', _details(res, name))
    )


def namespace_not_found(ns: str) -> ApiError:
    return ApiError(
        status_body(
            404, "NotFound", f'namespaces "{ns}" not found', {"name": ns, "kind": "namespaces"}
        )
    )


def already_exists(res: Resource, name: str) -> ApiError:
    return ApiError(
        status_body(
            409, "AlreadyExists", f'{res.qualified()} "{name}" already exists', _details(res, name)
        )
    )


CONFLICT_MSG = (
    "the object has been modified; please apply your changes to the latest version and try again"
)


def conflict(res: Resource, name: str, why: str = CONFLICT_MSG) -> ApiError:
    return ApiError(
        status_body(
            409,
            "Conflict",
            f'Operation cannot be fulfilled on {res.qualified()} "{name}": {why}',
            _details(res, name),
        )
    )


def invalid_object(res: Resource, name: str, errs: list[FieldError]) -> ApiError:
    """422 Invalid: message aggregates like utilerrors.NewAggregate (brackets when >1)."""
    msgs = [str(e) for e in errs]
    agg = msgs[0] if len(msgs) == 1 else "[" + ", ".join(msgs) + "]"
    details: dict[str, Any] = {"name": name}
    if res.group:
        details["group"] = res.group
    details["kind"] = res.kind
    details["causes"] = [{"reason": e.type, "message": e.body(), "field": e.field} for e in errs]
    return ApiError(
        status_body(422, "Invalid", f'{res.qualified_kind()} "{name}" is invalid: {agg}', details)
    )


def bad_request(message: str) -> ApiError:
    return ApiError(status_body(400, "BadRequest", message))


def unprocessable_patch(detail: str) -> ApiError:
    """422 from a JSON patch that cannot be applied (errors.NewGenericServerResponse)."""
    return ApiError(
        status_body(
            422,
            "Invalid",
            "the server rejected our request due to an error in our request",
            {"causes": [{"reason": "UnexpectedServerResponse", "message": detail}]},
        )
    )


def method_not_allowed() -> ApiError:
    return ApiError(
        status_body(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
    )


def not_found_path() -> ApiError:
    return ApiError(
        status_body(404, "NotFound", "the server could not find the requested resource", {})
    )


def unauthorized() -> ApiError:
    return ApiError(status_body(401, "Unauthorized", "Unauthorized"))


def unsupported_media_type(accepted: list[str]) -> ApiError:
    return ApiError(
        status_body(
            415,
            "UnsupportedMediaType",
            "the body of the request was in an unknown format - accepted media types include: "
            + ", ".join(accepted),
        )
    )


def expired(message: str, continue_token: str | None = None) -> ApiError:
    body = status_body(410, "Expired", message)
    if continue_token:
        body["metadata"] = {"continue": continue_token}
    return ApiError(body)


def too_large_rv(requested: int, current: int) -> ApiError:
    return ApiError(
        status_body(
            504,
            "Timeout",
            f"Timeout: Too large resource version: {requested}, current: {current}",
            {
                "causes": [
                    {"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}
                ],
                "retryAfterSeconds": 1,
            },
        )
    )


def webhook_denied(webhook: str, message: str) -> ApiError:
    """What an admission webhook's plain-error denial looks like (controller-runtime -> 403)."""
    return ApiError(
        status_body(
            403, "Forbidden", f'admission webhook "{webhook}" denied the request: {message}'
        )
    )


def injected(code: int) -> ApiError:
    """Fault-injection answers, with the bodies the apiserver's filters send."""
    if code == 429:
        return ApiError(
            status_body(
                429,
                "TooManyRequests",
                "Too many requests, please try again later.",
                {"retryAfterSeconds": 1},
            ),
            {"Retry-After": "1"},
        )
    if code == 503:
        # no Retry-After: urllib3 (under the kubernetes client) would silently retry it
        return ApiError(
            status_body(
                503, "ServiceUnavailable", "the server is currently unable to handle the request"
            )
        )
    if code == 504:
        return ApiError(
            status_body(504, "Timeout", "Timeout: request did not complete within allowed duration")
        )
    return ApiError(
        status_body(
            code,
            "InternalError",
            "Internal error occurred: injected fault",
            {"causes": [{"message": "injected fault"}]},
        )
    )
