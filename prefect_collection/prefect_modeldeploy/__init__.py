"""modeldeploy's Prefect collection: continuous deployment of ML models from Prefect flows.

Blocks hold configuration (a deployer block per installed flavor, generated from its
settings model; Kubernetes and object-store credentials)
and hand out the `core` engine's deployer; tasks wrap one engine call each. Declared to
Prefect through the `prefect.collections` entry point; register the block types with
`prefect block register -m prefect_modeldeploy`.

Importing this package stays cheap (Prefect imports it whenever it loads collections):
mlflow, scikit-learn and kubernetes load only when a task runs.
"""

from prefect_modeldeploy.approval import ApprovalInput, approve_held_rollout, request_approval
from prefect_modeldeploy.blocks import (
    BLOCK_TYPES,
    DEPLOYER_BLOCKS,
    AzureStorageCredentials,
    GCSStorageCredentials,
    KubernetesCredentials,
    ModelDeployerBlock,
    S3StorageCredentials,
)
from prefect_modeldeploy.flows import continuous_deployment
from prefect_modeldeploy.tasks import (
    delete_model_server,
    deploy_model,
    evaluate_gate,
    find_model_servers,
    predict,
    rollback_model,
    start_model_server,
    stop_model_server,
    verify_predictions,
)

globals().update(DEPLOYER_BLOCKS)  # MLflowDeployer, ... one per installed flavor

__all__ = [  # the deployer blocks are generated: see DEPLOYER_BLOCKS
    "BLOCK_TYPES",
    "DEPLOYER_BLOCKS",
    "ApprovalInput",
    "AzureStorageCredentials",
    "GCSStorageCredentials",
    "KubernetesCredentials",
    "ModelDeployerBlock",
    "S3StorageCredentials",
    "approve_held_rollout",
    "continuous_deployment",
    "delete_model_server",
    "deploy_model",
    "evaluate_gate",
    "find_model_servers",
    "predict",
    "request_approval",
    "rollback_model",
    "start_model_server",
    "stop_model_server",
    "verify_predictions",
    *DEPLOYER_BLOCKS,
]
