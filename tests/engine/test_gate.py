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


@pytest.mark.parametrize(
    ("metric", "direction"),
    [
        ("rmse", "minimize"),
        ("val_loss", "minimize"),
        ("mean_squared_error", "minimize"),
        ("test/log-loss", "minimize"),
        ("accuracy_score", "maximize"),
        ("roc_auc", "maximize"),
        ("R2", "maximize"),
        ("f1", "maximize"),
        ("recall", "maximize"),
    ],
)
def test_direction_is_inferred_only_for_well_known_metrics(metric: str, direction: str) -> None:
    gate = Gate.from_rules([], champion_metric=metric)
    assert gate.champion_challenger is not None
    assert gate.champion_challenger.direction == direction
    better = "lower is better" if direction == "minimize" else "higher is better"
    assert better in gate.evaluate({metric: 1.0}, {metric: 1.0}).reason


@pytest.mark.parametrize("build", ["from_rules", "model"])
def test_unknown_metric_without_direction_is_refused_saying_what_to_write(build: str) -> None:
    # pydantic wraps the engine's InvalidConfigError (a ValueError) in a ValidationError
    with pytest.raises(ValueError) as caught:
        if build == "from_rules":
            Gate.from_rules([], champion_metric="revenue_uplift")
        else:
            ChampionChallenger.model_validate({"metric": "revenue_uplift"})
    message = str(caught.value)
    assert "revenue_uplift" in message
    assert "direction='minimize'" in message and "direction='maximize'" in message


def test_explicit_direction_wins_and_a_bad_one_is_refused() -> None:
    gate = Gate.from_rules([], champion_metric="revenue_uplift", direction="maximize")
    assert gate.evaluate({"revenue_uplift": 2.0}, {"revenue_uplift": 1.0}).passed
    with pytest.raises(InvalidConfigError, match="direction 'lowest' for rmse"):
        Gate.from_rules([], champion_metric="rmse", direction="lowest")


def test_a_worse_loss_never_passes_and_the_reason_says_which_way_is_better() -> None:
    """The reported case: RMSE 60.13 replaced a champion at 56.5 under a default maximize."""
    decision = Gate.from_rules([], champion_metric="rmse").evaluate({"rmse": 60.13}, {"rmse": 56.5})
    assert not decision.passed
    assert decision.reason == (
        "rejected: rmse 60.13 vs champion 56.5, lower is better (worse by 3.63; must be no worse)"
    )
    better = Gate.from_rules([], champion_metric="rmse").evaluate({"rmse": 50.0}, {"rmse": 56.5})
    assert better.passed and "lower is better (better by 6.5)" in better.reason


def test_continuous_deploy_never_promotes_a_worse_loss(
    mlflow_deployer: object, tracking_uri: str, saved_models: object
) -> None:
    from modeldeploy.registry import ModelRegistry
    from modeldeploy.rollout import continuous_deploy

    registry = ModelRegistry(tracking_uri)
    champion = registry.register_candidate("house", "s3://models/house/1", {"log_loss": 0.30})
    registry.promote("house", champion.version)
    outcome = continuous_deploy(
        mlflow_deployer,  # type: ignore[arg-type]
        {"model_name": "house", "model_uri": str(saved_models.first)},  # type: ignore[attr-defined]
        {"log_loss": 0.35},
        Gate.from_rules([], champion_metric="log_loss"),
        registry,
    )
    assert outcome.action == "none" and outcome.decision is not None
    assert not outcome.decision.passed
    assert "log_loss 0.35 vs champion 0.3, lower is better" in outcome.decision.reason
    current = registry.get_champion("house")
    assert current is not None and current.version == "1"
    assert registry.get_version("house", "2").tags["modeldeploy.gate"] == "rejected"
