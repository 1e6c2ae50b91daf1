"""End to end on the emulator's data plane: real MLflow scoring servers behind the loopback
ingress, split 75/25 the way KServe, Seldon Core 1 and Seldon Core 2 route, a real
Prometheus scraping the platforms' own request metrics. The analysis reads each variant
through the flavor's default templates and the variant's selector, and a challenger that
fails every prediction fails the step, on each platform."""

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
from typing import Any, NamedTuple

import pytest
from modeldeploy.progressive.analysis import AnalysisConfig, analyse
from modeldeploy.progressive.figures import service_figures
from modeldeploy.progressive.queries import (
    KNATIVE,
    SELDON_CORE_1,
    SELDON_CORE_2,
    knative_selector,
    seldon2_selector,
    seldon_selector,
)
from modeldeploy.traffic import MetricQueries, TrafficStatus, VariantStatus

from tests.conftest import SavedModels
from tests.k8s_emulator import KubernetesEmulator
from tests.k8s_emulator.dataplane import Backend, DataPlane
from tests.k8s_emulator.dataplane_metrics import knative_labels, seldon2_labels, seldon_labels
from tests.progressive.helpers import Prometheus

pytestmark = pytest.mark.slow

GOOD, BROKEN = "s3://models/iris/1", "s3://models/iris/2"
HOST = "iris-predictor.prod.example.com"


class Platform(NamedTuple):
    metrics: MetricQueries
    selectors: dict[str, str]
    path: str
    headers: dict[str, str]


def _platforms(rows: list[list[float]]) -> dict[str, Platform]:
    return {
        "kserve": Platform(
            KNATIVE,
            {
                "champion": knative_selector("prod", "iris-predictor-00001"),
                "challenger": knative_selector("prod", "iris-predictor-00002"),
            },
            "/v1/models/iris:predict",
            {"Host": HOST},
        ),
        "seldon": Platform(
            SELDON_CORE_1,
            {
                "champion": seldon_selector("iris", "main"),
                "challenger": seldon_selector("iris", "canary"),
            },
            "/seldon/prod/iris/api/v1.0/predictions",
            {},
        ),
        "seldon2": Platform(
            SELDON_CORE_2,
            {"champion": seldon2_selector("iris"), "challenger": seldon2_selector("iris2")},
            "/v2/models/iris/infer",
            {"Seldon-Model": "iris"},
        ),
    }


def _body(platform: str, rows: list[list[float]]) -> dict[str, Any]:
    if platform == "kserve":
        return {"instances": rows}
    if platform == "seldon":
        return {"data": {"ndarray": rows}}
    tensor = {"name": "input-0", "shape": [1, len(rows[0])], "datatype": "FP64", "data": rows[0]}
    return {"inputs": [tensor]}


def _publish(plane: DataPlane) -> None:
    """Champion (good model) 75 %, challenger (fails every prediction) 25 %."""
    plane.publish(
        "kserve",
        HOST,
        [
            Backend(rev, uri, weight, metric_labels=knative_labels("prod", "iris-predictor", rev))
            for rev, uri, weight in (
                ("iris-predictor-00001", GOOD, 75),
                ("iris-predictor-00002", BROKEN, 25),
            )
        ],
    )
    plane.publish(
        "seldon",
        "prod/iris",
        [
            Backend("main", GOOD, 75, metric_labels=seldon_labels("iris", "main")),
            Backend("canary", BROKEN, 25, metric_labels=seldon_labels("iris", "canary")),
        ],
    )
    plane.publish(
        "seldon2",
        "iris",
        [
            Backend("iris_1", GOOD, 75, metric_labels=seldon2_labels("iris_1", "mlserver")),
            Backend("iris2_1", BROKEN, 25, metric_labels=seldon2_labels("iris2_1", "mlserver")),
        ],
    )


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    server = Prometheus(tmp_path_factory.mktemp("prometheus"))
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def plane(saved_models: SavedModels, erroring_model: Path) -> Iterator[DataPlane]:
    emu = KubernetesEmulator(controllers=False).start()
    try:
        dataplane = emu.dataplane
        dataplane.register_model(GOOD, str(saved_models.first))
        dataplane.register_model(BROKEN, str(erroring_model))
        dataplane.wait_ready(GOOD)
        dataplane.wait_ready(BROKEN)
        dataplane.rng.seed(20261202)
        _publish(dataplane)
        yield dataplane
    finally:
        emu.stop()


