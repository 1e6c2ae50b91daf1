"""How one step is judged from its figures: passed, failed, inconclusive, and bad rules."""

from __future__ import annotations

import pytest
from modeldeploy.errors import InvalidConfigError
from modeldeploy.progressive.analysis import AnalysisConfig, analyse
from modeldeploy.progressive.metrics import VariantFigures
from modeldeploy.progressive.queries import ROUTER
from modeldeploy.traffic import TrafficStatus

RULES = "error_rate<=0.01,p99_ms<=50"


def _judge(config: AnalysisConfig, challenger: VariantFigures, live: bool = True):
    service = {"champion": VariantFigures(requests=500), "challenger": challenger}
    return analyse(config, service, TrafficStatus(), 5.0, live_challenger=live)


def test_healthy_step_passes_with_each_figure_against_its_threshold() -> None:
    result = _judge(
        AnalysisConfig(rules=RULES, min_requests=20),
        VariantFigures(requests=100, errors=0, p50_ms=3, p99_ms=9),
    )
    assert result.verdict == "passed"
    assert "error_rate 0 <= 0.01" in result.reason and "p99_ms 9 <= 50" in result.reason
    assert result.figures["champion"]["requests"] == 500


def test_errors_or_latency_over_threshold_fail_the_step() -> None:
    result = _judge(AnalysisConfig(rules=RULES), VariantFigures(requests=100, errors=5, p99_ms=80))
    assert result.verdict == "failed"
    assert "error_rate 0.05 > 0.01" in result.reason and "p99_ms 80 > 50" in result.reason


def test_a_thin_step_is_inconclusive_but_a_failure_is_not_hidden_by_it() -> None:
    config = AnalysisConfig(rules=RULES, min_requests=50)
    thin = _judge(config, VariantFigures(requests=10, errors=0, p99_ms=5))
    assert thin.verdict == "inconclusive" and "10 challenger requests < 50" in thin.reason
    nothing = _judge(config, VariantFigures())
    assert nothing.verdict == "inconclusive"
    assert _judge(config, VariantFigures(requests=10, errors=5)).verdict == "failed"


def test_without_live_traffic_service_rules_do_not_apply() -> None:
    result = _judge(AnalysisConfig(rules=RULES, min_requests=50), VariantFigures(), live=False)
    assert result.verdict == "passed"


def test_rules_are_checked_before_anything_changes() -> None:
    with pytest.raises(ValueError, match="the analysis measures"):
        AnalysisConfig(rules=["latency<=3"])
    with pytest.raises(ValueError, match="METRIC>=NUMBER"):
        AnalysisConfig(rules=["error_rate < 1"])
    with pytest.raises(InvalidConfigError, match="needs labels"):
        AnalysisConfig(rules=["rmse<=60"]).check_measurable(mirrors=False, metrics=ROUTER)
    with pytest.raises(InvalidConfigError, match="shadow strategy"):
        AnalysisConfig(rules=["agreement>=0.9"]).check_measurable(mirrors=False, metrics=ROUTER)
    AnalysisConfig(rules=["agreement>=0.9"]).check_measurable(mirrors=True, metrics=ROUTER)
