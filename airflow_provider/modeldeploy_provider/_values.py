"""Rendered template values into what the engine takes, with Airflow's error type.

Jinja renders to strings, so booleans, numbers and mappings may arrive as text. The
coercion itself is the engine's (`modeldeploy.settings`); this only re-raises its clear
message as an `AirflowException` so the task fails with it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from airflow.sdk.exceptions import AirflowException
from modeldeploy import settings as _coerce
from modeldeploy.errors import InvalidConfigError

T = TypeVar("T")


def _airflow(convert: Callable[..., T], *args: Any) -> T:
    try:
        return convert(*args)
    except InvalidConfigError as exc:
        raise AirflowException(str(exc)) from None


def as_bool(value: Any, name: str) -> bool:
    return _airflow(_coerce.as_bool, value, name)


def as_number(value: Any, name: str) -> float:
    return _airflow(_coerce.as_number, value, name)


def as_mapping(value: Any, name: str) -> dict[str, Any]:
    """A dict given as such, or as JSON or a Python literal (what Jinja renders)."""
    return _airflow(_coerce.as_mapping, value, name)


def as_metrics(value: Any) -> dict[str, float]:
    metrics = as_mapping(value, "metrics")
    return {str(k): as_number(v, f"metrics[{k!r}]") for k, v in metrics.items()}


def as_rules(value: Any) -> list[str]:
    """Gate rules from a list or one comma-separated string."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [rule for rule in value.split(",") if rule.strip()]
    return [str(rule) for rule in value]
