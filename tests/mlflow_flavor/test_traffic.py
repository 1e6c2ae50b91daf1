"""Traffic routing of the local flavor against real scoring servers: split, stickiness,
mirror, metrics, state in the record, promote and remove under a steady client."""

from __future__ import annotations

import concurrent.futures
import http.client
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from modeldeploy.errors import InvalidConfigError, ModelDeployError
from modeldeploy.flavors.mlflow.deployer import MLflowModelDeployer
from modeldeploy.flavors.mlflow.records import LOG, RECORD, STATUS, read_json
from modeldeploy.flavors.mlflow.routing import WARM_UP_ATTEMPTS, WARM_UP_EXAMPLE
from modeldeploy.flavors.mlflow.server import MLflowModelServer
from modeldeploy.status import ServiceState
from modeldeploy.traffic import CHALLENGER, CHAMPION, Capability, TrafficControl, VariantStatus
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import SavedModels
from tests.steady_client import CLIENT_TIMEOUT, SteadyClient

HELD_MODEL_CODE = Path(__file__).parent / "models" / "held_model.py"


def wait_until(predicate: Callable[[], bool], timeout: float = 180.0) -> None:
    """Poll another process's state (the supervisor's) until it says so."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout:g}s: {predicate}")
        time.sleep(0.05)


def both_ready(server: MLflowModelServer) -> bool:
    variants = server.traffic_status().variants
    return len(variants) == 2 and all(v.ready for v in variants)


def samples(metrics_url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the endpoint, parsed by Prometheus' own client library."""
    text = requests.get(metrics_url, timeout=10).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def count(metrics_url: str, variant: str, code: str, mirror: str) -> float:
    key = (
        "modeldeploy_requests_total",
        (("code", code), ("mirror", mirror), ("variant", variant)),
    )
    return samples(metrics_url).get(key, 0.0)


@pytest.fixture(scope="module")
def held_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pyfunc that answers 7 per row, blocks while `hold` exists, fails while `fail` does."""
    import mlflow.pyfunc

    path = tmp_path_factory.mktemp("held") / "model"
    mlflow.pyfunc.save_model(str(path), python_model=str(HELD_MODEL_CODE), pip_requirements=[])
    return path


@pytest.fixture
def control(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The folder through which a test steers live held models (models/held_model.py)."""
    path = tmp_path / "control"
    path.mkdir()
    monkeypatch.setenv("MODELDEPLOY_TEST_CONTROL", str(path))
    return path


