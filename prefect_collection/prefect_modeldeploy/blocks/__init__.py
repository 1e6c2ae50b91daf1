"""Blocks of the modeldeploy collection: a deployer block per installed flavor (generated
from its settings model, named `<Title>Deployer`, e.g. `MLflowDeployer`) and credential
blocks for Kubernetes clusters and object stores."""

from typing import Any

from prefect_modeldeploy.blocks.credentials import (
    AzureStorageCredentials,
    GCSStorageCredentials,
    KubernetesCredentials,
    S3StorageCredentials,
    StorageCredentials,
)
from prefect_modeldeploy.blocks.deployers import (
    DEPLOYER_BLOCKS,
    ModelDeployerBlock,
    deployer_block,
    deployer_blocks,
)

globals().update(DEPLOYER_BLOCKS)

#: Every block type the collection registers (`prefect block register -m prefect_modeldeploy`).
BLOCK_TYPES: tuple[type[Any], ...] = (
    *DEPLOYER_BLOCKS.values(),
    KubernetesCredentials,
    S3StorageCredentials,
    GCSStorageCredentials,
    AzureStorageCredentials,
)

__all__ = [  # the deployer blocks are generated: see DEPLOYER_BLOCKS
    "BLOCK_TYPES",
    "DEPLOYER_BLOCKS",
    "AzureStorageCredentials",
    "GCSStorageCredentials",
    "KubernetesCredentials",
    "ModelDeployerBlock",
    "S3StorageCredentials",
    "StorageCredentials",
    "deployer_block",
    "deployer_blocks",
    *DEPLOYER_BLOCKS,
]
