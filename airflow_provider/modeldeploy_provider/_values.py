"""Coercion of rendered template values and connection fields into what the engine takes.

Jinja renders to strings and the connection form stores what the user typed, so booleans,
numbers and mappings may arrive as text; each helper says which argument was wrong.
"""

from __future__ import annotations

import ast
import json
from typing import Any

from airflow.sdk.exceptions import AirflowException

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off", "none", ""}


def as_bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise AirflowException(f"{name} must be true or false, got {value!r}")


def as_number(value: Any, name: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise AirflowException(f"{name} must be a number, got {value!r}") from None


def as_mapping(value: Any, name: str) -> dict[str, Any]:
    """A dict given as such, or as JSON or a Python literal (what Jinja renders)."""
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            try:
                value = ast.literal_eval(value)
            except (ValueError, SyntaxError):
                raise AirflowException(
                    f"{name} must be a mapping (dict or JSON object), got {value[:200]!r}"
                ) from None
    if not isinstance(value, dict):
        raise AirflowException(f"{name} must be a mapping, got {type(value).__name__}")
    return value


def as_metrics(value: Any) -> dict[str, float]:
    metrics = as_mapping(value, "metrics")
    try:
        return {str(k): float(v) for k, v in metrics.items()}
    except (TypeError, ValueError):
        raise AirflowException(f"metrics must map names to numbers, got {metrics!r}") from None


def as_rules(value: Any) -> list[str]:
    """Gate rules from a list or one comma-separated string."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [rule for rule in value.split(",") if rule.strip()]
    return [str(rule) for rule in value]
