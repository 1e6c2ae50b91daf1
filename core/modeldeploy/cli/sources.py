"""Deployers configured where the user's orchestrator keeps them: an Airflow connection
(`--airflow-conn ID`) or a Prefect block (`--prefect-block NAME`).

The skins publish one function each under the `modeldeploy.cli_sources` entry-point group
(`airflow`, `prefect`); it builds the deployer through the hook's or block's own
`get_deployer()`, so a connection or block means the same here as in a pipeline. The CLI
itself never imports Airflow or Prefect.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from modeldeploy.deployer import ModelDeployer
    from modeldeploy.registry import ModelRegistry

ENTRY_POINT_GROUP = "modeldeploy.cli_sources"
#: source name -> (command-line option, extra that installs it)
OPTIONS = {"airflow": ("--airflow-conn", "airflow"), "prefect": ("--prefect-block", "prefect")}


@dataclass
class DeployerSource:
    """A deployer, its model registry, and what it was read from (for messages)."""

    deployer: ModelDeployer
    registry: Callable[[], ModelRegistry]
    description: str


def load_source(kind: str, name: str) -> DeployerSource:
    """The deployer of Airflow connection or Prefect block `name` (`kind` airflow/prefect)."""
    from importlib.metadata import entry_points

    from modeldeploy.cli.main import EXIT_FAILED, CLIError

    option, extra = OPTIONS[kind]
    entry = next((ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == kind), None)
    if entry is None:
        raise CLIError(
            f"{option} needs modeldeploy's {kind} integration; install it with "
            f"`pip install 'modeldeploy[{extra}]'`"
        )
    try:
        build: Callable[[str], DeployerSource] = entry.load()
    except ImportError as exc:
        raise CLIError(
            f"{option} needs {kind}, which cannot be imported here ({exc}); install it with "
            f"`pip install 'modeldeploy[{extra}]'`",
            code=EXIT_FAILED,
        ) from None
    return build(name)