def _send(plane: DataPlane, platform: Platform, body: dict[str, Any], count: int) -> Counter[str]:
    """`count` requests; which variant answered each, as the client saw it."""

    def one(_: int) -> str:
        request = urllib.request.Request(
            plane.url + platform.path,
            json.dumps(body).encode(),
            {"Content-Type": "application/json", **platform.headers},
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                assert response.status == 200
                return "champion"
        except urllib.error.HTTPError as exc:
            assert exc.code == 400, exc.read()  # MLflow's answer when predict raises
            return "challenger"

    with ThreadPoolExecutor(4) as pool:
        return Counter(pool.map(one, range(count)))


def _value(prometheus: Prometheus, promql: str) -> float:
    address = f"{prometheus.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(address, timeout=10) as response:
        result = json.load(response)["data"]["result"]
    return sum(float(item["value"][1]) for item in result)


def _until(prometheus: Prometheus, promql: str, wanted: float, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while _value(prometheus, promql) < wanted:
        assert time.monotonic() < end, f"Prometheus never reached {promql} >= {wanted}"
        time.sleep(0.1)


#: scrapes (500 ms apart) with no new request before a step: the slack for a late query
FLAT_SAMPLES = 12


@pytest.mark.parametrize("name", ["kserve", "seldon", "seldon2"])
def test_a_failing_challenger_fails_the_step_from_the_platforms_own_metrics(
    plane: DataPlane, prometheus: Prometheus, saved_models: SavedModels, name: str
) -> None:
    rows = saved_models.sample_rows[:1]
    platform = _platforms(rows)[name]
    body = _body(name, rows)
    prometheus.scrape(plane.metrics_url)
    requests = platform.metrics.templates["requests"]

    def over(function: str, variant: str) -> str:  # the variant's series, over the last hour
        return requests.replace("increase(", f"{function}(").format(
            selector=platform.selectors[variant], window=3600
        )

    # Before the step: both variants' series exist and are scraped, then stay flat for
    # FLAT_SAMPLES scrapes. The window below starts in that flat stretch even when the query
    # is evaluated seconds after the window was measured (a loaded machine), so increase()
    # sees the whole step and nothing of the warm-up.
    warm = _send(plane, platform, body, 40)
    assert set(warm) == {"champion", "challenger"}
    for variant in warm:
        _until(prometheus, over("max_over_time", variant), warm[variant])
    started = time.monotonic()
    samples = _value(prometheus, over("count_over_time", "challenger"))
    _until(prometheus, over("count_over_time", "challenger"), samples + FLAT_SAMPLES)
    step = _send(plane, platform, body, 160)
    for variant in step:
        _until(prometheus, over("max_over_time", variant), warm[variant] + step[variant])

    status = TrafficStatus(
        variants=[VariantStatus(name=v, metric_selector=s) for v, s in platform.selectors.items()]
    )
    config = AnalysisConfig(rules="error_rate<=0.01", prometheus_url=prometheus.url)
    window = time.monotonic() - started  # from after the warm-up on
    figures = service_figures(platform.metrics, config, status, {}, window)
    result = analyse(config, figures, status, window, live_challenger=True)

    champion, challenger = figures["champion"], figures["challenger"]
    assert (champion.error_rate, challenger.error_rate) == (0, 1)
    share = challenger.requests / (champion.requests + challenger.requests)
    assert share == pytest.approx(step["challenger"] / sum(step.values()), abs=0.02)
    assert challenger.requests == pytest.approx(step["challenger"], rel=0.25)
    assert result.verdict == "failed" and "error_rate 1 > 0.01" in result.reason
    if "p99_seconds" in platform.metrics.templates:
        # Knative counts milliseconds: unconverted, even its first bucket (5) would read 4950
        assert champion.p99_ms is not None and 0 < champion.p99_ms < 2500
