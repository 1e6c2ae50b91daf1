"""The platforms' inference protocols, adapted to an MLflow scoring server's `/invocations`.

What each platform's model server accepts and answers (as
tests/flavors_kubernetes/protocol_servers.py documents them):
- Seldon protocol: `.../api/v1.0/predictions`, `{"data": {"ndarray": rows}}` ->
  `{"data": {"names": [...], "ndarray": [...]}, "meta": {}}`;
- KServe v1: `/v1/models/<m>:predict`, `{"instances": rows}` -> `{"predictions": [...]}`;
- Open Inference Protocol v2: `/v2/models/<m>/infer`, one input tensor `{"name", "shape",
  "datatype", "data"}` -> `{"model_name", "id", "parameters", "outputs": [tensor]}`.
Anything else is refused with the protocol's error shape and 400, before a model sees it.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from modeldeploy.flavors.kubernetes.protocols import datatype, flatten, infer_shape, reshape

_V1 = re.compile(r"^/v1/models/(?P<model>[^/:]+):predict$")
_V2 = re.compile(r"^/v2/models/(?P<model>[^/]+)(?:/versions/[^/]+)?/infer$")
SELDON_PATHS = ("/api/v1.0/predictions", "/api/v0.1/predictions")


class ProtocolError(ValueError):
    """A request body the protocol does not allow (answered 400)."""


@dataclass(frozen=True)
class Call:
    """One inference request: which protocol, which model the path names."""

    protocol: str  # seldon | v1 | v2
    model: str | None


def call_of(path: str) -> Call | None:
    """The protocol of an inference path (None: not an inference path)."""
    if path in SELDON_PATHS:
        return Call("seldon", None)
    for protocol, pattern in (("v1", _V1), ("v2", _V2)):
        match = pattern.match(path)
        if match:
            return Call(protocol, match["model"])
    return None


def _matrix(rows: Any, what: str) -> list[list[Any]]:
    if not (isinstance(rows, list) and rows and all(isinstance(r, list) for r in rows)):
        raise ProtocolError(f"{what} must be a non-empty list of rows")
    return rows


def rows_of(call: Call, body: Any) -> list[list[Any]]:
    """The rows of features a request carries."""
    if not isinstance(body, dict):
        raise ProtocolError("the request body must be a JSON object")
    if call.protocol == "seldon":
        data = body.get("data")
        return _matrix(data.get("ndarray") if isinstance(data, dict) else None, "data.ndarray")
    if call.protocol == "v1":
        return _matrix(body.get("instances"), '"instances"')
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
        raise ProtocolError('expected exactly one input tensor in "inputs"')
    shape, data = inputs[0].get("shape"), inputs[0].get("data")
    if not (isinstance(shape, list) and len(shape) == 2 and isinstance(data, list)):
        raise ProtocolError("the input tensor needs a 2-d shape and data")
    flat = flatten(data)
    if len(flat) != shape[0] * shape[1]:
        raise ProtocolError(f"the input tensor has {len(flat)} values, its shape says {shape}")
    return _matrix(reshape(flat, shape), "the input tensor")


def invocation(rows: list[list[Any]], columns: list[str] | None) -> dict[str, Any]:
    """The `/invocations` body: named columns when the model's signature has them."""
    if columns is not None:
        return {"dataframe_split": {"columns": columns, "data": rows}}
    return {"instances": rows}


def answer(call: Call, model: str, predictions: Any) -> dict[str, Any]:
    """The protocol's answer for the scoring server's predictions."""
    if call.protocol == "seldon":
        return {"data": {"names": ["t:0"], "ndarray": predictions}, "meta": {}}
    if call.protocol == "v1":
        return {"predictions": predictions}
    flat = flatten(predictions)
    shape = infer_shape(predictions) if isinstance(predictions, list) else [1]
    return {
        "model_name": call.model or model,
        "id": str(uuid.uuid4()),
        "parameters": {},
        "outputs": [{"name": "predict", "shape": shape, "datatype": datatype(flat), "data": flat}],
    }


def error(call: Call | None, message: str) -> dict[str, Any]:
    """The protocol's error body."""
    if call is not None and call.protocol == "seldon":
        return {"status": {"code": 400, "info": message, "status": "FAILURE"}}
    return {"error": message}
