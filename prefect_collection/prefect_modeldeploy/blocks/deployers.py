"""Deployer blocks: one per flavor. Each holds its flavor's settings and hands out a core
deployer and the model registry; the rollout itself lives in `core`.
"""

from __future__ import annotations

import contextlib
import os
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar

from prefect.blocks.core import Block
from pydantic import ConfigDict, Field

from prefect_modeldeploy._meta import docs
from prefect_modeldeploy.blocks.credentials import (
    AzureStorageCredentials,
    GCSStorageCredentials,
    KubernetesCredentials,
    S3StorageCredentials,
)

if TYPE_CHECKING:
    from modeldeploy.deployer import ModelDeployer
    from modeldeploy.registry import ModelRegistry

_TRACKING_URI_DESCRIPTION = (
    "MLflow tracking and model-registry URI where candidates are registered and the "
    "`champion` alias moves; env MLFLOW_TRACKING_URI, else SQLite under the modeldeploy "
    "home, if empty. Keep passwords out of it (use MLflow's environment variables)."
)


class ModelDeployerBlock(Block, ABC):
    """Base of the deployer blocks: configuration in, a core deployer out."""

    # Validation errors must not quote the input: nested credentials hold secrets.
    model_config = ConfigDict(hide_input_in_errors=True)

    flavor: ClassVar[str]

    @abstractmethod
    def deployer_settings(self) -> dict[str, Any]:
        """Settings of the flavor's core deployer, secrets revealed (never log them)."""

    def get_deployer(self) -> ModelDeployer:
        """A core `ModelDeployer` of this block's flavor, configured from the block."""
        from modeldeploy.flavors import create_deployer

        return create_deployer(self.flavor, self.deployer_settings())

    @contextlib.contextmanager
    def deployer(self) -> Iterator[ModelDeployer]:
        """`get_deployer()` for one piece of work: its connections are closed afterwards."""
        with self.get_deployer() as deployer:
            yield deployer

    def registry_tracking_uri(self) -> str | None:
        return getattr(self, "tracking_uri", None) or os.environ.get("MLFLOW_TRACKING_URI")

    def get_registry(self) -> ModelRegistry:
        """The MLflow Model Registry that records candidates and the champion."""
        from modeldeploy.registry import ModelRegistry

        return ModelRegistry(self.registry_tracking_uri())


class MLflowDeployer(ModelDeployerBlock):
    """Serves models with MLflow's own scoring server as local daemons (the embedded
    default: no cluster needed). State lives in a directory, one folder per server.
    """

    flavor: ClassVar[str] = "mlflow"

    _block_type_name = "modeldeploy MLflow Deployer"
    _block_type_slug = "modeldeploy-mlflow-deployer"
    _documentation_url = docs("mlflow-deployer")
    _description = (
        "Continuous deployment of models to local MLflow scoring servers (modeldeploy's "
        "embedded default): where their state lives and which MLflow tracking server and "
        "model registry to use."
    )
    _code_example = """
    ```python
    from prefect_modeldeploy.blocks import MLflowDeployer

    mlflow_deployer = MLflowDeployer.load("BLOCK_NAME")
    deployer = mlflow_deployer.get_deployer()      # a core ModelDeployer
    servers = deployer.find_model_server(running=True)
    ```
    """

    home: str | None = Field(
        default=None,
        title="State directory",
        description=(
            "Directory holding one folder per model server (config, pid, log); env "
            "MODELDEPLOY_HOME, else ~/.modeldeploy, if empty."
        ),
    )
    tracking_uri: str | None = Field(
        default=None, title="MLflow tracking URI", description=_TRACKING_URI_DESCRIPTION
    )

    def deployer_settings(self) -> dict[str, Any]:
        settings: dict[str, Any] = {}
        if self.home:
            settings["home"] = self.home
        if self.tracking_uri:
            settings["tracking_uri"] = self.tracking_uri
        return settings

    def registry_tracking_uri(self) -> str | None:
        # The store the flavor itself resolves models from (tracking_uri, env, or SQLite
        # under the state directory), so candidates and champions land beside the servers.
        return self.get_deployer().tracking_uri  # type: ignore[attr-defined]


