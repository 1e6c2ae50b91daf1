"""Check a live model server's answers against expected ones: one rule for every caller.

Numbers match within a tolerance (absolute `tolerance` or relative `rel_tolerance`,
whichever is looser, as `math.isclose`); labels (strings, booleans) match exactly. A
failure names the worst mismatches with their input rows, so a good regression model is
not rolled back for a rounding difference and a bad one says where it is wrong.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, Field

from modeldeploy.errors import InvalidConfigError, ModelDeployError
from modeldeploy.server import ModelServer

#: how many mismatches a failure message quotes
WORST_SHOWN = 5


class Mismatch(BaseModel):
    """One row whose live answer differs from the expected one."""

    row: int
    input: Any = None
    expected: Any
    got: Any
    #: absolute difference for numbers (largest element for vectors); None for labels
    error: float | None = None


class VerificationResult(BaseModel):
    """Live predictions of a model server checked against expected answers."""

    uuid: str
    prediction_url: str | None
    rows: int
    predictions: list[Any]
    accuracy: float | None
    passed: bool
    message: str
    tolerance: float = 0.0
    rel_tolerance: float = 0.0
    #: the worst mismatches, worst first (at most `WORST_SHOWN`)
    mismatches: list[Mismatch] = Field(default_factory=list)


class VerificationError(ModelDeployError, AssertionError):
    """The live model server did not answer as expected; `result` holds the details."""

    def __init__(self, message: str, result: VerificationResult | None = None) -> None:
        super().__init__(message)
        self.result = result


def as_json(value: Any) -> Any:
    """Predictions as plain JSON types (lists, dicts, numbers, strings), floats exact."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if hasattr(value, "to_dict") and hasattr(value, "columns"):  # pandas DataFrame
        return value.to_dict(orient="records")
    if hasattr(value, "tolist"):  # numpy arrays and scalars, pandas Series
        return value.tolist()
    if isinstance(value, Mapping):
        return {str(k): as_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [as_json(v) for v in value]
    return value


def prediction_list(answer: Any) -> list[Any]:
    """One prediction per row from any server's answer (`predictions`, `outputs`, `data`)."""
    answer = as_json(answer)
    if isinstance(answer, dict):
        for key in ("predictions", "outputs", "data"):
            if key in answer:
                return prediction_list(answer[key])
    return answer if isinstance(answer, list) else [answer]


def input_rows(data: Any) -> list[Any] | None:
    """The rows of a request, to quote beside a mismatch (None when they cannot be told)."""
    if hasattr(data, "to_dict") and hasattr(data, "columns"):
        return list(data.to_dict(orient="records"))
    if isinstance(data, Mapping):
        split = data.get("dataframe_split")
        if isinstance(split, Mapping) and "data" in split:
            columns = split.get("columns")
            rows = list(split["data"])
            return [dict(zip(columns, r, strict=False)) for r in rows] if columns else rows
        for key in ("dataframe_records", "instances", "inputs"):
            if isinstance(data.get(key), list):
                return list(data[key])
        return None
    data = as_json(data)
    return list(data) if isinstance(data, list) else None


def compare(got: Any, expected: Any, tolerance: float, rel_tolerance: float) -> float | None:
    """None if `got` matches `expected`; else the absolute error (inf for labels)."""
    if isinstance(expected, list | tuple) and isinstance(got, list | tuple):
        if len(got) != len(expected):
            return math.inf
        errors = [
            compare(g, e, tolerance, rel_tolerance) for g, e in zip(got, expected, strict=True)
        ]
        wrong = [e for e in errors if e is not None]
        return max(wrong) if wrong else None
    if _is_number(got) and _is_number(expected):
        g, e = float(got), float(expected)
        if math.isnan(g) or math.isnan(e):
            return None if math.isnan(g) and math.isnan(e) else math.inf
        if math.isclose(g, e, rel_tol=rel_tolerance, abs_tol=tolerance):
            return None
        return abs(g - e)
    return None if got == expected else math.inf


def check_predictions(
    predictions: Sequence[Any],
    expected: Sequence[Any],
    inputs: Sequence[Any] | None = None,
    tolerance: float = 0.0,
    rel_tolerance: float = 0.0,
    min_accuracy: float | None = None,
) -> tuple[float, bool, list[Mismatch], str]:
    """Accuracy (share of rows that match), pass/fail, the worst mismatches, a summary."""
    if tolerance < 0 or rel_tolerance < 0:
        raise InvalidConfigError(
            f"tolerance and rel_tolerance must be zero or more, got {tolerance} and {rel_tolerance}"
        )
    if len(expected) != len(predictions):
        raise VerificationError(
            f"the model server answered {len(predictions)} prediction(s) for "
            f"{len(expected)} expected"
        )
    mismatches = []
    for row, (got, want) in enumerate(zip(predictions, expected, strict=True)):
        error = compare(got, want, tolerance, rel_tolerance)
        if error is not None:
            quoted = inputs[row] if inputs is not None and row < len(inputs) else None
            shown = None if math.isinf(error) else error
            mismatches.append(Mismatch(row=row, input=quoted, expected=want, got=got, error=shown))
    accuracy = 1 - len(mismatches) / len(expected) if expected else 1.0
    wanted = 1.0 if min_accuracy is None else min_accuracy
    passed = accuracy >= wanted
    worst = sorted(mismatches, key=lambda m: -(math.inf if m.error is None else m.error))
    within = (
        f"within {tolerance:g} or {rel_tolerance:g} relative"
        if (tolerance or rel_tolerance)
        else "exactly"
    )
    summary = (
        f"live accuracy {accuracy:.4g} on {len(expected)} row(s) "
        f"({'>=' if passed else '<'} {wanted:.4g}; numbers must match {within})"
    )
    if worst and not passed:
        summary += "; worst mismatches: " + "; ".join(_describe(m) for m in worst[:WORST_SHOWN])
    return accuracy, passed, worst[:WORST_SHOWN], summary


def verify_predictions(
    server: ModelServer,
    data: Any,
    expected: Sequence[Any] | None = None,
    tolerance: float = 0.0,
    rel_tolerance: float = 0.0,
    min_accuracy: float | None = None,
) -> VerificationResult:
    """Send `data` to a live server and compare its answers with `expected`.

    Without `min_accuracy` every row must match. Raises `VerificationError` (with the
    result) on failure, so a transaction around the rollout undoes it.
    """
    predictions = prediction_list(server.predict(data))
    where = f"from {server.prediction_url}"
    result = VerificationResult(
        uuid=str(server.uuid),
        prediction_url=server.prediction_url,
        rows=len(predictions),
        predictions=predictions,
        accuracy=None,
        passed=True,
        message=f"{len(predictions)} live prediction(s) {where}",
        tolerance=tolerance,
        rel_tolerance=rel_tolerance,
    )
    if expected is None:
        return result
    accuracy, passed, mismatches, summary = check_predictions(
        predictions,
        list(as_json(list(expected))),
        input_rows(data),
        tolerance,
        rel_tolerance,
        min_accuracy,
    )
    result = result.model_copy(
        update={
            "accuracy": accuracy,
            "passed": passed,
            "mismatches": mismatches,
            "message": f"{summary} {where}" if passed else summary.replace(" (", f" {where} (", 1),
        }
    )
    if not passed:
        raise VerificationError(
            f"verification of model server {server.uuid} failed: {result.message}", result
        )
    return result


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _describe(m: Mismatch) -> str:
    off = f" (off by {m.error:.4g})" if m.error is not None else ""
    where = f"row {m.row}" + (f" {_short(m.input)}" if m.input is not None else "")
    return f"{where}: expected {_short(m.expected)}, got {_short(m.got)}{off}"


def _short(value: Any, limit: int = 160) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
