"""Find, start, stop, delete and query model servers; each task is one call into `core`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

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


class VerificationResult(BaseModel):
    """Live predictions of a model server checked against expected answers."""

    uuid: str
    prediction_url: str | None
    rows: int
    predictions: list[Any]
    accuracy: float | None
    passed: bool
    message: str


class VerificationError(AssertionError):
    """The live model server did not answer as expected."""


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


def _prediction_list(answer: Any) -> list[Any]:
    answer = jsonable(answer)
    if isinstance(answer, dict):
        for key in ("predictions", "outputs", "data"):
            if key in answer:
                return _prediction_list(answer[key])
    return answer if isinstance(answer, list) else [answer]


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
) -> VerificationResult:
    """Check a live model server: send `data`, compare its predictions with `expected`.

    Raises `VerificationError` when the accuracy against `expected` is below `min_accuracy`
    (or, without `min_accuracy`, when any prediction differs), so that inside a transaction
    the deployment is rolled back.
    """
    logger = run_logger()
    with resolve_deployer_block(deployer).deployer() as engine:
        found = engine.get_model_server(server_uuid(server))
        predictions = _prediction_list(found.predict(data))
    accuracy = None
    passed = True
    message = f"{len(predictions)} live prediction(s) from {found.prediction_url}"
    if expected is not None:
        expected = list(jsonable(list(expected)))
        if len(expected) != len(predictions):
            raise VerificationError(
                f"model server {found.uuid} answered {len(predictions)} prediction(s) for "
                f"{len(expected)} expected"
            )
        hits = sum(_same(p, e) for p, e in zip(predictions, expected, strict=True))
        accuracy = hits / len(expected) if expected else 1.0
        wanted = 1.0 if min_accuracy is None else min_accuracy
        passed = accuracy >= wanted
        message = (
            f"live accuracy {accuracy:.4g} on {len(expected)} row(s) from "
            f"{found.prediction_url} ({'>=' if passed else '<'} {wanted:.4g})"
        )
    result = VerificationResult(
        uuid=str(found.uuid),
        prediction_url=found.prediction_url,
        rows=len(predictions),
        predictions=predictions,
        accuracy=accuracy,
        passed=passed,
        message=message,
    )
    if not passed:
        logger.error("verification failed: %s", message)
        raise VerificationError(f"verification of model server {found.uuid} failed: {message}")
    logger.info("verification passed: %s", message)
    return result


def _same(prediction: Any, expected: Any) -> bool:
    try:
        return float(prediction) == float(expected)
    except (TypeError, ValueError):
        return prediction == expected
