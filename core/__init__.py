"""modeldeploy's orchestrator-agnostic engine.

Importing `core` is cheap: names load on first use, and heavy libraries (mlflow,
scikit-learn, pandas, kubernetes) only when a flavor or the registry needs them.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from core.version import __version__

_EXPORTS = {
    "ServiceConfig": "core.config",
    "ServiceState": "core.status",
    "ServiceStatus": "core.status",
    "ModelServer": "core.server",
    "ModelServerInfo": "core.server",
    "ModelDeployer": "core.deployer",
    "DeployerSettings": "core.deployer",
    "DeployResult": "core.deployer",
    "PendingDeploy": "core.deployer",
    "Gate": "core.gate",
    "GateDecision": "core.gate",
    "MetricThreshold": "core.gate",
    "ChampionChallenger": "core.gate",
    "ModelRegistry": "core.registry",
    "ModelVersionInfo": "core.registry",
    "RolloutOutcome": "core.rollout",
    "continuous_deploy": "core.rollout",
    "rollback": "core.rollout",
    "finish_rollout": "core.rollout",
    "create_deployer": "core.flavors",
    "get_deployer_class": "core.flavors",
    "available_flavors": "core.flavors",
    "Deadline": "core.waiting",
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
    "rollback",
]

if TYPE_CHECKING:
    from core.config import ServiceConfig
    from core.deployer import DeployerSettings, DeployResult, ModelDeployer, PendingDeploy
    from core.flavors import available_flavors, create_deployer, get_deployer_class
    from core.gate import ChampionChallenger, Gate, GateDecision, MetricThreshold
    from core.registry import ModelRegistry, ModelVersionInfo
    from core.rollout import RolloutOutcome, continuous_deploy, finish_rollout, rollback
    from core.server import ModelServer, ModelServerInfo
    from core.status import ServiceState, ServiceStatus
    from core.waiting import Deadline


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'core' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
