"""A ready-made flow: gate, deploy and verify one candidate, rolling back on a failed check."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from modeldeploy.waiting import DEFAULT_TIMEOUT
from prefect import flow
from prefect.transactions import transaction

from prefect_modeldeploy.blocks.deployers import ModelDeployerBlock
from prefect_modeldeploy.tasks import deploy_model, verify_predictions

if TYPE_CHECKING:
    from modeldeploy.rollout import RolloutOutcome


@flow(name="modeldeploy-continuous-deployment")
def continuous_deployment(
    deployer: ModelDeployerBlock | str,
    model_name: str,
    model_uri: str,
    metrics: Mapping[str, float],
    gate_rules: list[str] | None = None,
    champion_metric: str | None = None,
    min_improvement: float = 0.0,
    verification_data: Any = None,
    expected_predictions: Sequence[Any] | None = None,
    min_live_accuracy: float | None = None,
    config: Mapping[str, Any] | None = None,
    pipeline_name: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> RolloutOutcome:
    """Deploy `model_uri` if it passes the gate, then check the live server with
    `verification_data`; both run in one transaction, so a failed check rolls the model
    server and the `champion` alias back to the previous champion."""
    with transaction():
        outcome = deploy_model(
            deployer,
            model_name,
            model_uri,
            metrics=metrics,
            gate_rules=gate_rules,
            champion_metric=champion_metric,
            min_improvement=min_improvement,
            config=config,
            pipeline_name=pipeline_name,
            timeout=timeout,
        )
        if outcome.server is not None and verification_data is not None:
            verify_predictions(
                deployer,
                outcome,
                verification_data,
                expected=expected_predictions,
                min_accuracy=min_live_accuracy,
            )
    return outcome
