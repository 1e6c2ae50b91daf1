"""Deployer blocks: one per installed flavor, generated from the flavor's settings model.

Each block's fields are its flavor's settings (`modeldeploy.settings`): names, titles and
descriptions; secret settings become `SecretStr` (text) or `SecretDict` (mappings), which
Prefect stores encrypted and shows masked. The block hands out the engine's deployer and
the model registry the engine picks for it; the rollout itself lives in the engine.
Nothing here names a flavor: a flavor installed from another distribution gets its block
(slug `modeldeploy-<flavor>-deployer`) from its `modeldeploy.flavors` entry point alone.
"""

from __future__ import annotations

import contextlib
import logging
from abc import ABC
from collections.abc import Iterator, Mapping
from functools import cache
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from prefect.blocks.core import Block
from prefect.types import SecretDict
from pydantic import ConfigDict, Field, SecretStr, model_validator

from prefect_modeldeploy._meta import docs

if TYPE_CHECKING:
    from modeldeploy.deployer import ModelDeployer
    from modeldeploy.registry import ModelRegistry
    from modeldeploy.settings import SettingField

log = logging.getLogger(__name__)

_PLAIN_TYPES: dict[str, Any] = {
    "string": str,
    "boolean": bool,
    "integer": int,
    "number": float,
    "mapping": dict[str, Any],
    "list": list[Any],
}


class ModelDeployerBlock(Block, ABC):
    """Base of the generated deployer blocks: a flavor's settings in, a deployer out."""

    # Validation errors must not quote the input: settings hold secrets.
    model_config = ConfigDict(hide_input_in_errors=True)

    flavor: ClassVar[str]

    @model_validator(mode="before")
    @classmethod
    def _credential_blocks(cls, data: Any) -> Any:
        """Accept credential blocks (anything with `to_settings()`) as setting values, and
        fold one that is not a setting itself (a `KubernetesCredentials` passed as
        `kubernetes_credentials`, as blocks saved before 0.2 hold it) into the settings."""
        if not isinstance(data, Mapping):
            return data
        fields = cls.model_fields
        out: dict[str, Any] = {}
        for key, value in data.items():
            value = _credential_settings(value)
            if key not in fields and isinstance(value, Mapping) and set(value) <= set(fields):
                for name, item in value.items():
                    if item is not None:
                        out.setdefault(name, item)
                continue
            if value is None and key in out:
                continue
            out[key] = value
        return out

    @model_validator(mode="after")
    def _valid_for_the_engine(self) -> ModelDeployerBlock:
        """A block the flavor would refuse cannot be saved; the message names the setting,
        never its (secret) value."""
        from modeldeploy.flavors import settings_class_of
        from modeldeploy.settings import validate_settings

        validate_settings(settings_class_of(self.flavor), self.deployer_settings(), self.flavor)
        return self

    def deployer_settings(self) -> dict[str, Any]:
        """Settings of the flavor's deployer, secrets revealed (never log them)."""
        from modeldeploy.settings import reveal

        values = {name: reveal(getattr(self, name)) for name in type(self).model_fields}
        return {k: v for k, v in values.items() if v is not None}

    def get_deployer(self) -> ModelDeployer:
        """The engine's `ModelDeployer` of this block's flavor, configured from the block."""
        from modeldeploy.flavors import create_deployer

        return create_deployer(self.flavor, self.deployer_settings())

    @contextlib.contextmanager
    def deployer(self) -> Iterator[ModelDeployer]:
        """`get_deployer()` for one piece of work: its connections are closed afterwards."""
        with self.get_deployer() as deployer:
            yield deployer

    def get_registry(self, deployer: ModelDeployer | None = None) -> ModelRegistry:
        """The MLflow Model Registry that records candidates and the champion: the one the
        engine picks for this deployer (`modeldeploy.flavors.registry_for`)."""
        from modeldeploy.flavors import registry_for

        return registry_for(deployer or self.get_deployer())


