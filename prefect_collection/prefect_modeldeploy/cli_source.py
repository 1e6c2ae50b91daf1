"""`modeldeploy --prefect-block NAME`: the CLI's deployer from a saved deployer block.

Published under the `modeldeploy.cli_sources` entry point. NAME is `<block-type-slug>/<name>`
or just the block's name, looked up among the modeldeploy deployer block types. Uses the
block's own `get_deployer()` and `get_registry()`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modeldeploy.cli.sources import DeployerSource

if TYPE_CHECKING:
    from prefect_modeldeploy.blocks.deployers import ModelDeployerBlock


def _block_types() -> list[type[ModelDeployerBlock]]:
    from prefect_modeldeploy.blocks.deployers import ModelDeployerBlock

    found, todo = [], list(ModelDeployerBlock.__subclasses__())
    while todo:
        cls = todo.pop(0)
        todo.extend(cls.__subclasses__())
        if "_block_type_slug" in vars(cls):
            found.append(cls)
    return found


def load_block(name: str) -> ModelDeployerBlock:
    from modeldeploy.errors import InvalidConfigError
    from prefect.blocks.core import Block

    from prefect_modeldeploy.blocks.deployers import ModelDeployerBlock

    types = _block_types()
    tries: list[type[Block]] = [Block] if "/" in name else list(types)
    for cls in tries:
        try:
            block = cls.load(name)
        except ValueError:
            continue
        except Exception as exc:
            raise InvalidConfigError(
                f"cannot read Prefect block {name!r}: {type(exc).__name__}: {exc}; check "
                "PREFECT_API_URL and that the Prefect server is running"
            ) from None
        if not isinstance(block, ModelDeployerBlock):
            raise InvalidConfigError(
                f"Prefect block {name!r} is a {type(block).__name__}, not a modeldeploy "
                "deployer block"
            )
        return block
    slugs = ", ".join(cls.get_block_type_slug() for cls in types)
    raise InvalidConfigError(
        f"no Prefect deployer block named {name!r} (looked in block types {slugs}); list them "
        "with `prefect block ls`, or write <block-type-slug>/<name>"
    )


def deployer_source(name: str) -> DeployerSource:
    block = load_block(name)
    return DeployerSource(
        deployer=block.get_deployer(),
        registry=block.get_registry,
        description=f"Prefect block {block.get_block_type_slug()}/{name.split('/')[-1]}",
    )
