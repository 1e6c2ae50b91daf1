"""Fixtures of the progressive-delivery tests: a serving champion, probes, Prometheus."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SavedModels
from tests.progressive.helpers import Prometheus, save_erroring_model


@dataclass
class Serving:
    """A champion (version 1, the logistic regression) serving through the local flavor."""

    deployer: Any
    registry: Any
    base: dict[str, Any]
    url: str
    rows: dict[str, Any]

    def config(self, model_uri: Path | str) -> dict[str, Any]:
        return {**self.base, "model_uri": str(model_uri)}

    def begin(self, model_uri: Path | str, strategy: Any, analysis: Any) -> Any:
        """Start a rollout of `model_uri` and advance it, as a triggerer would, until its
        first step bakes; returns the state."""
        from modeldeploy.progressive.runner import advance_rollout, begin_rollout, check_rollout

        parsed, config = check_rollout(self.deployer, strategy, analysis)
        champion = self.deployer.find_model_server(model_name="iris")[0]
        service = self.deployer.parse_config(self.config(model_uri))
        state = begin_rollout(self.deployer, champion, service, parsed, config)
        while state.phase == "starting":
            state = advance_rollout(self.deployer, "iris")
        return state

    def held(self, model_uri: Path | str, probe: dict[str, Any], **options: Any) -> Any:
        """Deploy `model_uri` as a canary (30 % then 100 %) held before step 2 and drive it
        until it waits for the answer; returns the state."""
        from modeldeploy.progressive.runner import run_rollout
        from modeldeploy.rollout import continuous_deploy

        canary = {"kind": "canary", "percents": [30, 100], "bake_seconds": 0.5}
        started = continuous_deploy(
            self.deployer,
            self.config(model_uri),
            {"accuracy": 0.95},
            registry=self.registry,
            strategy={**canary, "approve_before_steps": [2], **options},
            # the constant model passes a lenient probe: it is right on a third of the rows
            analysis={"rules": ["accuracy>=0.3"], "min_requests": 0, "probe": probe},
            wait=False,
        )
        assert started.action == "progressing", started.message
        state = run_rollout(self.deployer, "iris", self.registry, timeout=120)
        assert state.phase == "awaiting_approval", state.message
        return state


@pytest.fixture
def serving(mlflow_deployer: Any, tracking_uri: str, saved_models: SavedModels) -> Serving:
    from modeldeploy.registry import ModelRegistry
    from modeldeploy.rollout import continuous_deploy

    registry = ModelRegistry(tracking_uri)
    base = {"model_name": "iris", "pipeline_name": "cd", "step_name": "deploy"}
    # a strategy on a model's first rollout has no champion to compare with: in place
    first = continuous_deploy(
        mlflow_deployer,
        {**base, "model_uri": str(saved_models.first)},
        {"accuracy": 0.97},
        registry=registry,
        strategy="canary",
        timeout=120,
    )
    assert first.action == "created" and first.server is not None
    assert first.server.prediction_url is not None
    rows = {
        "dataframe_split": {"columns": saved_models.columns, "data": saved_models.sample_rows[:1]}
    }
    return Serving(mlflow_deployer, registry, base, first.server.prediction_url, rows)


@pytest.fixture(scope="session")
def erroring_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_erroring_model(tmp_path_factory.mktemp("erroring"))


@pytest.fixture(scope="session")
def iris_probe() -> dict[str, Any]:
    """Thirty labelled iris rows, ten of each class."""
    from sklearn.datasets import load_iris

    features, target = load_iris(return_X_y=True, as_frame=True)
    picked = list(range(0, 150, 5))
    return {
        "records": features.iloc[picked].to_dict(orient="records"),
        "labels": [int(y) for y in target.iloc[picked]],
        "task": "classification",
    }


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Prometheus]:
    server = Prometheus(tmp_path / "prometheus")
    try:
        yield server
    finally:
        server.close()
