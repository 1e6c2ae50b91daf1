"""Tasks of the modeldeploy collection; each wraps one call into the `core` engine."""

from prefect_modeldeploy.tasks.deployment import (
    ROLLBACK_RECORD,
    deploy_model,
    evaluate_gate,
    rollback_model,
)
from prefect_modeldeploy.tasks.progressive import (
    ROLLOUT_RECORD,
    RolloutRolledBack,
    follow_rollout,
    start_rollout,
)
from prefect_modeldeploy.tasks.servers import (
    DeleteResult,
    VerificationError,
    VerificationResult,
    delete_model_server,
    find_model_servers,
    predict,
    start_model_server,
    stop_model_server,
    verify_predictions,
)

__all__ = [
    "ROLLBACK_RECORD",
    "ROLLOUT_RECORD",
    "DeleteResult",
    "RolloutRolledBack",
    "VerificationError",
    "VerificationResult",
    "delete_model_server",
    "deploy_model",
    "evaluate_gate",
    "find_model_servers",
    "follow_rollout",
    "predict",
    "rollback_model",
    "start_model_server",
    "start_rollout",
    "stop_model_server",
    "verify_predictions",
]