def test_split_stickiness_metrics_fresh_process_restart_and_promote(
    mlflow_deployer: MLflowModelDeployer, saved_models: SavedModels, md_home: Path
) -> None:
    rows = {"dataframe_split": {"columns": saved_models.columns, "data": saved_models.sample_rows}}
    config = {"model_name": "iris", "model_uri": str(saved_models.first), "pipeline_name": "p"}
    server = mlflow_deployer.deploy(config, timeout=120).server
    assert isinstance(server, MLflowModelServer) and isinstance(server, TrafficControl)
    assert {Capability.TRAFFIC_SPLIT, Capability.MIRROR, Capability.SIDE_BY_SIDE} <= (
        mlflow_deployer.capabilities
    )
    url = server.prediction_url
    assert url is not None
    alone = server.traffic_status()
    assert [(v.name, v.weight, v.ready, v.url) for v in alone.variants] == [
        (CHAMPION, 100, True, url)
    ]
    assert alone.metrics_url is None  # no router while one variant serves

    # Bad input is refused before anything changes.
    with pytest.raises(InvalidConfigError, match="MLmodel"):
        server.add_challenger({**config, "model_uri": str(saved_models.not_a_model)})
    with pytest.raises(ModelDeployError, match="no challenger"):
        server.set_traffic(10)
    assert (read_json(server.dir / RECORD) or {}).get("traffic") is None

    server.add_challenger({**config, "model_uri": str(saved_models.second)})
    with pytest.raises(ModelDeployError, match="already has a challenger"):
        server.add_challenger(config)
    with pytest.raises(InvalidConfigError, match="0 to 100"):
        server.set_traffic(101)
    with pytest.raises(InvalidConfigError, match="header name"):
        server.set_traffic(10, sticky_header="X User")
    wait_until(lambda: both_ready(server))
    status = server.traffic_status()
    assert status.metrics_url == url.removesuffix("/invocations") + "/modeldeploy/metrics"
    # Each variant's own URL answers with its own model, bypassing the router.
    own = {
        v.name: requests.post(v.url or "", json=rows, timeout=10).json() for v in status.variants
    }
    assert own == {CHAMPION: {"predictions": [0, 0, 0]}, CHALLENGER: {"predictions": [2, 2, 2]}}

    # Weights are respected per request: the challenger's share within 4 standard deviations.
    server.set_traffic(30)
    wait_until(lambda: server.traffic_status().weight_of(CHALLENGER) == 30)
    session = requests.Session()
    n = 600
    answers = [session.post(url, json=rows, timeout=10).json()["predictions"] for _ in range(n)]
    assert all(a in ([0, 0, 0], [2, 2, 2]) for a in answers)
    on_challenger = sum(a == [2, 2, 2] for a in answers)
    assert abs(on_challenger / n - 0.3) < 4 * math.sqrt(0.3 * 0.7 / n)

    # Metrics count exactly what the clients saw, per variant, parseable by Prometheus.
    metrics_url = status.metrics_url
    assert metrics_url is not None
    assert count(metrics_url, CHALLENGER, "200", "false") == on_challenger
    assert count(metrics_url, CHAMPION, "200", "false") == n - on_challenger
    parsed = samples(metrics_url)
    for variant, seen in ((CHAMPION, n - on_challenger), (CHALLENGER, on_challenger)):
        labels = (("le", "+Inf"), ("mirror", "false"), ("variant", variant))
        assert parsed[("modeldeploy_request_duration_seconds_bucket", labels)] == seen
    assert parsed[("modeldeploy_variant_weight", (("variant", CHALLENGER),))] == 30

    # Stickiness: a user keeps one variant; raising the weight keeps who had the challenger.
    server.set_traffic(30, sticky_header="X-User")
    wait_until(lambda: server.traffic_status().sticky_header == "X-User")

    def variant_of(user: int) -> str:
        seen = {
            tuple(
                session.post(url, json=rows, headers={"X-User": f"u{user}"}, timeout=10).json()[
                    "predictions"
                ]
            )
            for _ in range(3)
        }
        assert len(seen) == 1, f"user u{user} saw both variants: {seen}"
        return CHALLENGER if seen == {(2, 2, 2)} else CHAMPION

    at_30 = {user: variant_of(user) for user in range(40)}
    assert set(at_30.values()) == {CHAMPION, CHALLENGER}
    server.set_traffic(60, sticky_header="X-User")
    wait_until(lambda: server.traffic_status().weight_of(CHALLENGER) == 60)
    at_60 = {user: variant_of(user) for user in range(40)}
    assert all(at_60[u] == CHALLENGER for u, v in at_30.items() if v == CHALLENGER)
    assert sum(v == CHALLENGER for v in at_60.values()) > sum(
        v == CHALLENGER for v in at_30.values()
    )

    # A fresh process reads the same state from the record and the supervisor's status.
    script = (
        "from modeldeploy import create_deployer;"
        f"d = create_deployer('mlflow', {{'home': {str(md_home)!r}}});"
        f"print(d.get_model_server({str(server.uuid)!r}).traffic_status().model_dump_json())"
    )
    fresh = json.loads(
        subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=True
        ).stdout
    )
    assert fresh == json.loads(server.traffic_status().model_dump_json())
    assert fresh["sticky_header"] == "X-User" and fresh["metrics_url"] == metrics_url
    assert [(v["name"], v["weight"]) for v in fresh["variants"]] == [
        (CHAMPION, 40),
        (CHALLENGER, 60),
    ]

    # A supervisor restart routes exactly as before, from the record alone.
    server.stop()
    wait_until(lambda: server.check_status().state == ServiceState.INACTIVE)
    server.start()
    wait_until(lambda: both_ready(server) and server.traffic_status().weight_of(CHALLENGER) == 60)
    assert {u: variant_of(u) for u in range(10)} == {u: at_60[u] for u in range(10)}

    # Promotion under a steady client: zero failed requests, then the challenger's answers
    # on the public socket, served directly again (no router).
    body = json.dumps(rows).encode()
    port = server.config.port
    assert port is not None
    with SteadyClient(port, body) as client:
        wait_until(lambda: client.sent > 20)
        server.promote_challenger()
        wait_until(lambda: server.traffic_status().metrics_url is None)
        sent = client.sent
        wait_until(lambda: client.sent > sent + 20)
    assert client.failed == 0, client.failures
    assert json.loads(client.answers[-1]) == {"predictions": [2, 2, 2]}
    after = server.traffic_status()
    assert [(v.name, v.weight, v.model_uri) for v in after.variants] == [
        (CHAMPION, 100, str(saved_models.second))
    ]
    status_now = server.check_status()
    assert status_now.state == ServiceState.ACTIVE and status_now.is_current
    found = mlflow_deployer.get_model_server(server.uuid)
    assert found.config.model_uri == str(saved_models.second)


