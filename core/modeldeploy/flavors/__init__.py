"""Flavors are found by name through the `modeldeploy.flavors` entry-point group.

A third party adds a flavor by publishing an entry point whose value is a
`ModelDeployer` subclass; nothing in `core` has to change.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from modeldeploy.errors import FlavorNotFoundError, InvalidConfigError

if TYPE_CHECKING:
    from modeldeploy.deployer import DeployerSettings, ModelDeployer

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


def create_deployer(
    flavor: str = DEFAULT_FLAVOR, settings: DeployerSettings | dict[str, Any] | None = None
) -> ModelDeployer:
    return get_deployer_class(flavor)(settings)
