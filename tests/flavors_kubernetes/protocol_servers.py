"""Loopback HTTP servers that speak the documented inference protocols, for `predict()` tests.

Each implements the request and response bodies as the protocols document them and refuses
anything else with the protocol's own error shape, so a client that sends the wrong body
fails here as it would against the real server:

- Seldon protocol: POST /seldon/<ns>/<name>/api/v1.0/predictions, {"data": {"ndarray": ...}}
  -> {"data": {"names": [...], "ndarray": [...]}, "meta": {}}
- KServe v1: POST /v1/models/<name>:predict, {"instances": [...]} -> {"predictions": [...]}
- Open Inference Protocol (v2): POST [/seldon/<ns>/<name>]/v2/models/<name>/infer with
  {"inputs": [{"name", "shape", "datatype", "data"}]} -> {"model_name", "outputs": [...]}

The "model" predicts 1 when a row's features sum above 10, else 0.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def predict_rows(rows: list[list[float]]) -> list[int]:
    return [int(sum(row) > 10) for row in rows]


class ProtocolServer:
    """One server answering all three protocols for one model server name."""

    def __init__(
        self, namespace: str, name: str, host: str | None = None, mesh: bool = False
    ) -> None:
        self.namespace = namespace
        self.name = name
        self.expected_host = host
        #: route like Seldon Core 2's mesh: by the `Seldon-Model` header only
        self.mesh = mesh
        self.requests: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                model = self.headers.get("Seldon-Model")
                outer.requests.append(
                    {
                        "path": self.path,
                        "host": self.headers.get("Host"),
                        "seldon_model": model,
                        "body": body,
                    }
                )
                if outer.mesh and model != outer.name:
                    code, answer = 404, {"error": f"no route for Seldon-Model {model}"}
                else:
                    code, answer = outer.route(self.path, self.headers.get("Host"), body)
                data = json.dumps(answer).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> ProtocolServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- routing ---------------------------------------------------------------------------

    def route(self, path: str, host: str | None, body: Any) -> tuple[int, Any]:
        seldon = f"/seldon/{self.namespace}/{self.name}"
        if path == f"{seldon}/api/v1.0/predictions":
            return self.seldon(body)
        if path in (f"{seldon}/v2/models/{self.name}/infer", f"/v2/models/{self.name}/infer"):
            if not path.startswith(seldon) and not self._host_ok(host):
                return 404, {"error": f"no route for host {host}"}
            return self.v2(body)
        if path == f"/v1/models/{self.name}:predict":
            if not self._host_ok(host):
                return 404, {"error": f"no route for host {host}"}
            return self.v1(body)
        return 404, {"error": f"no route for {path}"}

    def _host_ok(self, host: str | None) -> bool:
        return self.expected_host is None or host == self.expected_host

    @staticmethod
    def seldon(body: Any) -> tuple[int, Any]:
        rows = (body or {}).get("data", {}).get("ndarray") if isinstance(body, dict) else None
        if not _is_matrix(rows):
            failure = {"code": 400, "info": "expected data.ndarray", "status": "FAILURE"}
            return 400, {"status": failure}
        out = predict_rows(rows)
        return 200, {"data": {"names": ["t:0"], "ndarray": out}, "meta": {}}

    @staticmethod
    def v1(body: Any) -> tuple[int, Any]:
        rows = body.get("instances") if isinstance(body, dict) else None
        if not _is_matrix(rows):
            return 400, {"error": 'Expected "instances" to be a list of rows'}
        return 200, {"predictions": predict_rows(rows)}

    def v2(self, body: Any) -> tuple[int, Any]:
        inputs = body.get("inputs") if isinstance(body, dict) else None
        if not isinstance(inputs, list) or len(inputs) != 1:
            return 400, {"error": 'expected one input tensor in "inputs"'}
        tensor = inputs[0]
        shape, data = tensor.get("shape"), tensor.get("data")
        ok = (
            isinstance(tensor.get("name"), str)
            and tensor.get("datatype") in ("FP32", "FP64", "INT64", "INT32")
            and isinstance(shape, list)
            and len(shape) == 2
            and isinstance(data, list)
            and len(data) == shape[0] * shape[1]
        )
        if not ok:
            return 400, {"error": "input tensor needs name, datatype, a 2-d shape and flat data"}
        rows = [data[i * shape[1] : (i + 1) * shape[1]] for i in range(shape[0])]
        out = predict_rows(rows)
        return 200, {
            "model_name": self.name,
            "id": "test",
            "parameters": {},
            "outputs": [
                {"name": "predict", "shape": [len(out), 1], "datatype": "INT64", "data": out}
            ],
        }


def _is_matrix(rows: Any) -> bool:
    return (
        isinstance(rows, list)
        and bool(rows)
        and all(isinstance(r, list) and all(isinstance(x, int | float) for x in r) for r in rows)
    )
