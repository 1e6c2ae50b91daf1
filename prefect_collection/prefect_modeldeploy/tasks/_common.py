"""Glue shared by the tasks: resolving blocks and server references, lineage from the run
context, and logging state transitions to the run logger. No deploy logic here."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from uuid import UUID

from pydantic import BaseModel

from prefect_modeldeploy.blocks.deployers import ModelDeployerBlock

if TYPE_CHECKING:
    from modeldeploy.server import ModelServer
    from modeldeploy.status import ServiceStatus

ServerRef = str | UUID | Mapping[str, Any] | BaseModel

_NOT_LINEAGE = re.compile(r"[^A-Za-z0-9 ._:-]+")


def resolve_deployer_block(deployer: ModelDeployerBlock | str) -> ModelDeployerBlock:
    """A deployer block, or the `<block-type-slug>/<name>` of a saved one."""
    if isinstance(deployer, ModelDeployerBlock):
        return deployer
    if isinstance(deployer, str):
        if "/" not in deployer:
            raise ValueError(
                f"cannot tell which block {deployer!r} is: pass the block itself or "
                "'<block-type-slug>/<name>', e.g. 'modeldeploy-<flavor>-deployer/<name>'"
            )
        from prefect.blocks.core import Block

        block = Block.load(deployer)
        if not isinstance(block, ModelDeployerBlock):
            raise ValueError(
                f"block {deployer!r} is a {type(block).__name__}, not a modeldeploy deployer "
                "block (slug modeldeploy-<flavor>-deployer, one per installed flavor)"
            )
        return block
    raise TypeError(
        f"deployer must be a modeldeploy deployer block or its '<slug>/<name>', "
        f"got {type(deployer).__name__}"
    )


def server_uuid(server: ServerRef) -> str:
    """Accept a uuid, a `ModelServerInfo`, a `RolloutOutcome` or their dict forms."""
    if isinstance(server, BaseModel):
        server = server.model_dump(mode="json")
    if isinstance(server, Mapping):
        if "uuid" in server:
            return str(server["uuid"])
        inner = server.get("server")
        if isinstance(inner, Mapping) and "uuid" in inner:
            return str(inner["uuid"])
        raise ValueError(
            "this result names no model server (no 'uuid'); a gate that kept nothing "
            "serving leaves no server to act on"
        )
    return str(server)


def _lineage_name(value: str | None) -> str | None:
    if not value:
        return None
    cleaned = _NOT_LINEAGE.sub("-", value).strip(" .-_:")[:250]
    return cleaned or None


def run_lineage(
    pipeline_name: str | None, run_id: str | None, step_name: str | None
) -> dict[str, str]:
    """Pipeline, run and step names, defaulting to the flow name, flow run id and task name."""
    from prefect.context import FlowRunContext, TaskRunContext

    flow_ctx = FlowRunContext.get()
    task_ctx = TaskRunContext.get()
    if pipeline_name is None and flow_ctx is not None and flow_ctx.flow is not None:
        pipeline_name = _lineage_name(flow_ctx.flow.name)
    if run_id is None and flow_ctx is not None and flow_ctx.flow_run is not None:
        run_id = str(flow_ctx.flow_run.id)
    if step_name is None and task_ctx is not None:
        step_name = _lineage_name(task_ctx.task.name)
    lineage = {"pipeline_name": pipeline_name, "run_id": run_id, "step_name": step_name}
    return {k: v for k, v in lineage.items() if v is not None}


def run_logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    from prefect.exceptions import MissingContextError
    from prefect.logging import get_logger, get_run_logger

    try:
        return get_run_logger()
    except MissingContextError:
        return get_logger("modeldeploy")


def transition_logger(
    logger: logging.Logger | logging.LoggerAdapter[logging.Logger],
) -> Any:
    """An `on_transition` callback that reports each state change in the run log."""

    def on_transition(server: ModelServer, status: ServiceStatus) -> None:
        detail = f": {status.last_error}" if status.last_error else ""
        logger.info(
            "%s model server %s (%s) is %s%s",
            server.flavor,
            server.uuid,
            server.config.model_name,
            status.state.value,
            detail,
        )

    return on_transition


def jsonable(value: Any) -> Any:
    """Predictions as plain JSON types (lists, dicts, numbers, strings)."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if hasattr(value, "to_dict") and hasattr(value, "columns"):  # pandas DataFrame
        return value.to_dict(orient="records")
    if hasattr(value, "tolist"):  # numpy arrays and scalars, pandas Series
        return value.tolist()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value
