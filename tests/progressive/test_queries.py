"""Per-platform PromQL: query building, selectors per variant, and rules refused before
anything changes when the flavor's metrics cannot measure them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from modeldeploy.errors import InvalidConfigError
from modeldeploy.progressive.analysis import AnalysisConfig
from modeldeploy.progressive.figures import selectors
from modeldeploy.progressive.queries import (
    KNATIVE,
    ROUTER,
    SELDON_CORE_1,
    SELDON_CORE_2,
    knative_selector,
    pod_selector,
    quote,
    seldon2_selector,
    seldon_selector,
)
from modeldeploy.traffic import MetricQueries, TrafficStatus, VariantStatus

PROBE = {"records": [{"x": 1.0}], "labels": [1]}
PROMETHEUS = "http://127.0.0.1:9"


def _built(metrics: MetricQueries, figure: str, selector: str = 'a="b"') -> str:
    return metrics.templates[figure].format(selector=selector, window=30)


def test_each_platform_counts_its_own_request_metric_per_variant() -> None:
    selector = knative_selector("prod", "iris-predictor-00002")
    assert _built(KNATIVE, "requests", selector) == (
        "sum(increase(revision_app_request_count"
        '{namespace_name="prod",revision_name="iris-predictor-00002"}[30s]))'
    )
    assert _built(SELDON_CORE_1, "requests") == (
        'sum(increase(seldon_api_executor_server_requests_seconds_count{a="b"}[30s]))'
    )
    seldon2 = 'sum(increase(seldon_model_infer_total{a="b"}[30s]))'
    assert _built(SELDON_CORE_2, "requests") == seldon2
    assert _built(ROUTER, "requests") == 'sum(increase(modeldeploy_requests_total{a="b"}[30s]))'


def test_errors_are_every_answer_outside_2xx_in_the_platforms_own_code_label() -> None:
    assert 'response_code_class!="2xx"' in _built(KNATIVE, "errors")
    for metrics in (SELDON_CORE_1, SELDON_CORE_2):  # REST: HTTP status; gRPC: "OK"
        assert _built(metrics, "errors").endswith('{a="b",code!~"2..|OK"}[30s]))')


def test_knative_latency_in_milliseconds_becomes_seconds() -> None:
    p99 = _built(KNATIVE, "p99_seconds")
    assert p99.startswith("histogram_quantile(0.99, sum by (le) (increase(")
    assert 'revision_app_request_latencies_bucket{a="b"}[30s]' in p99 and p99.endswith(" / 1000")
    assert not _built(SELDON_CORE_1, "p50_seconds").endswith("/ 1000")  # already seconds


def test_no_platform_but_the_router_exports_agreement_and_seldon2_has_no_model_latency() -> None:
    assert {"agreed", "compared"} <= ROUTER.templates.keys()
    for metrics in (KNATIVE, SELDON_CORE_1, SELDON_CORE_2):
        assert not {"agreed", "compared"} & metrics.templates.keys()
    assert set(SELDON_CORE_2.templates) == {"requests", "errors"}


def test_selectors_quote_values_and_seldon2_matches_every_version_of_one_model() -> None:
    assert quote('a"b\\c') == '"a\\"b\\\\c"'
    assert seldon_selector("iris", "challenger") == (
        'deployment_name="iris",predictor_name="challenger"'
    )
    assert seldon2_selector("iris.v2") == 'model_internal=~"iris\\\\.v2_[0-9]+"'


def test_a_kserve_standard_variant_is_its_deployments_pods_and_not_its_neighbours() -> None:
    selector = pod_selector("prod", "iris-predictor")
    pods = re.search(r'pod=~"(.*)"', selector)
    assert selector.startswith('namespace="prod",') and pods is not None
    pattern = pods.group(1).replace("\\\\", "\\")  # PromQL string to regex
    assert re.fullmatch(pattern, "iris-predictor-5d9f8b7c4-x2k8p")
    assert not re.fullmatch(pattern, "iris-c1a2b3c4d-predictor-5d9f8b7c4-x2k8p")


def test_each_variant_is_asked_with_its_own_matchers_or_the_routers_instance() -> None:
    status = TrafficStatus(
        variants=[
            VariantStatus(name="champion", metric_selector='revision_name="r1"'),
            VariantStatus(name="challenger", metric_selector='revision_name="r2"'),
            VariantStatus(name="other", metric_selector='revision_name="r3"'),
        ]
    )
    assert selectors(status) == {
        "champion": 'revision_name="r1"',
        "challenger": 'revision_name="r2"',
    }
    routed = TrafficStatus(
        variants=[VariantStatus(name="champion"), VariantStatus(name="challenger")],
        metrics_url="http://127.0.0.1:8080/modeldeploy/metrics",
    )
    assert selectors(routed)["challenger"] == 'instance="127.0.0.1:8080",variant="challenger"'
    assert selectors(TrafficStatus(variants=[VariantStatus(name="champion")])) == {}


def test_user_templates_replace_the_platforms_and_are_checked_when_given() -> None:
    mine = 'sum(increase(my_requests{{{selector},route="x"}}[{window}s]))'
    config = AnalysisConfig(queries={"requests": mine})
    templates = config.templates(KNATIVE)
    assert templates["requests"] == mine and templates["errors"] == KNATIVE.templates["errors"]
    with pytest.raises(ValueError, match="unknown Prometheus query 'latency'"):
        AnalysisConfig(queries={"latency": "x"})
    with pytest.raises(ValueError, match=r"only \{selector\} and \{window\}"):
        AnalysisConfig(queries={"requests": "sum(my_requests{{namespace}})[{range}]"})


def test_kubernetes_service_rules_without_prometheus_are_refused_saying_what_to_do() -> None:
    with pytest.raises(InvalidConfigError) as refused:
        AnalysisConfig().check_measurable(mirrors=False, metrics=KNATIVE)
    message = str(refused.value)
    assert "'error_rate<=0.01'" in message and "KServe (Knative queue-proxy)" in message
    assert "set analysis.prometheus_url" in message and "analysis.probe" in message
    AnalysisConfig(prometheus_url=PROMETHEUS).check_measurable(mirrors=False, metrics=KNATIVE)
    AnalysisConfig().check_measurable(mirrors=False, metrics=ROUTER)  # scraped directly


def test_probe_only_analysis_on_kubernetes_needs_min_requests_zero() -> None:
    probe_only = {"rules": ["accuracy>=0.9"], "probe": PROBE}
    with pytest.raises(InvalidConfigError, match="min_requests=20 reads request metrics"):
        AnalysisConfig.model_validate(probe_only).check_measurable(False, SELDON_CORE_1)
    AnalysisConfig.model_validate({**probe_only, "min_requests": 0}).check_measurable(
        False, SELDON_CORE_1
    )
    # no live step (blue/green at 0 %): no request is expected of the challenger
    AnalysisConfig.model_validate(probe_only).check_measurable(False, SELDON_CORE_1, live=False)


def test_a_figure_the_platform_does_not_export_is_refused_unless_a_template_is_given() -> None:
    p99 = {"rules": ["p99_ms<=50"], "prometheus_url": PROMETHEUS}
    with pytest.raises(InvalidConfigError, match="exports no per-variant p99_seconds"):
        AnalysisConfig.model_validate(p99).check_measurable(False, SELDON_CORE_2)
    mine = {"p99_seconds": "histogram_quantile(0.99, sum by (le) (rate(h{{{selector}}}[5m])))"}
    AnalysisConfig.model_validate({**p99, "queries": mine}).check_measurable(False, SELDON_CORE_2)


def test_agreement_on_kubernetes_comes_from_the_probe() -> None:
    agreement = {"rules": ["agreement>=0.95"], "prometheus_url": PROMETHEUS}
    with pytest.raises(InvalidConfigError, match="exports no agreement metric, so give"):
        AnalysisConfig.model_validate(agreement).check_measurable(True, SELDON_CORE_1)
    with_probe = {**agreement, "probe": PROBE}
    AnalysisConfig.model_validate(with_probe).check_measurable(True, SELDON_CORE_1)
    AnalysisConfig.model_validate(agreement).check_measurable(True, ROUTER)  # mirrored pairs


def test_a_flavor_without_request_metrics_is_judged_by_the_probe_alone() -> None:
    with pytest.raises(InvalidConfigError, match="which this flavor does not export"):
        AnalysisConfig(prometheus_url=PROMETHEUS).check_measurable(mirrors=False, metrics=None)


def test_check_rollout_reads_the_flavors_metric_source(tmp_path: Path) -> None:
    """The refusal comes from the deployer's `metric_queries`, not from the flavor's name."""
    from modeldeploy.flavors.mlflow.deployer import MLflowModelDeployer
    from modeldeploy.progressive.runner import check_rollout

    deployer = MLflowModelDeployer({"home": str(tmp_path)})
    strategy, analysis = check_rollout(deployer, "canary", None)  # the router is scraped
    assert strategy.kind == "canary" and analysis.rules == ["error_rate<=0.01"]
    deployer.metric_queries = SELDON_CORE_2  # as a Kubernetes flavor declares it
    with pytest.raises(InvalidConfigError, match=r"Seldon Core 2 \(agent\) exports only to Prom"):
        check_rollout(deployer, "canary", None)
    check_rollout(deployer, "canary", {"prometheus_url": PROMETHEUS})
    assert check_rollout(deployer, None, None)[0].kind == "in_place"  # no step to analyse


def test_where_no_probe_can_be_sent_the_refusals_never_suggest_one() -> None:
    why = "no URL per variant"
    with pytest.raises(InvalidConfigError, match=r"analysis\.probe cannot be judged: no URL per"):
        AnalysisConfig.model_validate(
            {"probe": PROBE, "prometheus_url": PROMETHEUS}
        ).check_measurable(True, SELDON_CORE_1, no_probe=why)
    with pytest.raises(InvalidConfigError) as refused:
        AnalysisConfig().check_measurable(mirrors=False, metrics=SELDON_CORE_1, no_probe=why)
    assert "set analysis.prometheus_url" in str(refused.value)
    assert "probe" not in str(refused.value)
    labels_only = {"rules": [], "min_requests": 0, "labels": {"url": "http://127.0.0.1:9"}}
    AnalysisConfig.model_validate(labels_only).check_measurable(True, SELDON_CORE_1, no_probe=why)
