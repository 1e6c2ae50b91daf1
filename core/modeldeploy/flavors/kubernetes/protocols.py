"""Inference protocols spoken over HTTP: request bodies, response parsing, one POST helper.

- Seldon protocol (Seldon Core 1): POST `.../api/v1.0/predictions` with
  `{"data": {"ndarray": [...]}}`; the answer carries `data.ndarray` (or `data.tensor`).
- KServe v1 (TensorFlow-Serving style): POST `/v1/models/<name>:predict` with
  `{"instances": [...]}`; the answer is `{"predictions": [...]}`.
- Open Inference Protocol (v2; KServe v2, MLServer, Triton, Seldon `protocol: v2`):
  POST `/v2/models/<name>/infer` with `{"inputs": [{"name", "shape", "datatype", "data"}]}`;
  the answer has `outputs` in the same tensor form (data in row-major order).

Callers may pass numpy arrays, pandas frames or nested lists; a dict already in the
protocol's own form is sent as it is.
"""

from __future__ import annotations

from typing import Any

from modeldeploy.errors import PlatformError

DEFAULT_TIMEOUT = 30.0


def to_rows(data: Any) -> Any:
    """Plain JSON-able nested lists from numpy arrays, pandas objects or sequences."""
    if hasattr(data, "to_numpy"):
        data = data.to_numpy()
    if hasattr(data, "tolist"):
        return data.tolist()
    if isinstance(data, tuple):
        return [to_rows(x) for x in data]
    if isinstance(data, list):
        return [to_rows(x) for x in data]
    return data


# --- Seldon protocol -------------------------------------------------------------------


def seldon_request(data: Any) -> dict[str, Any]:
    if isinstance(data, dict) and ({"data", "jsonData", "strData", "binData"} & data.keys()):
        return data
    return {"data": {"ndarray": to_rows(data)}}


def seldon_response(body: dict[str, Any]) -> Any:
    payload = body.get("data")
    if isinstance(payload, dict):
        if "ndarray" in payload:
            return payload["ndarray"]
        tensor = payload.get("tensor")
        if isinstance(tensor, dict):
            return reshape(tensor.get("values") or [], tensor.get("shape") or [])
    for key in ("jsonData", "strData"):
        if key in body:
            return body[key]
    raise PlatformError(f"the Seldon server answered without data: {_short(body)}")


# --- KServe v1 -------------------------------------------------------------------------


def v1_request(data: Any) -> dict[str, Any]:
    if isinstance(data, dict) and ({"instances", "inputs"} & data.keys()):
        return data
    return {"instances": to_rows(data)}


def v1_response(body: dict[str, Any]) -> Any:
    if "predictions" in body:
        return body["predictions"]
    if "outputs" in body:
        return body["outputs"]
    raise PlatformError(f"the model server answered without predictions: {_short(body)}")


# --- Open Inference Protocol (v2) ------------------------------------------------------


def v2_request(data: Any, input_name: str = "input-0") -> dict[str, Any]:
    if isinstance(data, dict) and "inputs" in data:
        return data
    rows = to_rows(data)
    shape = infer_shape(rows)
    flat = flatten(rows)
    return {
        "inputs": [{"name": input_name, "shape": shape, "datatype": datatype(flat), "data": flat}]
    }


def v2_response(body: dict[str, Any]) -> Any:
    outputs = body.get("outputs")
    if not isinstance(outputs, list) or not outputs:
        raise PlatformError(f"the v2 model server answered without outputs: {_short(body)}")
    shaped = {
        str(out.get("name")): reshape(out.get("data") or [], out.get("shape") or [])
        for out in outputs
    }
    if len(shaped) == 1:
        return next(iter(shaped.values()))
    return shaped


def infer_shape(rows: Any) -> list[int]:
    shape: list[int] = []
    current = rows
    while isinstance(current, list):
        shape.append(len(current))
        if not current:
            break
        current = current[0]
    return shape or [1]


def flatten(rows: Any) -> list[Any]:
    if not isinstance(rows, list):
        return [rows]
    out: list[Any] = []
    for item in rows:
        out.extend(flatten(item))
    return out


def datatype(flat: list[Any]) -> str:
    if flat and all(isinstance(x, bool) for x in flat):
        return "BOOL"
    if flat and all(isinstance(x, int) and not isinstance(x, bool) for x in flat):
        return "INT64"
    if all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in flat):
        return "FP64"
    return "BYTES"


def reshape(flat: list[Any], shape: list[int]) -> Any:
    """Row-major nested lists of `shape` from `flat`; 1-d (or unknown) shapes stay flat."""
    if len(shape) <= 1:
        return list(flat)
    size = 1
    for dim in shape[1:]:
        size *= max(int(dim), 0)
    if size == 0:
        return [[] for _ in range(int(shape[0]))]
    return [reshape(flat[i * size : (i + 1) * size], shape[1:]) for i in range(int(shape[0]))]


# --- transport -------------------------------------------------------------------------


def post_json(
    url: str,
    payload: dict[str, Any],
    host: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> dict[str, Any]:
    """POST JSON and return the JSON object answered; errors quote the server's message."""
    from modeldeploy.http import JsonClient

    headers = {"Host": host} if host else None
    body = JsonClient(timeout=timeout).post_json(url, payload, headers)
    if not isinstance(body, dict):
        raise PlatformError(f"prediction request to {url} answered {_short(body)}")
    return body


def _short(value: Any, limit: int = 500) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit] + "..."
