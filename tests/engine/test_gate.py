"""The gate's decisions and their one-line reasons."""

from __future__ import annotations

import pytest
from modeldeploy.errors import InvalidConfigError
from modeldeploy.gate import ChampionChallenger, Gate, MetricThreshold


def test_threshold_at_least_passes_and_fails_with_reason() -> None:
    gate = Gate.from_rules(["accuracy>=0.9"])
    ok = gate.evaluate({"accuracy": 0.93})
    assert ok.passed and ok.reason == "passed: accuracy 0.93 >= 0.9"
    no = gate.evaluate({"accuracy": 0.81})
    assert not no.passed and no.reason == "rejected: accuracy 0.81 < 0.9"
    assert "\n" not in no.reason


def test_at_most_bounds_any_metric() -> None:
    gate = Gate.from_rules("log_loss<=0.3, latency_ms<=20")
    decision = gate.evaluate({"log_loss": 0.2, "latency_ms": 35})
    assert not decision.passed
    assert "latency_ms 35 > 20" in decision.reason
    assert [c.passed for c in decision.checks] == [True, False]


def test_missing_metric_is_a_rejection_naming_what_was_given() -> None:
    decision = Gate.from_rules(["f1>=0.5"]).evaluate({"accuracy": 0.99})
    assert not decision.passed
    assert "f1 is missing" in decision.reason and "accuracy" in decision.reason


def test_nan_metric_counts_as_missing() -> None:
    assert not Gate.from_rules(["accuracy>=0.1"]).evaluate({"accuracy": float("nan")}).passed


def test_champion_challenger_requires_minimum_improvement() -> None:
    gate = Gate(champion_challenger=ChampionChallenger(metric="accuracy", min_improvement=0.01))
    assert not gate.evaluate({"accuracy": 0.905}, {"accuracy": 0.9}).passed
    decision = gate.evaluate({"accuracy": 0.92}, {"accuracy": 0.9})
    assert decision.passed and "vs champion 0.9" in decision.reason


def test_champion_challenger_minimize_direction() -> None:
    gate = Gate(champion_challenger=ChampionChallenger(metric="rmse", direction="minimize"))
    assert gate.evaluate({"rmse": 1.0}, {"rmse": 1.2}).passed
    assert not gate.evaluate({"rmse": 1.3}, {"rmse": 1.2}).passed


def test_tie_with_champion_passes_by_default() -> None:
    gate = Gate.from_rules([], champion_metric="accuracy")
    assert gate.evaluate({"accuracy": 0.9}, {"accuracy": 0.9}).passed


def test_no_champion_yet_passes_the_comparison() -> None:
    gate = Gate.from_rules(["accuracy>=0.5"], champion_metric="accuracy")
    decision = gate.evaluate({"accuracy": 0.7}, None)
    assert decision.passed and "no champion accuracy to beat" in decision.reason


@pytest.mark.parametrize("rule", ["accuracy>0.9", "accuracy", ">=0.9", "accuracy>=high"])
def test_malformed_rules_are_refused_with_the_expected_syntax(rule: str) -> None:
    with pytest.raises(InvalidConfigError, match="METRIC>=NUMBER"):
        Gate.from_rules([rule])


def test_threshold_needs_a_bound() -> None:
    with pytest.raises(ValueError, match="needs at_least or at_most"):
        MetricThreshold(metric="accuracy")
