"""Find, start, stop, delete and query model servers; each task is one call into `core`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from modeldeploy.verification import VerificationError, VerificationResult
from modeldeploy.waiting import DEFAULT_TIMEOUT
from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel

from prefect_modeldeploy.blocks.deployers import ModelDeployerBlock
from prefect_modeldeploy.tasks._common import (
    ServerRef,
    jsonable,
    resolve_deployer_block,
    run_logger,
    server_uuid,
    transition_logger,
)

if TYPE_CHECKING:
    from modeldeploy.server import ModelServerInfo


class DeleteResult(BaseModel):
    """What `delete_model_server` did: `deleted` is False when the server was already gone."""

    uuid: str
    deleted: bool
    message: str


@task(name="find_model_servers", cache_policy=NO_CACHE)
def find_model_servers(
    deployer: ModelDeployerBlock | str,
    running: bool = False,
    service_uuid: str | None = None,
    pipeline_name: str | None = None,
    run_id: str | None = None,
    step_name: str | None = None,
    model_name: str | None = None,
    model_uri: str | None = None,
    model_type: str | None = None,
) -> list[ModelServerInfo]:
    """Model servers matching every filter given, newest first (no filter: all of them)."""
    block = resolve_deployer_block(deployer)
    with block.deployer() as engine:
        servers = engine.find_model_server(
            running=running,
            service_uuid=service_uuid,
            pipeline_name=pipeline_name,
            run_id=run_id,
            pipeline_step_name=step_name,
            model_name=model_name,
            model_uri=model_uri,
            model_type=model_type,
        )
        infos = [s.info() for s in servers]
    run_logger().info("found %d %s model server(s)", len(infos), block.flavor)
    return infos


@task(name="start_model_server", cache_policy=NO_CACHE)
def start_model_server(
    deployer: ModelDeployerBlock | str, server: ServerRef, timeout: float = DEFAULT_TIMEOUT
) -> ModelServerInfo:
    """Start a stopped model server and wait until it serves; a running one is left as is.
    `server` is a uuid, a `ModelServerInfo` or a `RolloutOutcome`."""
    logger = run_logger()
    with resolve_deployer_block(deployer).deployer() as engine:
        started = engine.start_model_server(
            server_uuid(server), timeout=timeout, on_transition=transition_logger(logger)
        )
        logger.info("model server %s serves at %s", started.uuid, started.prediction_url)
        return started.info()


@task(name="stop_model_server", cache_policy=NO_CACHE)
def stop_model_server(
    deployer: ModelDeployerBlock | str,
    server: ServerRef,
    timeout: float = DEFAULT_TIMEOUT,
    force: bool = False,
) -> ModelServerInfo:
    """Stop a model server but keep its record, so `start_model_server` can bring it back."""
    logger = run_logger()
    with resolve_deployer_block(deployer).deployer() as engine:
        stopped = engine.stop_model_server(
            server_uuid(server),
            timeout=timeout,
            force=force,
            on_transition=transition_logger(logger),
        )
        return stopped.info()


@task(name="delete_model_server", cache_policy=NO_CACHE)
def delete_model_server(
    deployer: ModelDeployerBlock | str,
    server: ServerRef,
    timeout: float = DEFAULT_TIMEOUT,
    force: bool = False,
) -> DeleteResult:
    """Delete a model server and everything it owns. Idempotent: deleting a server that is
    already gone succeeds with `deleted=False`."""
    from modeldeploy.errors import ModelServerNotFoundError

    logger = run_logger()
    uuid = server_uuid(server)
    try:
        with resolve_deployer_block(deployer).deployer() as engine:
            engine.delete_model_server(uuid, timeout=timeout, force=force)
    except ModelServerNotFoundError:
        message = f"model server {uuid} was already gone"
        logger.info("%s", message)
        return DeleteResult(uuid=uuid, deleted=False, message=message)
    message = f"deleted model server {uuid}"
    logger.info("%s", message)
    return DeleteResult(uuid=uuid, deleted=True, message=message)


@task(name="predict", cache_policy=NO_CACHE)
def predict(deployer: ModelDeployerBlock | str, server: ServerRef, data: Any) -> Any:
    """Send `data` to a model server in its own protocol and return its answer as JSON."""
    with resolve_deployer_block(deployer).deployer() as engine:
        return jsonable(engine.get_model_server(server_uuid(server)).predict(data))


@task(name="verify_predictions", cache_policy=NO_CACHE)
def verify_predictions(
    deployer: ModelDeployerBlock | str,
    server: ServerRef,
    data: Any,
    expected: Sequence[Any] | None = None,
    min_accuracy: float | None = None,
    tolerance: float = 0.0,
    rel_tolerance: float = 0.0,
) -> VerificationResult:
    """Check a live model server: send `data`, compare its predictions with `expected`.

    `modeldeploy.verification.verify_predictions`: numbers match within `tolerance`
    (absolute) or `rel_tolerance` (relative), labels exactly. Raises `VerificationError`,
    naming the worst mismatches, when the share of matching rows is below `min_accuracy`
    (or, without it, when any row differs), so inside a transaction the deployment is
    rolled back.
    """
    from modeldeploy.verification import verify_predictions as verify

    logger = run_logger()
    with resolve_deployer_block(deployer).deployer() as engine:
        found = engine.get_model_server(server_uuid(server))
        try:
            result = verify(found, data, expected, tolerance, rel_tolerance, min_accuracy)
        except VerificationError as exc:
            logger.error("verification failed: %s", exc.result.message if exc.result else exc)
            raise
    logger.info("verification passed: %s", result.message)
    return result