def test_mirror_is_off_the_client_path_and_remove_leaves_no_failure(
    mlflow_deployer: MLflowModelDeployer,
    saved_models: SavedModels,
    held_model: Path,
    control: Path,
) -> None:
    rows = {"dataframe_split": {"columns": saved_models.columns, "data": saved_models.sample_rows}}
    champion_answer = {"predictions": [0, 0, 0]}
    config = {"model_name": "iris", "model_uri": str(saved_models.first)}
    server = mlflow_deployer.deploy(config, timeout=120).server
    assert isinstance(server, MLflowModelServer)
    url = server.prediction_url
    assert url is not None
    server.add_challenger({**config, "model_uri": str(held_model)})
    wait_until(lambda: both_ready(server))
    server.set_traffic(0, mirror_percent=100)
    wait_until(lambda: server.traffic_status().mirror_percent == 100)
    status = server.traffic_status()
    assert status.mirror_to == CHALLENGER and status.weight_of(CHALLENGER) == 0
    metrics_url = status.metrics_url
    assert metrics_url is not None
    session = requests.Session()

    # The challenger holds every mirrored copy: clients still get all their answers.
    (control / "hold").touch()
    answers = [session.post(url, json=rows, timeout=10).json() for _ in range(10)]
    assert answers == [champion_answer] * 10
    assert count(metrics_url, CHAMPION, "200", "false") == 10
    assert count(metrics_url, CHALLENGER, "200", "true") == 0  # all ten still held
    (control / "hold").unlink()
    wait_until(lambda: count(metrics_url, CHALLENGER, "200", "true") == 10)
    agreement = samples(metrics_url)
    assert (
        agreement[
            ("modeldeploy_agreement_total", (("result", "disagree"), ("variant", CHALLENGER)))
        ]
        == 10
    )
    assert (
        "modeldeploy_agreement_total",
        (("result", "agree"), ("variant", CHALLENGER)),
    ) not in agreement

    # A failing challenger changes nothing for clients; its errors are counted (MLflow's
    # scoring server answers 400 when the model raises).
    (control / "fail").touch()
    answers = [session.post(url, json=rows, timeout=10) for _ in range(10)]
    assert [(a.status_code, a.json()) for a in answers] == [(200, champion_answer)] * 10
    wait_until(lambda: count(metrics_url, CHALLENGER, "400", "true") == 10)
    (control / "fail").unlink()

    # Removing the challenger under a steady client: zero failures, back to direct serving.
    port = server.config.port
    assert port is not None
    with SteadyClient(port, json.dumps(rows).encode()) as client:
        wait_until(lambda: client.sent > 20)
        server.remove_challenger()
        wait_until(lambda: server.traffic_status().metrics_url is None)
        sent = client.sent
        wait_until(lambda: client.sent > sent + 20)
    assert client.failed == 0, client.failures
    assert {json.loads(a)["predictions"][0] for a in client.answers} == {0}
    assert (read_json(server.dir / RECORD) or {}).get("traffic") is None
    assert [v.name for v in server.traffic_status().variants] == [CHAMPION]
    server.remove_challenger()  # nothing to remove: a no-op, not an error

    # A challenger whose model cannot load gets no traffic and says why. Adding it retires
    # the scoring server on the public socket: its keep-alive clients are answered to the
    # end (`Connection: close`), so even a client that never resends loses nothing.
    with SteadyClient(port, json.dumps(rows).encode()) as client:
        wait_until(lambda: client.sent > 20)
        server.add_challenger({**config, "model_uri": str(saved_models.broken)})
        server.set_traffic(50, mirror_percent=100)
        wait_until(lambda: server.traffic_status().metrics_url is not None)
        sent = client.sent
        wait_until(lambda: client.sent > sent + 20)
    assert client.failed == 0 and client.retried == 0, client.failures
    wait_until(lambda: server.traffic_status().variants[-1].last_error is not None)
    broken = server.traffic_status()
    assert [(v.name, v.ready, v.weight) for v in broken.variants] == [
        (CHAMPION, True, 100),
        (CHALLENGER, False, 0),
    ]
    assert "exited" in (broken.variants[1].last_error or "")
    answers = [session.post(url, json=rows, timeout=10).json() for _ in range(10)]
    assert answers == [champion_answer] * 10

    # The champion's private scoring server crashes after the challenger failed (both were
    # started for one generation): it is restarted all the same. Requests fail only while
    # no champion answers (the router says 502), and the champion answers again.
    killed = champion_pid(server)
    with SteadyClient(port, json.dumps(rows).encode()) as client:
        wait_until(lambda: client.sent > 5)
        crashed_at = time.monotonic()
        os.kill(killed, signal.SIGKILL)
        wait_until(lambda: champion_pid(server) not in (None, killed))
        recovered_at = time.monotonic()
        sent = client.sent
        wait_until(lambda: client.sent > sent + 20)
    # the crash window: from the kill (and the one request then in flight) to the restart
    in_flight = [t for t in client.failed_since if t < crashed_at]
    assert len(in_flight) <= 1 and max(client.failed_since, default=0) < recovered_at
    assert all(f.startswith("502") for f in client.failures), client.failures
    assert {json.loads(a)["predictions"][0] for a in client.answers} == {0}
    assert json.loads(client.answers[-1]) == champion_answer
    assert [(v.name, v.ready) for v in server.traffic_status().variants] == [
        (CHAMPION, True),
        (CHALLENGER, False),
    ]
    server.remove_challenger()
    wait_until(lambda: server.traffic_status().metrics_url is None)


