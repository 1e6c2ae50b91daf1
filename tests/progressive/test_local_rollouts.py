"""Progressive rollouts end to end on the embedded default: real scoring servers behind the
local router, a real MLflow registry, a steady client through the public URL all along.

The champion (version 1) is the logistic regression, which answers 0 for the client's row;
the constant model answers 2, so every answer says which variant gave it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from modeldeploy.errors import InvalidConfigError
from modeldeploy.flavors.mlflow.deployer import MLflowModelDeployer
from modeldeploy.progressive.runner import rollout_status
from modeldeploy.registry import ModelRegistry
from modeldeploy.rollout import continuous_deploy
from modeldeploy.traffic import CHALLENGER

from tests.conftest import SavedModels
from tests.progressive.conftest import Serving
from tests.progressive.helpers import Prometheus, SteadyClient

pytestmark = pytest.mark.slow

CHAMPION_ANSWER, CHALLENGER_ANSWER = 0, 2


def _deploy(serving: Serving, model: Path, strategy: Any, analysis: Any) -> Any:
    return continuous_deploy(
        serving.deployer,
        serving.config(model),
        {"accuracy": 0.95},
        registry=serving.registry,
        strategy=strategy,
        analysis=analysis,
        timeout=120,
    )


def _serving_version(serving: Serving) -> str | None:
    return serving.deployer.find_model_server(model_name="iris")[0].config.model_version


def _tags(registry: ModelRegistry, version: str) -> dict[str, str]:
    return registry.get_version("iris", version).tags


def test_canary_promotes_step_by_step_with_no_failed_request(
    serving: Serving, saved_models: SavedModels
) -> None:
    canary = {"kind": "canary", "percents": [10, 50, 100], "bake_seconds": 1.5}
    analysis = {"rules": "error_rate<=0.01,p99_ms<=2000", "min_requests": 5}
    with SteadyClient(serving.url, serving.rows) as client:
        client.wait_for(20)
        outcome = _deploy(serving, saved_models.second, canary, analysis)
        promoted_at = len(client.timeline)
        client.wait_for(20)
    assert outcome.action == "promoted", outcome.message
    state = outcome.rollout
    assert [r.step.challenger_percent for r in state.history] == [10, 50, 100]
    assert all(r.analyses[-1].verdict == "passed" for r in state.history)
    assert state.history[0].analyses[-1].figures[CHALLENGER]["requests"] >= 5
    assert client.failures == []
    assert client.predictions()[CHALLENGER_ANSWER] > 0  # it took live traffic on the way
    assert {a.prediction for a in client.timeline[promoted_at:]} == {CHALLENGER_ANSWER}
    # traffic and alias moved together
    champion = serving.registry.get_champion("iris")
    assert champion is not None and champion.version == "2"
    assert _serving_version(serving) == "2"
    assert _tags(serving.registry, "2")["modeldeploy.rollout"] == "canary:promoted"
    # the state is on disk for any other process
    assert rollout_status(serving.deployer, "iris").phase == "succeeded"


def test_a_challenger_that_disagrees_with_the_labels_is_rolled_back(
    serving: Serving, saved_models: SavedModels, iris_probe: dict[str, Any]
) -> None:
    canary = {"kind": "canary", "percents": [20, 100], "bake_seconds": 1.0}
    analysis = {
        "rules": ["error_rate<=0.01", "accuracy>=0.9", "agreement>=0.9"],
        "min_requests": 1,
        "probe": iris_probe,
    }
    with SteadyClient(serving.url, serving.rows) as client:
        client.wait_for(20)
        outcome = _deploy(serving, saved_models.second, canary, analysis)
        after = len(client.timeline)
        client.wait_for(20)
    assert outcome.action == "rolled_back", outcome.message
    judged = outcome.rollout.history[0].analyses[-1]
    assert judged.verdict == "failed"
    assert judged.figures["champion"]["accuracy"] >= 0.9  # the champion scored on the probe
    assert judged.figures[CHALLENGER]["accuracy"] < 0.5
    assert "accuracy" in outcome.message and "agreement" in outcome.message
    assert client.failures == []
    assert set(client.predictions(since=after)) == {CHAMPION_ANSWER}
    champion = serving.registry.get_champion("iris")
    assert champion is not None and champion.version == "1"
    assert _serving_version(serving) == "1"
    tags = _tags(serving.registry, "2")
    assert tags["modeldeploy.rollout"] == "canary:rolled_back"
    assert "accuracy" in tags["modeldeploy.rollout_reason"]
    assert tags["modeldeploy.gate"] == "rolled_back"  # no longer reads as deployable
    assert tags["modeldeploy.rolled_back_reason"].startswith("canary: ")
    server = serving.deployer.find_model_server(model_name="iris")[0]
    assert server.traffic_status().weight_of(CHALLENGER) == 0


def test_an_erroring_challenger_is_rolled_back_after_its_first_step(
    serving: Serving, erroring_model: Path
) -> None:
    linear = {"kind": "linear", "step_percent": 50, "bake_seconds": 1.0}
    with SteadyClient(serving.url, serving.rows) as client:
        client.wait_for(20)
        outcome = _deploy(serving, erroring_model, linear, {"min_requests": 3})
        after = len(client.timeline)
        client.wait_for(20)
    assert outcome.action == "rolled_back"
    assert len(outcome.rollout.history) == 1
    assert "error_rate" in outcome.message
    assert client.failures  # the bad challenger's own answers during its 50 %
    assert [a for a in client.timeline[after:] if not a.ok] == []
    assert serving.registry.get_champion("iris").version == "1"  # type: ignore[union-attr]


def test_shadow_reports_from_prometheus_and_clients_only_see_the_champion(
    serving: Serving, saved_models: SavedModels, prometheus: Prometheus
) -> None:
    from modeldeploy.progressive.runner import advance_rollout, begin_rollout, check_rollout

    shadow = {"kind": "shadow", "bake_seconds": 3}
    analysis = {
        "rules": ["error_rate<=0.01", "agreement>=0.95"],
        "min_requests": 5,
        "prometheus_url": prometheus.url,
    }
    strategy, config = check_rollout(serving.deployer, shadow, analysis)
    champion = serving.deployer.find_model_server(model_name="iris")[0]
    with SteadyClient(serving.url, serving.rows) as client:
        client.wait_for(10)
        state = begin_rollout(
            serving.deployer,
            champion,
            serving.deployer.parse_config(serving.config(saved_models.first)),
            strategy,
            config,
        )
        while state.phase == "starting":  # one step at a time, as a triggerer would
            state = advance_rollout(serving.deployer, "iris")
        metrics_url = champion.traffic_status().metrics_url
        assert metrics_url is not None
        prometheus.scrape(metrics_url)
        from modeldeploy.progressive.runner import run_rollout

        state = run_rollout(serving.deployer, "iris")
    assert state.phase == "reported", state.message
    figures = state.history[0].analyses[-1].figures[CHALLENGER]
    # Prometheus extrapolates increase() over the window: an estimate, not a count
    assert figures["requests"] >= 5 and figures["agreement"] == pytest.approx(1.0, abs=0.02)
    assert "shadow report" in state.message
    assert client.failures == []
    assert set(client.predictions()) == {CHAMPION_ANSWER}


def test_a_strategy_the_flavor_cannot_do_is_refused_before_anything_changes(
    md_home: Path, tracking_uri: str, saved_models: SavedModels
) -> None:
    class SplitOnly(MLflowModelDeployer):
        capabilities = frozenset(MLflowModelDeployer.capabilities - {"mirror"})  # type: ignore[arg-type]

    registry = ModelRegistry(tracking_uri)
    deployer = SplitOnly({"home": md_home, "tracking_uri": tracking_uri})
    config = {"model_name": "iris", "model_uri": str(saved_models.first)}
    with pytest.raises(InvalidConfigError) as info:
        continuous_deploy(deployer, config, {}, registry=registry, strategy="shadow")
    assert "mlflow flavor cannot do a shadow rollout" in str(info.value)
    assert "mirror" in str(info.value)
    with pytest.raises(InvalidConfigError, match="needs labels"):
        continuous_deploy(
            deployer,
            config,
            {},
            registry=registry,
            strategy="canary",
            analysis={"rules": "rmse<=1"},
        )
    assert registry.client.search_model_versions("name='iris'") == []
    assert deployer.find_model_server() == []


def test_blue_green_checks_at_zero_then_switches_all_at_once(
    serving: Serving, saved_models: SavedModels, iris_probe: dict[str, Any]
) -> None:
    blue_green = {"kind": "blue_green", "termination_wait_seconds": 1.0}
    # the constant model passes a lenient probe: it is right on a third of the rows
    analysis = {"rules": ["accuracy>=0.3", "error_rate<=0.01"], "probe": iris_probe}
    with SteadyClient(serving.url, serving.rows) as client:
        client.wait_for(20)
        outcome = _deploy(serving, saved_models.second, blue_green, {**analysis, "min_requests": 5})
        after = len(client.timeline)
        client.wait_for(20)
    assert outcome.action == "promoted", outcome.message
    zero, full = outcome.rollout.history
    assert zero.step.challenger_percent == 0 and zero.analyses[-1].verdict == "passed"
    assert zero.analyses[-1].figures[CHALLENGER]["requests"] == 0  # no client met it at 0 %
    assert zero.analyses[-1].figures[CHALLENGER]["accuracy"] == pytest.approx(1 / 3)
    assert full.step.challenger_percent == 100 and full.analyses[-1].verdict == "passed"
    assert client.failures == []
    # answers switch from one model to the other, never back
    predictions = [a.prediction for a in client.timeline if a.ok]
    first_new = predictions.index(CHALLENGER_ANSWER)
    assert set(predictions[:first_new]) == {CHAMPION_ANSWER}
    assert set(predictions[first_new:]) == {CHALLENGER_ANSWER}
    assert {a.prediction for a in client.timeline[after:]} == {CHALLENGER_ANSWER}
    assert serving.registry.get_champion("iris").version == "2"  # type: ignore[union-attr]
