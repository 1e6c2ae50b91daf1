"""The emulator's data plane end to end: real MLflow scoring servers behind the loopback
ingress, weighted routing and mirroring per platform, metrics scraped by a real Prometheus.

The two models answer differently for the sample rows (logistic regression: class 0, the
constant model: class 2), so every client answer says which variant served it.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SavedModels
from tests.k8s_emulator import KubernetesEmulator
from tests.k8s_emulator.dataplane import Backend, DataPlane
from tests.k8s_emulator.dataplane_metrics import knative_labels, seldon2_labels, seldon_labels
from tests.k8s_emulator.ingress_client import IngressClient, prediction_of
from tests.progressive.helpers import Prometheus

FIRST, SECOND = "s3://models/iris/1", "s3://models/iris/2"
FIRST_ANSWER, SECOND_ANSWER = 0, 2
SELDON_PATH = "/seldon/default/iris/api/v1.0/predictions"


@pytest.fixture(scope="module")
def plane(saved_models: SavedModels) -> Iterator[DataPlane]:
    """One emulator's data plane with both models serving (started once: ~5-20 s)."""
    emu = KubernetesEmulator(controllers=False).start()
    try:
        dataplane = emu.dataplane
        dataplane.register_model(FIRST, str(saved_models.first))
        dataplane.register_model(SECOND, str(saved_models.second))
        dataplane.wait_ready(FIRST)
        dataplane.wait_ready(SECOND)
        yield dataplane
    finally:
        emu.stop()
    assert not dataplane.servers.get(FIRST), "stopping the emulator stops its scoring servers"


@pytest.fixture(scope="module")
def rows(saved_models: SavedModels) -> list[list[float]]:
    return saved_models.sample_rows[:1]


