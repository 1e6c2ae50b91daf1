"""A real Prometheus scraping the platforms' own request metrics (Knative queue-proxy,
Seldon Core 1 executor, Seldon Core 2 agent names and labels): the analysis reads each
variant's figures through the flavor's default templates and the variant's selector."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator

import pytest
from modeldeploy.progressive.analysis import AnalysisConfig, analyse
from modeldeploy.progressive.figures import service_figures
from modeldeploy.progressive.metrics import VariantFigures
from modeldeploy.progressive.queries import (
    KNATIVE,
    SELDON_CORE_1,
    SELDON_CORE_2,
    knative_selector,
    seldon2_selector,
    seldon_selector,
)
from modeldeploy.traffic import MetricQueries, TrafficStatus, VariantStatus

from tests.progressive.exposition import Exposition
from tests.progressive.helpers import Prometheus

pytestmark = pytest.mark.slow

#: knative/serving pkg/queue/stats reporter's request latency distribution, milliseconds
KNATIVE_MS = (5, 10, 20, 40, 60, 80, 100, 150, 200, 250, 300, 500, 1000, 2000, 5000, 10000)
#: seldon-core executor/api/metric/constants.go DefBuckets, seconds
SELDON_S = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)
#: (ok, errors, latency in seconds) per variant after the step's traffic
STEP = {"champion": (180, 0, 0.007), "challenger": (16, 4, 0.070)}
NAMES = {
    "champion": ("iris-predictor-00001", "main", "iris"),
    "challenger": ("iris-predictor-00002", "canary", "iris2"),
}


def _publish(expo: Exposition, variant: str, ok: int, errors: int, seconds: float) -> None:
    """One variant's series under each platform's names, as its exporter would write them."""
    revision, predictor, model = NAMES[variant]
    knative = {
        "namespace_name": "prod",
        "service_name": "iris-predictor",
        "configuration_name": "iris-predictor",
        "revision_name": revision,
        "pod_name": f"{revision}-deployment-7d9c-x2x",
        "container_name": "queue-proxy",
    }
    for code, count in (("200", ok), ("500", errors)):
        labels = {**knative, "response_code": code, "response_code_class": code[0] + "xx"}
        expo.set("revision_app_request_count", labels, count)
        expo.histogram(
            "revision_app_request_latencies", labels, KNATIVE_MS, [seconds * 1000] * count
        )
        executor = {
            "deployment_name": "iris",
            "predictor_name": predictor,
            "predictor_version": "",
            "service": "predictions",
            "method": "post",
            "code": code,
        }
        expo.histogram(
            "seldon_api_executor_server_requests_seconds", executor, SELDON_S, [seconds] * count
        )
        agent = {
            "server": "mlserver",
            "server_replica": "0",
            "model": "iris",  # the name asked for: the Experiment's default model
            "model_internal": f"{model}_1",
            "method_type": "rest",
            "code": code,
        }
        expo.set("seldon_model_infer_total", agent, count)
        expo.set("seldon_model_infer_seconds_total", agent, seconds * count)


def _query(prometheus: Prometheus, promql: str) -> float | None:
    address = f"{prometheus.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(address, timeout=10) as response:
        result = json.load(response)["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def _until(prometheus: Prometheus, promql: str, at_least: float, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while (_query(prometheus, promql) or 0.0) < at_least:
        assert time.monotonic() < end, f"Prometheus never reached {promql} >= {at_least}"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def scraped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Prometheus, float]]:
    """Prometheus after one step: zeros first, then the step's traffic, scraped for a while.
    Yields it with when the step started (`time.monotonic()`)."""
    expo = Exposition()
    prometheus = Prometheus(tmp_path_factory.mktemp("prometheus"))
    try:
        started = time.monotonic()
        for variant in STEP:
            _publish(expo, variant, 0, 0, 0.0)
        prometheus.scrape(expo.url)
        probe = 'seldon_model_infer_total{model_internal="iris2_1",code="500"}'
        _until(prometheus, f"count_over_time({probe}[1h])", 2)
        for variant, (ok, errors, seconds) in STEP.items():
            _publish(expo, variant, ok, errors, seconds)
        _until(prometheus, probe, 4)
        seen = _query(prometheus, f"count_over_time({probe}[1h])") or 0.0
        _until(prometheus, f"count_over_time({probe}[1h])", seen + 10)  # >= 5 s of the step
        yield prometheus, started
    finally:
        prometheus.close()
        expo.close()


def _window(scraped: tuple[Prometheus, float]) -> float:
    """From just before the step's zeros until now, as the runner's window of a step."""
    return time.monotonic() - scraped[1] + 2


def _figures(
    scraped: tuple[Prometheus, float], metrics: MetricQueries, selectors: dict[str, str]
) -> dict[str, VariantFigures]:
    prometheus, window = scraped[0], _window(scraped)
    status = TrafficStatus(
        variants=[VariantStatus(name=v, metric_selector=s) for v, s in selectors.items()]
    )
    analysis = AnalysisConfig(prometheus_url=prometheus.url)
    return service_figures(metrics, analysis, status, {}, window)


def _assert_counts(figures: dict[str, VariantFigures]) -> None:
    # increase() extrapolates to the window's end: estimates, never the neighbour's counts
    for variant, (ok, errors, _) in STEP.items():
        assert figures[variant].requests == pytest.approx(ok + errors, rel=0.15), variant
        assert figures[variant].errors == pytest.approx(errors, rel=0.15, abs=0.01), variant
    assert figures["challenger"].error_rate == pytest.approx(0.2, abs=0.01)
    assert figures["champion"].error_rate == 0


def test_knative_revisions_figures_with_latency_in_milliseconds(
    scraped: tuple[Prometheus, float],
) -> None:
    figures = _figures(
        scraped,
        KNATIVE,
        {v: knative_selector("prod", NAMES[v][0]) for v in STEP},
    )
    _assert_counts(figures)
    # every answer in one bucket: histogram_quantile interpolates linearly inside it
    assert figures["champion"].p50_ms == pytest.approx(7.5, rel=1e-3)  # (5, 10] ms
    assert figures["challenger"].p99_ms == pytest.approx(79.8, rel=1e-3)  # (60, 80] ms


def test_seldon_core_1_predictors_figures(scraped: tuple[Prometheus, float]) -> None:
    figures = _figures(
        scraped, SELDON_CORE_1, {v: seldon_selector("iris", NAMES[v][1]) for v in STEP}
    )
    _assert_counts(figures)
    assert figures["champion"].p99_ms == pytest.approx(9.95, rel=1e-3)  # (0.005, 0.01] s
    assert figures["challenger"].p50_ms == pytest.approx(62.5, rel=1e-3)  # (0.05, 0.075] s


def test_seldon_core_2_models_counted_by_the_model_that_answered(
    scraped: tuple[Prometheus, float],
) -> None:
    figures = _figures(scraped, SELDON_CORE_2, {v: seldon2_selector(NAMES[v][2]) for v in STEP})
    _assert_counts(figures)  # both asked as model="iris"; model_internal tells them apart
    assert figures["challenger"].p99_ms is None  # no per-model histogram upstream


def test_the_step_fails_on_the_challengers_errors_read_from_prometheus(
    scraped: tuple[Prometheus, float],
) -> None:
    prometheus, window = scraped[0], _window(scraped)
    status = TrafficStatus(
        variants=[
            VariantStatus(name=v, metric_selector=knative_selector("prod", NAMES[v][0]))
            for v in STEP
        ]
    )
    config = AnalysisConfig(rules="error_rate<=0.05,p99_ms<=500", prometheus_url=prometheus.url)
    figures = service_figures(KNATIVE, config, status, {}, window)
    result = analyse(config, figures, status, window, live_challenger=True)
    assert result.verdict == "failed"
    assert "error_rate 0.2" in result.reason and "> 0.05" in result.reason
    assert result.figures["champion"]["error_rate"] == 0
