"""`ModelDeployHook` once per installed flavor, as `modeldeploy_provider.hooks.by_flavor.<flavor>`.

Airflow's providers manager expects the hook class of each connection type to declare that
type in `conn_type` (it logs "Inconsistency!" otherwise). One generic hook serves every
flavor, so each connection type gets a generated subclass that differs only in `conn_type`;
nothing here names a flavor.
"""

from __future__ import annotations

from functools import cache

from modeldeploy_provider.connection_types import conn_type_of, hook_name_of
from modeldeploy_provider.hooks.modeldeploy import ModelDeployHook


@cache
def hook_for(flavor: str) -> type[ModelDeployHook]:
    return type(
        f"ModelDeployHook[{flavor}]",
        (ModelDeployHook,),
        {
            "conn_type": conn_type_of(flavor),
            "hook_name": hook_name_of(flavor),
            "__module__": __name__,
            "__qualname__": flavor,
        },
    )


def __getattr__(name: str) -> type[ModelDeployHook]:
    """A flavor's hook; any other name is an AttributeError, as PEP 562 asks, so probes
    such as `getattr(module, name, None)` over `sys.modules` (pickle's and skops'
    `whichmodule`) get None instead of an error."""
    from modeldeploy.flavors import available_flavors

    if name not in available_flavors():
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return hook_for(name)