def post(
    plane: DataPlane, path: str, body: Any, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    request = urllib.request.Request(
        plane.url + path,
        json.dumps(body).encode(),
        {"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        text = exc.read()
        try:
            return exc.code, json.loads(text)
        except ValueError:
            return exc.code, text.decode()


def scrape(plane: DataPlane) -> str:
    with urllib.request.urlopen(plane.metrics_url, timeout=10) as response:
        return str(response.read().decode())


def seldon_route(
    main: int, canary: int, *, shadow: bool = False, deployment: str = "iris"
) -> list[Backend]:
    backends = [
        Backend("main", FIRST, main, metric_labels=seldon_labels(deployment, "main")),
        Backend("canary", SECOND, canary, metric_labels=seldon_labels(deployment, "canary")),
    ]
    if shadow:
        backends.append(
            Backend(
                "shadow", SECOND, mirror=True, metric_labels=seldon_labels(deployment, "shadow")
            )
        )
    return backends


def query(prometheus: Prometheus, promql: str) -> dict[str, float]:
    """Instant query -> {value of the first label: sample value}."""
    url = f"{prometheus.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=10) as response:
        result = json.loads(response.read())["data"]["result"]
    return {next(iter(r["metric"].values()), ""): float(r["value"][1]) for r in result}


def until(predicate: Any, what: str, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_split_and_mirror_seen_by_prometheus_as_the_clients_saw_them(
    plane: DataPlane, rows: list[list[float]], tmp_path: Path
) -> None:
    """90/10 across two predictors plus a shadow: Prometheus counts per predictor exactly
    what the clients were answered, near the asked shares, and every mirrored copy."""
    plane.rng.seed(20261202)  # draws are taken per request in order: the same split every run
    plane.publish(
        "seldon", "default/sharing", seldon_route(90, 10, shadow=True, deployment="sharing")
    )
    prometheus = Prometheus(tmp_path / "prometheus")
    try:
        prometheus.scrape(plane.metrics_url)
        path = SELDON_PATH.replace("/iris/", "/sharing/")
        body = {"data": {"ndarray": rows}}

        def one(_: int) -> Any:
            status, answer = post(plane, path, body)
            assert status == 200, answer
            return prediction_of(answer)

        total = 400
        with ThreadPoolExecutor(4) as pool:
            answers = Counter(pool.map(one, range(total)))
        assert sum(answers.values()) == total
        assert set(answers) <= {FIRST_ANSWER, SECOND_ANSWER}
        share = 100 * answers[SECOND_ANSWER] / total
        assert abs(share - 10) <= 5, f"canary share {share:.1f}% for 10% asked"

        counts = 'sum by (predictor_name) (seldon_api_executor_server_requests_seconds_count{deployment_name="sharing",code="200"})'  # noqa: E501
        expected = {
            "main": float(answers[FIRST_ANSWER]),
            "canary": float(answers[SECOND_ANSWER]),
            "shadow": float(total),  # every client request copied once
        }
        until(lambda: query(prometheus, counts) == expected, f"Prometheus to count {expected}")

        # Every platform's families in one exposition, all read by Prometheus.
        labels = knative_labels("default", "k-predictor", "k-predictor-00001")
        plane.publish(
            "kserve", "k.default.example.com", [Backend("k", FIRST, 100, metric_labels=labels)]
        )
        plane.publish(
            "seldon2",
            "s2",
            [Backend("s2_1", FIRST, 100, metric_labels=seldon2_labels("s2_1", "triton"))],
        )
        status, _ = post(
            plane, "/v1/models/k:predict", {"instances": rows}, {"Host": "k.default.example.com"}
        )
        assert status == 200
        tensor = {"name": "x", "shape": [1, len(rows[0])], "datatype": "FP64", "data": rows[0]}
        status, _ = post(plane, "/v2/models/s2/infer", {"inputs": [tensor]}, {"Seldon-Model": "s2"})
        assert status == 200
        k, s2 = 'service_name="k-predictor"', 'model="s2"'
        per_platform = {
            f"sum by (revision_name) (revision_app_request_count{{{k}}})": "k-predictor-00001",
            f"sum by (revision_name) (revision_app_request_latencies_count{{{k}}})": (
                "k-predictor-00001"
            ),
            f"sum by (model_internal) (seldon_model_infer_total{{{s2}}})": "s2_1",
            'sum by (server) (seldon_model_infer_api_seconds_count{server="triton"})': "triton",
        }
        for promql, key in per_platform.items():
            until(lambda q=promql, w={key: 1.0}: query(prometheus, q) == w, f"{promql} == 1")
    finally:
        prometheus.close()
        for platform, key in (
            ("seldon", "default/sharing"),
            ("kserve", "k.default.example.com"),
            ("seldon2", "s2"),
        ):
            plane.withdraw(platform, key)


def test_each_platform_routes_its_own_way_and_counts_under_its_own_names(
    plane: DataPlane, rows: list[list[float]]
) -> None:
    host = "flowers.default.example.com"
    revision = knative_labels("default", "flowers-predictor", "flowers-predictor-00002")
    plane.publish(
        "kserve", host, [Backend("flowers-predictor-00002", SECOND, 100, metric_labels=revision)]
    )
    plane.publish(
        "seldon2",
        "flowers",
        [
            Backend("flowers_1", FIRST, 100, metric_labels=seldon2_labels("flowers_1", "mlserver")),
            Backend(
                "flowers2_1",
                SECOND,
                mirror=True,
                metric_labels=seldon2_labels("flowers2_1", "mlserver"),
            ),
        ],
    )
    tensor = {"name": "input-0", "shape": [1, len(rows[0])], "datatype": "FP64", "data": rows[0]}
    try:
        status, answer = post(
            plane, "/v1/models/flowers:predict", {"instances": rows}, {"Host": host}
        )
        assert (status, answer) == (200, {"predictions": [SECOND_ANSWER]})
        status, answer = post(
            plane, "/v2/models/flowers/infer", {"inputs": [tensor]}, {"Seldon-Model": "flowers"}
        )
        assert status == 200 and answer["outputs"][0]["data"] == [FIRST_ANSWER], answer
        assert answer["model_name"] == "flowers"
        # no header: the mesh takes the model from the /v2 path, and names who answered
        request = urllib.request.Request(
            plane.url + "/v2/models/flowers/infer",
            json.dumps({"inputs": [tensor]}).encode(),
            {"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            assert response.headers["x-seldon-route"] == ":flowers_1:"
        # the mesh routes /v2 paths only
        status, _ = post(
            plane, "/v1/models/flowers:predict", {"instances": rows}, {"Seldon-Model": "flowers"}
        )
        assert status == 404

        # What the gateway does not know is 404; what the protocol does not allow is 400
        # in the protocol's own error shape, before any model sees it.
        status, _ = post(plane, "/v1/models/flowers:predict", {"instances": rows}, {"Host": "x.y"})
        assert status == 404
        status, answer = post(plane, "/v1/models/flowers:predict", {"rows": rows}, {"Host": host})
        assert status == 400 and '"instances"' in answer["error"]
        status, answer = post(plane, "/seldon/default/nowhere/api/v1.0/predictions", {})
        assert status == 404

        mirrored = 'model_internal="flowers2_1",server="mlserver",server_replica="0"} 2'
        until(lambda: mirrored in scrape(plane), "both mirrored copies to be counted")
        text = scrape(plane)
        assert (
            'revision_app_request_count{configuration_name="flowers-predictor",'
            'container_name="queue-proxy",namespace_name="default",'
            'pod_name="flowers-predictor-00002-deployment-0",response_code="200",'
            'response_code_class="2xx",revision_name="flowers-predictor-00002",'
            'service_name="flowers-predictor"} 1'
        ) in text
        assert "revision_app_request_latencies_bucket{" in text
        for internal in ("flowers_1", "flowers2_1"):  # client answers and mirror copies
            assert (
                f'seldon_model_infer_total{{code="200",method_type="rest",model="flowers",'
                f'model_internal="{internal}",server="mlserver",server_replica="0"}} 2'
            ) in text
        assert (
            'seldon_model_infer_api_seconds_count{code="200",method="post",server="mlserver",'
            'server_replica="0"} 4'
        ) in text
    finally:
        plane.withdraw("kserve", host)
        plane.withdraw("seldon2", "flowers")


def test_bad_routes_are_refused_before_anything_changes(plane: DataPlane) -> None:
    with pytest.raises(ValueError, match="KServe has no mirroring"):
        plane.publish("kserve", "h", [Backend("a", FIRST, 100), Backend("b", SECOND, mirror=True)])
    with pytest.raises(ValueError, match="unknown platform"):
        plane.publish("knative", "h", [Backend("a", FIRST, 100)])
    with pytest.raises(ValueError, match="takes no client traffic"):
        Backend("b", SECOND, 10, mirror=True)
    assert plane.route("kserve", "h") is None


def test_a_model_folder_is_checked_before_anything_serves(
    plane: DataPlane, saved_models: SavedModels
) -> None:
    with pytest.raises(ValueError, match="no MLflow model folder"):
        plane.register_model("s3://models/none", str(saved_models.not_a_model))
    with pytest.raises(ValueError, match="already served from"):
        plane.register_model(FIRST, str(saved_models.second))
    assert plane.servers.get("s3://models/none") is None
    assert plane.ready(FIRST)


def test_unregistered_model_answers_503_saying_so(
    plane: DataPlane, rows: list[list[float]]
) -> None:
    plane.publish("seldon", "default/ghost", [Backend("main", "s3://nowhere/model", 100)])
    try:
        status, answer = post(
            plane, SELDON_PATH.replace("/iris/", "/ghost/"), {"data": {"ndarray": rows}}
        )
        assert status == 503
        assert "no model registered for s3://nowhere/model" in answer["status"]["info"]
    finally:
        plane.withdraw("seldon", "default/ghost")


def test_route_swaps_under_a_steady_client_fail_no_request(
    plane: DataPlane, rows: list[list[float]]
) -> None:
    """Publishing a new split while requests are in flight: every request is answered, by
    one table or the next; both variants end up serving."""
    plane.publish("seldon", "default/iris", seldon_route(100, 0))
    with IngressClient(plane.url, SELDON_PATH, {"data": {"ndarray": rows}}) as client:
        client.wait_for(20)
        for main, canary in [(90, 10), (50, 50), (0, 100), (50, 50), (100, 0)] * 3:
            plane.publish("seldon", "default/iris", seldon_route(main, canary, shadow=canary > 0))
            client.wait_for(10)
    plane.withdraw("seldon", "default/iris")
    assert client.failures == []
    assert client.retried == 0
    assert set(client.predictions()) == {FIRST_ANSWER, SECOND_ANSWER}