class KubernetesDeployerBlock(ModelDeployerBlock, ABC):
    """Fields shared by the Seldon and KServe deployer blocks."""

    kubernetes_credentials: KubernetesCredentials | None = Field(
        default=None,
        title="Kubernetes credentials",
        description=(
            "How to reach the cluster; the Kubernetes client's defaults (in-cluster, then "
            "~/.kube/config) if empty."
        ),
    )
    namespace: str | None = Field(
        default=None,
        title="Namespace",
        description="Namespace of the model servers; overrides the credentials' namespace.",
    )
    ingress_base_url: str | None = Field(
        default=None,
        title="Ingress base URL",
        description=(
            "Base URL of the cluster's ingress (e.g. http://istio-ingress.example.com), from "
            "which prediction URLs are built."
        ),
    )
    storage_credentials: (
        S3StorageCredentials | GCSStorageCredentials | AzureStorageCredentials | None
    ) = Field(
        default=None,
        title="Storage credentials",
        description=(
            "Credentials the model server's storage initializer uses to download the model; "
            "stored in the cluster as a Kubernetes Secret."
        ),
    )
    secret_name: str | None = Field(
        default=None,
        title="Secret name",
        description=(
            "Name of the Kubernetes Secret holding the storage credentials; one is derived "
            "from the model server if empty."
        ),
    )
    tracking_uri: str | None = Field(
        default=None, title="MLflow tracking URI", description=_TRACKING_URI_DESCRIPTION
    )

    def deployer_settings(self) -> dict[str, Any]:
        settings: dict[str, Any] = (
            self.kubernetes_credentials.to_settings() if self.kubernetes_credentials else {}
        )
        if self.namespace:
            settings["namespace"] = self.namespace
        if self.ingress_base_url:
            settings["ingress_base_url"] = self.ingress_base_url
        if self.storage_credentials is not None:
            settings["storage_credentials"] = self.storage_credentials.to_settings()
        if self.secret_name:
            settings["secret_name"] = self.secret_name
        return settings


class SeldonDeployer(KubernetesDeployerBlock):
    """Serves models as Seldon Core `SeldonDeployment`s (machinelearning.seldon.io/v1)."""

    flavor: ClassVar[str] = "seldon"

    _block_type_name = "modeldeploy Seldon Deployer"
    _block_type_slug = "modeldeploy-seldon-deployer"
    _documentation_url = docs("seldon-and-kserve-deployers")
    _description = (
        "Continuous deployment of models to Seldon Core on Kubernetes (SeldonDeployment): "
        "the cluster, namespace, ingress and storage credentials to use."
    )
    _code_example = """
    ```python
    from prefect_modeldeploy.blocks import SeldonDeployer

    seldon_deployer = SeldonDeployer.load("BLOCK_NAME")
    deployer = seldon_deployer.get_deployer()      # a core ModelDeployer
    ```
    """


class KServeDeployer(KubernetesDeployerBlock):
    """Serves models as KServe `InferenceService`s (serving.kserve.io/v1beta1)."""

    flavor: ClassVar[str] = "kserve"

    _block_type_name = "modeldeploy KServe Deployer"
    _block_type_slug = "modeldeploy-kserve-deployer"
    _documentation_url = docs("seldon-and-kserve-deployers")
    _description = (
        "Continuous deployment of models to KServe on Kubernetes (InferenceService): the "
        "cluster, namespace, ingress and storage credentials to use."
    )
    _code_example = """
    ```python
    from prefect_modeldeploy.blocks import KServeDeployer

    kserve_deployer = KServeDeployer.load("BLOCK_NAME")
    deployer = kserve_deployer.get_deployer()      # a core ModelDeployer
    ```
    """