def _credential_settings(value: Any) -> Any:
    """A credential block, or its saved data as Prefect hands it back, as plain settings."""
    to_settings = getattr(value, "to_settings", None)
    if callable(to_settings):
        return to_settings()
    if isinstance(value, Mapping) and "block_type_slug" in value:
        data = {k: v for k, v in value.items() if k != "block_type_slug"}
        with contextlib.suppress(Exception):
            block_class = Block.get_block_class_from_key(str(value["block_type_slug"]))
            if hasattr(block_class, "to_settings"):
                return block_class(**data).to_settings()
        return data
    return value


def _block_field(field: SettingField) -> tuple[Any, Any]:
    """The annotation and `Field` of one setting in a block."""
    if field.secret:
        annotation: Any = SecretDict if field.kind in ("mapping", "list") else SecretStr
    elif field.choices:
        annotation = Literal[tuple(field.choices)]
    else:
        annotation = _PLAIN_TYPES[field.kind]
    description = field.description or field.label
    if not description.endswith("."):
        description += "."
    if field.required:
        return annotation, Field(default=..., title=field.label, description=description)
    default = None if field.secret else field.default
    return annotation | None, Field(default=default, title=field.label, description=description)


def _summary(cls: type) -> str:
    doc = (cls.__doc__ or "").strip().split("\n\n")[0]
    return " ".join(doc.split())


@cache
def deployer_block(flavor: str) -> type[ModelDeployerBlock]:
    """The deployer block of an installed flavor (generated once per process)."""
    from modeldeploy.flavors import flavor_title, get_deployer_class
    from modeldeploy.settings import setting_fields

    deployer_class = get_deployer_class(flavor)
    title = flavor_title(flavor)
    name = f"{title}Deployer"
    annotations: dict[str, Any] = {}
    namespace: dict[str, Any] = {
        "__module__": __name__,
        "__qualname__": name,
        "__doc__": f"The `{flavor}` flavor's deployer settings. {_summary(deployer_class)}",
        "flavor": flavor,
        "_block_type_name": f"modeldeploy {title} Deployer",
        "_block_type_slug": f"modeldeploy-{flavor}-deployer",
        "_documentation_url": docs("deployer-blocks"),
        "_description": (
            f"Continuous deployment with modeldeploy's {flavor} flavor: "
            f"{_summary(deployer_class) or 'where its model servers live'} Fields are the "
            "flavor's settings; secret ones are stored encrypted."
        ),
        "_code_example": f"""
    ```python
    from prefect_modeldeploy.blocks import {name}

    {flavor.replace("-", "_")}_deployer = {name}.load("BLOCK_NAME")
    deployer = {flavor.replace("-", "_")}_deployer.get_deployer()  # the engine's deployer
    servers = deployer.find_model_server(running=True)
    ```
    """,
    }
    for field in setting_fields(deployer_class.settings_class):
        annotations[field.name], namespace[field.name] = _block_field(field)
    namespace["__annotations__"] = annotations
    return type(ModelDeployerBlock)(name, (ModelDeployerBlock,), namespace)


def deployer_blocks() -> dict[str, type[ModelDeployerBlock]]:
    """Class name -> deployer block of every installed flavor that loads."""
    from modeldeploy.flavors import available_flavors

    blocks: dict[str, type[ModelDeployerBlock]] = {}
    for flavor in available_flavors():
        try:
            block = deployer_block(flavor)
        except Exception as exc:  # a broken third-party flavor must not hide the others
            log.warning("modeldeploy flavor %s has no deployer block: %s", flavor, exc)
            continue
        blocks[block.__name__] = block
    return blocks


#: deployer block class name -> class, one per installed flavor; also attributes of this
#: module, so pickles and `prefect block register -m` find them by name
DEPLOYER_BLOCKS = deployer_blocks()
globals().update(DEPLOYER_BLOCKS)
