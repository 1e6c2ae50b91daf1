"""modeldeploy's orchestrator-agnostic engine.

Importing `core` is cheap: names load on first use, and heavy libraries (mlflow,
scikit-learn, pandas, kubernetes) only when a flavor or the registry needs them.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from modeldeploy.version import __version__

_EXPORTS = {
    "ServiceConfig": "modeldeploy.config",
    "ServiceState": "modeldeploy.status",
    "ServiceStatus": "modeldeploy.status",
    "ModelServer": "modeldeploy.server",
    "ModelServerInfo": "modeldeploy.server",
    "ModelDeployer": "modeldeploy.deployer",
    "DeployerSettings": "modeldeploy.settings",
    "DeployResult": "modeldeploy.deployer",
    "PendingDeploy": "modeldeploy.deployer",
    "Gate": "modeldeploy.gate",
    "GateDecision": "modeldeploy.gate",
    "MetricThreshold": "modeldeploy.gate",
    "ChampionChallenger": "modeldeploy.gate",
    "ModelRegistry": "modeldeploy.registry",
    "ModelVersionInfo": "modeldeploy.registry",
    "RolloutOutcome": "modeldeploy.rollout",
    "continuous_deploy": "modeldeploy.rollout",
    "rollback": "modeldeploy.rollout",
    "finish_rollout": "modeldeploy.rollout",
    "create_deployer": "modeldeploy.flavors",
    "get_deployer_class": "modeldeploy.flavors",
    "available_flavors": "modeldeploy.flavors",
    "registry_for": "modeldeploy.flavors",
    "Deadline": "modeldeploy.waiting",
}

__all__ = [
    "ChampionChallenger",
    "Deadline",
    "DeployResult",
    "DeployerSettings",
    "Gate",
    "GateDecision",
    "MetricThreshold",
    "ModelDeployer",
    "ModelRegistry",
    "ModelServer",
    "ModelServerInfo",
    "ModelVersionInfo",
    "PendingDeploy",
    "RolloutOutcome",
    "ServiceConfig",
    "ServiceState",
    "ServiceStatus",
    "__version__",
    "available_flavors",
    "continuous_deploy",
    "create_deployer",
    "finish_rollout",
    "get_deployer_class",
    "registry_for",
    "rollback",
]

if TYPE_CHECKING:
    from modeldeploy.config import ServiceConfig
    from modeldeploy.deployer import DeployResult, ModelDeployer, PendingDeploy
    from modeldeploy.flavors import (
        available_flavors,
        create_deployer,
        get_deployer_class,
        registry_for,
    )
    from modeldeploy.gate import ChampionChallenger, Gate, GateDecision, MetricThreshold
    from modeldeploy.registry import ModelRegistry, ModelVersionInfo
    from modeldeploy.rollout import RolloutOutcome, continuous_deploy, finish_rollout, rollback
    from modeldeploy.server import ModelServer, ModelServerInfo
    from modeldeploy.settings import DeployerSettings
    from modeldeploy.status import ServiceState, ServiceStatus
    from modeldeploy.waiting import Deadline


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'core' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
