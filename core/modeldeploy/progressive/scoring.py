"""Predictions against each other and against labels: one definition for the probe and for
delayed labels, so "agree" and "accurate" mean the same wherever they are measured."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

Task = Literal["classification", "regression"]


def predictions_of(body: Any) -> list[Any]:
    """The per-row predictions in a scoring server's JSON answer."""
    predictions = body.get("predictions", body) if isinstance(body, dict) else body
    if isinstance(predictions, dict):  # column-oriented output: first column
        predictions = next(iter(predictions.values()), [])
    return list(predictions) if isinstance(predictions, list) else [predictions]


def same(a: Any, b: Any) -> bool:
    """Equal answers; numbers within a relative 1e-6, containers element-wise."""
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


def score(task: Task, predictions: Sequence[Any], labels: Sequence[Any]) -> dict[str, float]:
    """accuracy (classification) or rmse and mae (regression); nothing for no rows."""
    if not labels or len(predictions) != len(labels):
        return {}
    if task == "classification":
        hits = sum(same(p, y) for p, y in zip(predictions, labels, strict=True))
        return {"accuracy": hits / len(labels)}
    errors = [float(p) - float(y) for p, y in zip(predictions, labels, strict=True)]
    return {
        "rmse": math.sqrt(sum(e * e for e in errors) / len(errors)),
        "mae": sum(abs(e) for e in errors) / len(errors),
    }