def test_a_challenger_whose_first_prediction_times_out_gets_no_traffic(
    mlflow_deployer: MLflowModelDeployer,
    saved_models: SavedModels,
    held_model: Path,
    control: Path,
) -> None:
    """The warm-up prediction (the model's input example) is held: the challenger is not
    ready and gets none of its 100 %; once it answers it is. Held through every attempt,
    its load has failed, with a reason, and the champion kept every request."""
    rows = {"dataframe_split": {"columns": saved_models.columns, "data": saved_models.sample_rows}}
    champion_answer = {"predictions": [0, 0, 0]}
    slow = control.parent / "slow-first-prediction"
    shutil.copytree(held_model, slow)
    (slow / WARM_UP_EXAMPLE).write_text(json.dumps(rows))
    config = {"model_name": "iris", "model_uri": str(saved_models.first)}
    server = mlflow_deployer.deploy(config, timeout=120).server
    assert isinstance(server, MLflowModelServer)
    url = server.prediction_url
    assert url is not None
    session = requests.Session()

    def timed_out_attempts(seconds: int) -> int:
        text = "".join(p.read_text(errors="replace") for p in server.dir.glob(f"{LOG}*"))
        return text.count(f"its first prediction did not answer within {seconds}s")

    def challenger() -> VariantStatus:
        return server.traffic_status().variants[-1]

    # 8 s per attempt leaves 16 s to look before the last attempt (a loaded machine)
    (control / "hold").touch()
    server.add_challenger({**config, "model_uri": str(slow), "request_timeout": 8})
    server.set_traffic(100)
    wait_until(lambda: timed_out_attempts(8) >= 1)
    answers = [session.post(url, json=rows, timeout=10).json() for _ in range(10)]
    assert answers == [champion_answer] * 10
    assert (challenger().ready, challenger().weight, challenger().last_error) == (False, 0, None)
    (control / "hold").unlink()  # a slow first prediction, then it answers: ready
    wait_until(lambda: challenger().ready)
    assert session.post(url, json=rows, timeout=10).json() == {"predictions": [7, 7, 7]}
    server.remove_challenger()
    wait_until(lambda: server.traffic_status().metrics_url is None)

    (control / "hold").touch()
    server.add_challenger({**config, "model_uri": str(slow), "request_timeout": 1})
    server.set_traffic(100)
    wait_until(lambda: challenger().last_error is not None)
    assert timed_out_attempts(1) == WARM_UP_ATTEMPTS
    failed = challenger()
    assert (failed.ready, failed.weight) == (False, 0)
    assert "did not answer within request_timeout=1s" in (failed.last_error or "")
    answers = [session.post(url, json=rows, timeout=10).json() for _ in range(10)]
    assert answers == [champion_answer] * 10
    (control / "hold").unlink()
    server.remove_challenger()
    wait_until(lambda: server.traffic_status().metrics_url is None)


