"""The router's HTTP handling against small real HTTP servers on loopback (no MLflow):
framing cases MLflow's clients use, failover, agreement with tolerance, metrics."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from modeldeploy.flavors.mlflow.router import (
    CHALLENGER,
    CHAMPION,
    METRICS_PATH,
    PREDICTIONS_PATH,
    Backend,
    RouterThread,
    Table,
    answers_agree,
)
from prometheus_client.parser import text_string_to_metric_families


def make_backend(answer: float, chunked: bool = False) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            rows = len(json.loads(body)["inputs"])
            payload = json.dumps({"predictions": [answer] * rows}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            if chunked:
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for part in (payload[:5], payload[5:]):
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                self.wfile.write(b"0\r\n\r\n")
            else:
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        def do_HEAD(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "42")
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def public() -> Iterator[socket.socket]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    yield sock
    sock.close()


def backend(name: str, server: ThreadingHTTPServer) -> Backend:
    return Backend(name, "127.0.0.1", server.server_address[1])


def post(port: int, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(
            "POST", "/invocations", body, {"Content-Type": "application/json", **(headers or {})}
        )
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def metric(port: int, name: str, **labels: str) -> float:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", METRICS_PATH)
    text = conn.getresponse().read().decode()
    conn.close()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return 0.0


def test_framing_failover_mirror_agreement_and_metrics(public: socket.socket) -> None:
    champion, challenger = make_backend(1.0, chunked=True), make_backend(1.0000001)
    port = public.getsockname()[1]
    router = RouterThread(public, Table(champion=backend(CHAMPION, champion)))
    try:
        body = json.dumps({"inputs": [[1, 2], [3, 4]]}).encode()
        # A chunked answer of the backend reaches the client whole.
        assert post(port, body) == (200, b'{"predictions": [1.0, 1.0]}')

        # curl's `Expect: 100-continue` and a chunked request body.
        with socket.create_connection(("127.0.0.1", port)) as raw:
            raw.sendall(
                b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Expect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n"
            )
            assert raw.recv(64).startswith(b"HTTP/1.1 100 Continue")
            raw.sendall(b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
            answer = b""
            while not answer.endswith(b"\r\n0\r\n\r\n"):
                answer += raw.recv(4096)
            head, _, chunks = answer.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200") and b"Transfer-Encoding: chunked" in head
            assert chunks == b'5\r\n{"pre\r\n16\r\ndictions": [1.0, 1.0]}\r\n0\r\n\r\n'

        # HEAD has no body even with a Content-Length.
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("HEAD", "/ping")
        response = conn.getresponse()
        assert response.status == 200 and response.read() == b""
        conn.close()

        # All traffic to a challenger that is gone: clients get the champion's answers.
        gone = socket.socket()
        gone.bind(("127.0.0.1", 0))
        dead = Backend(CHALLENGER, "127.0.0.1", gone.getsockname()[1])
        gone.close()
        router.set_table(Table(champion=backend(CHAMPION, champion), challenger=dead, weight=100))
        assert [post(port, body)[0] for _ in range(5)] == [200] * 5
        assert (
            metric(
                port, "modeldeploy_requests_total", variant=CHALLENGER, code="502", mirror="false"
            )
            == 5
        )
        assert (
            metric(port, "modeldeploy_requests_total", variant=CHAMPION, code="200", mirror="false")
            == 7
        )

        # Mirrored copies: answers within the tolerance agree.
        router.set_table(
            Table(
                champion=backend(CHAMPION, champion),
                challenger=backend(CHALLENGER, challenger),
                mirror_percent=100,
            )
        )
        assert [post(port, body)[0] for _ in range(4)] == [200] * 4
        deadline = time.monotonic() + 30
        while metric(port, "modeldeploy_agreement_total", variant=CHALLENGER, result="agree") < 4:
            assert time.monotonic() < deadline, "the mirrored copies were never compared"
            time.sleep(0.02)
        assert metric(port, "modeldeploy_mirror_percent") == 100
    finally:
        router.close()
        champion.shutdown()
        challenger.shutdown()


def test_answers_agree_within_tolerance() -> None:
    assert answers_agree({"predictions": [1.0, 2]}, {"predictions": [1.0000001, 2]})
    assert not answers_agree({"predictions": [1.0, 2]}, {"predictions": [1.01, 2]})
    assert not answers_agree([0, 0], [0, 0, 0])
    assert answers_agree(["setosa"], ["setosa"]) and not answers_agree(["a"], ["b"])
    assert not answers_agree([True], [1])
    assert not answers_agree({"a": 1}, {"b": 1})


def test_draining_answers_a_waiting_keep_alive_client_then_closes(
    public: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    import modeldeploy.flavors.mlflow.router as router_module

    # Long enough that a loaded machine cannot turn the idle wait into a close under us.
    monkeypatch.setattr(router_module, "DRAIN_IDLE_SECONDS", 60.0)
    champion = make_backend(1.0)
    port = public.getsockname()[1]
    router = RouterThread(public, Table(champion=backend(CHAMPION, champion)))
    try:
        body = json.dumps({"inputs": [[1, 2]]}).encode()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("POST", "/invocations", body)
        first = conn.getresponse()
        assert first.status == 200 and first.getheader("connection") is None
        first.read()
        router.begin_drain()
        assert not router.drained()  # our idle keep-alive connection is still open
        conn.request("POST", "/invocations", body)  # the same connection, while draining
        last = conn.getresponse()
        assert last.status == 200 and last.getheader("connection") == "close"
        assert last.read() == b'{"predictions": [1.0]}'
        conn.close()
        deadline = time.monotonic() + 10
        while not router.drained():
            assert time.monotonic() < deadline, "the router never finished draining"
            time.sleep(0.01)
    finally:
        router.close()
        champion.shutdown()


def _logged(port: int, since: float = 0.0) -> list[dict[str, object]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", f"{PREDICTIONS_PATH}?since={since}")
    text = conn.getresponse().read().decode()
    conn.close()
    return [json.loads(line) for line in text.splitlines()]


def test_split_requests_are_compared_both_ways_and_answers_logged_by_request_id(
    public: socket.socket,
) -> None:
    champion, challenger = make_backend(1.0), make_backend(2.0)
    port = public.getsockname()[1]
    table = Table(
        champion=backend(CHAMPION, champion),
        challenger=backend(CHALLENGER, challenger),
        weight=50,
        compare_percent=100,
    )
    router = RouterThread(public, table)
    try:
        body = json.dumps({"inputs": [[1, 2]]}).encode()
        ids = []
        for i in range(20):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("POST", "/invocations", body, {"X-Request-Id": f"client-{i}"})
            response = conn.getresponse()
            assert response.status == 200
            ids.append(response.getheader("x-request-id"))
            response.read()
            conn.close()
        assert ids == [f"client-{i}" for i in range(20)]  # the client's own ids are kept
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("POST", "/invocations", body)
        made = conn.getresponse().getheader("x-request-id")
        conn.close()
        assert made is not None and len(made) == 32  # one is made when the client sent none

        # Every answer, both the client's and the copy to the other variant, is compared
        # (they differ: 1.0 against 2.0) and logged by request id.
        deadline = time.monotonic() + 30
        while (
            metric(port, "modeldeploy_agreement_total", variant=CHALLENGER, result="disagree") < 21
        ):
            assert time.monotonic() < deadline, "split requests were not compared"
            time.sleep(0.02)
        assert metric(port, "modeldeploy_agreement_total", variant=CHALLENGER, result="agree") == 0
        served = {
            v: metric(port, "modeldeploy_requests_total", variant=v, code="200", mirror="false")
            for v in (CHAMPION, CHALLENGER)
        }
        copies = {
            v: metric(port, "modeldeploy_requests_total", variant=v, code="200", mirror="true")
            for v in (CHAMPION, CHALLENGER)
        }
        assert served[CHAMPION] > 0 and served[CHALLENGER] > 0  # a real split
        assert copies == {CHAMPION: served[CHALLENGER], CHALLENGER: served[CHAMPION]}
        logged = _logged(port)
        by_id: dict[object, dict[object, object]] = {}
        for entry in logged:
            by_id.setdefault(entry["request_id"], {})[entry["variant"]] = entry["answer"]
        assert by_id["client-3"] == {
            CHAMPION: {"predictions": [1.0]},
            CHALLENGER: {"predictions": [2.0]},
        }
        assert made in by_id
        assert _logged(port, since=time.time() + 60) == []

    finally:
        router.close()
        champion.shutdown()
        challenger.shutdown()


def test_copies_go_to_the_other_variant_only_on_a_split_or_a_mirror() -> None:
    a, b = Backend(CHAMPION, "127.0.0.1", 1), Backend(CHALLENGER, "127.0.0.1", 2)
    assert Table(champion=a).copy_to(a) is None
    unsplit = Table(champion=a, challenger=b, compare_percent=100)
    assert unsplit.copy_to(a) is None
    assert Table(champion=a, challenger=b, mirror_percent=100).copy_to(a) is b
    split = Table(champion=a, challenger=b, weight=10, compare_percent=100)
    assert split.copy_to(a) is b and split.copy_to(b) is a
    assert Table(champion=a, challenger=b, weight=10).copy_to(b) is None


def _read_until_closed(sock: socket.socket) -> bytes:
    parts = []
    while chunk := sock.recv(65536):
        parts.append(chunk)
    return b"".join(parts)


def test_a_connection_accepted_as_the_drain_begins_is_answered(
    public: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The router had just accepted a connection when it began draining: asyncio sets the
    connection up over the next loop iterations, after the drain looked for open ones. Its
    request is answered (and told to close), not dropped. The order is asyncio's iterations
    on one event loop, not timing."""
    import asyncio

    import modeldeploy.flavors.mlflow.router as router_module

    monkeypatch.setattr(router_module, "DRAIN_IDLE_SECONDS", 60.0)
    champion = make_backend(1.0)
    port = public.getsockname()[1]
    body = json.dumps({"inputs": [[1, 2]]}).encode()

    async def scenario() -> bytes:
        router = router_module.Router(Table(champion=backend(CHAMPION, champion)))
        await router.start(public.dup())
        client = socket.create_connection(("127.0.0.1", port), timeout=30)
        with client:
            client.sendall(
                b"POST /invocations HTTP/1.1\r\nHost: router\r\nContent-Length: %d\r\n\r\n%s"
                % (len(body), body)
            )
            # One iteration for the router to accept it, then the drain begins.
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            drain = asyncio.create_task(router.drain())
            answer = await asyncio.to_thread(_read_until_closed, client)
            await asyncio.wait_for(drain, 30)
            return answer

    try:
        answer = asyncio.run(scenario())
    finally:
        champion.shutdown()
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), answer
    assert b"connection: close" in head.lower() and payload == b'{"predictions": [1.0]}'
