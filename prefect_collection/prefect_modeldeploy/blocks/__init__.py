"""Blocks of the modeldeploy collection: deployers per flavor and the credentials they use."""

from prefect_modeldeploy.blocks.credentials import (
    AzureStorageCredentials,
    GCSStorageCredentials,
    KubernetesCredentials,
    S3StorageCredentials,
    StorageCredentials,
)
from prefect_modeldeploy.blocks.deployers import (
    KServeDeployer,
    KubernetesDeployerBlock,
    MLflowDeployer,
    ModelDeployerBlock,
    SeldonDeployer,
)

#: Every block type the collection registers (`prefect block register -m prefect_modeldeploy`).
BLOCK_TYPES = (
    MLflowDeployer,
    SeldonDeployer,
    KServeDeployer,
    KubernetesCredentials,
    S3StorageCredentials,
    GCSStorageCredentials,
    AzureStorageCredentials,
)

__all__ = [
    "BLOCK_TYPES",
    "AzureStorageCredentials",
    "GCSStorageCredentials",
    "KServeDeployer",
    "KubernetesCredentials",
    "KubernetesDeployerBlock",
    "MLflowDeployer",
    "ModelDeployerBlock",
    "S3StorageCredentials",
    "SeldonDeployer",
    "StorageCredentials",
]