def champion_pid(server: MLflowModelServer) -> int | None:
    """The champion's private scoring server, as the supervisor reports it."""
    traffic = (read_json(server.dir / STATUS) or {}).get("traffic") or {}
    pid = next((v.get("pid") for v in traffic.get("variants", []) if v["name"] == CHAMPION), None)
    return int(pid) if pid is not None else None


def _post(port: int, body: bytes) -> tuple[int, bytes, dict[str, str]]:
    """One request on a connection of its own: status, answer, lower-case headers."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=CLIENT_TIMEOUT)
    try:
        conn.request("POST", "/invocations", body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, response.read(), {k.lower(): v for k, v in response.getheaders()}
    finally:
        conn.close()


def test_adding_a_challenger_keeps_the_old_server_answering_until_the_router_can(
    mlflow_deployer: MLflowModelDeployer,
    saved_models: SavedModels,
    held_model: Path,
    control: Path,
) -> None:
    """The handover of the public socket, each step awaited: while the champion's private
    scoring server loads (blocked on `hold-load`), the scoring server on the public socket
    answers everything; once the router accepts, that server is told to retire and still
    answers what it holds. The router's answers carry `x-request-id`, the old one's not."""
    rows = {"dataframe_split": {"columns": saved_models.columns, "data": saved_models.sample_rows}}
    body = json.dumps(rows).encode()
    config = {"model_name": "held", "model_uri": str(held_model)}
    server = mlflow_deployer.deploy(config, timeout=120).server
    assert isinstance(server, MLflowModelServer)
    port = server.config.port
    assert port is not None
    old_pid = (read_json(server.dir / STATUS) or {})["child_pid"]
    (control / "hold-load").touch()
    with SteadyClient(port, body) as client:
        wait_until(lambda: client.sent > 5)
        server.add_challenger({**config, "model_uri": str(saved_models.broken)})
        wait_until(lambda: any(control.glob("loading-*")))  # the champion's private one
        # No request waits for that load: the old server answers on old and new connections.
        sent = client.sent
        wait_until(lambda: client.sent > sent + 20)
        status, answer, headers = _post(port, body)
        assert (status, json.loads(answer)) == (200, {"predictions": [7, 7, 7]})
        assert "x-request-id" not in headers
        assert any(control.glob("loading-*")), "the answer waited for the load"

        # The worst moment: the old server holds requests (the steady client's and one on a
        # connection of its own) when the router takes over and it is told to retire.
        (control / f"hold-{old_pid}").touch()
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            held = pool.submit(_post, port, body)
            wait_until(lambda: len(list(control.glob(f"held-{old_pid}-*"))) == 2)
            (control / "hold-load").unlink()
            wait_until(  # in the log or the one rotated away
                lambda: any(
                    "Shutting down" in path.read_text(errors="replace")
                    for path in server.dir.glob(f"{LOG}*")
                )
            )
            # It stopped accepting; the router answers new connections meanwhile.
            status, answer, headers = _post(port, body)
            assert (status, json.loads(answer)) == (200, {"predictions": [7, 7, 7]})
            assert "x-request-id" in headers
            assert not held.done()
            (control / f"hold-{old_pid}").unlink()
            status, answer, headers = held.result(timeout=CLIENT_TIMEOUT)
        assert (status, json.loads(answer)) == (200, {"predictions": [7, 7, 7]})
        assert "x-request-id" not in headers and headers.get("connection") == "close"
        sent = client.sent
        wait_until(lambda: client.sent > sent + 20)
    assert client.failed == 0 and client.retried == 0, client.failures
    wait_until(lambda: server.traffic_status().variants[-1].last_error is not None)
    assert [(v.name, v.ready) for v in server.traffic_status().variants] == [
        (CHAMPION, True),
        (CHALLENGER, False),
    ]
