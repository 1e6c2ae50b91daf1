"""Flavors are found by name through the `modeldeploy.flavors` entry-point group.

A third party adds a flavor by publishing an entry point whose value is a
`ModelDeployer` subclass with a `settings_class` (see `modeldeploy.settings`); nothing in
this repository has to change. This module is also the one place that decides which MLflow
model registry goes with a deployer (`registry_for`), for the CLI and both skins.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from modeldeploy.errors import FlavorNotFoundError, InvalidConfigError, ModelDeployError

if TYPE_CHECKING:
    from modeldeploy.deployer import ModelDeployer
    from modeldeploy.registry import ModelRegistry
    from modeldeploy.settings import DeployerSettings
    from modeldeploy.traffic import Capability

ENTRY_POINT_GROUP = "modeldeploy.flavors"
DEFAULT_FLAVOR = "mlflow"


@cache
def _entry_points() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available_flavors() -> list[str]:
    return sorted(_entry_points())


def get_deployer_class(flavor: str) -> type[ModelDeployer]:
    from modeldeploy.deployer import ModelDeployer

    entry = _entry_points().get(flavor)
    if entry is None:
        known = ", ".join(available_flavors()) or "none"
        raise FlavorNotFoundError(
            f"unknown flavor {flavor!r}; installed flavors: {known}. Install the extra that "
            f"provides it (e.g. `pip install modeldeploy[kubernetes]`) or fix the name"
        )
    try:
        cls = entry.load()
    except ImportError as exc:
        raise FlavorNotFoundError(
            f"flavor {flavor!r} is installed but cannot be imported ({exc}); install its "
            f"extra, e.g. `pip install modeldeploy[kubernetes]` for seldon and kserve"
        ) from None
    if not (isinstance(cls, type) and issubclass(cls, ModelDeployer)):
        raise InvalidConfigError(
            f"entry point {flavor!r} in {ENTRY_POINT_GROUP} is {entry.value}, "
            "which is not a ModelDeployer subclass"
        )
    return cls


def flavors_with(capability: Capability) -> list[str]:
    """The installed flavors that declare `capability` (for advice in refusals); a flavor
    that cannot be imported is left out."""
    found = []
    for flavor in available_flavors():
        try:
            if capability in get_deployer_class(flavor).capabilities:
                found.append(flavor)
        except ModelDeployError:
            continue
    return found


def create_deployer(
    flavor: str = DEFAULT_FLAVOR, settings: DeployerSettings | dict[str, Any] | None = None
) -> ModelDeployer:
    """The deployer of an installed flavor. `settings` is its settings model or a dict of
    values or text (`"true"`, `"30"`, JSON), coerced by `modeldeploy.settings`."""
    return get_deployer_class(flavor)(settings)


def settings_class_of(flavor: str) -> type[DeployerSettings]:
    """The settings model a flavor declares: the fields every surface shows."""
    return get_deployer_class(flavor).settings_class


def flavor_title(flavor: str) -> str:
    """A human name for a flavor, from its deployer's class name (`KServeModelDeployer`
    gives "KServe"), for form titles and block names."""
    name = get_deployer_class(flavor).__name__
    for suffix in ("ModelDeployer", "Deployer"):
        if name.endswith(suffix) and name != suffix:
            return name.removesuffix(suffix)
    return flavor.replace("_", " ").replace("-", " ").title().replace(" ", "")


def registry_for(deployer: ModelDeployer) -> ModelRegistry:
    """The MLflow model registry that records candidates and the champion of `deployer`.

    The deployer's `tracking_uri` (its setting, or the flavor's own store, as the local
    mlflow flavor keeps SQLite beside its servers), else `$MLFLOW_TRACKING_URI`, else SQLite
    under the modeldeploy home.
    """
    from modeldeploy.registry import ModelRegistry

    return ModelRegistry(deployer.tracking_uri)
