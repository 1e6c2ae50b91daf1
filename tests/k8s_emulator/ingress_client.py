"""A steady client of the data plane's ingress, for zero-failure checks and the bench.

The progressive tests' `SteadyClient` (one keep-alive connection, requests back to back, a
request dropped unanswered on an idle connection sent once more, a timeline of answers),
aimed at a platform's inference path with its routing headers instead of `/invocations`.
"""

from __future__ import annotations

import http.client
import json
import time
from typing import Any
from urllib.parse import urlsplit

from tests.progressive.helpers import Answer, SteadyClient


def prediction_of(answer: Any) -> Any:
    """The first prediction of an answer in any of the three protocols."""
    if "predictions" in answer:
        return answer["predictions"][0]
    if "outputs" in answer:
        return answer["outputs"][0]["data"][0]
    return answer["data"]["ndarray"][0]


class IngressClient(SteadyClient):
    """POSTs `body` to `url + path` with `headers`; `timeline` says which model answered."""

    def __init__(
        self,
        url: str,
        path: str,
        body: dict[str, Any],
        headers: dict[str, str] | None = None,
        pause: float = 0.002,
    ) -> None:
        super().__init__(f"{url}/invocations", {}, pause=pause)
        self.body = json.dumps(body).encode()
        self.path = path
        self.headers = {"Content-Type": "application/json", **(headers or {})}
        assert urlsplit(url).path == "", url

    def _record(self, status: int, answer: bytes) -> bool:
        ok = status == 200
        prediction = prediction_of(json.loads(answer)) if ok else None
        self.timeline.append(Answer(time.monotonic(), ok, prediction))
        return ok

    def _post(self, conn: http.client.HTTPConnection) -> tuple[int, bytes]:
        if self.pause:
            time.sleep(self.pause)  # leave the shared CPUs to the servers under test
        conn.request("POST", self.path, self.body, self.headers)
        response = conn.getresponse()
        return response.status, response.read()
