"""Credential blocks: a Kubernetes cluster and the object stores a model server reads from.

Blocks only hold configuration. Secrets are `SecretStr`/`SecretDict`, so the Prefect API,
the UI, a block's `repr` and the run logs show them masked; `to_settings()` reveals them
only to hand them to the core deployer, which keeps them secret in turn.
"""

from __future__ import annotations

from abc import ABC
from pathlib import Path
from typing import Any, ClassVar, Literal

from modeldeploy.settings import as_mapping
from prefect.blocks.core import Block
from prefect.types import SecretDict
from pydantic import ConfigDict, Field, SecretStr, field_validator, model_validator

from prefect_modeldeploy._meta import docs


def _reveal(value: Any) -> Any:
    if isinstance(value, SecretStr | SecretDict):
        return value.get_secret_value()
    return value


def _parse_mapping(value: Any, what: str) -> Any:
    """Accept a mapping, or its YAML/JSON text (what people paste into the UI)."""
    if isinstance(value, SecretDict):
        value = value.get_secret_value()
    if isinstance(value, bytes):
        value = value.decode()
    return as_mapping(value, what, secret=True)


class KubernetesCredentials(Block):
    """How to reach a Kubernetes cluster: a kubeconfig (kept secret) or a kubeconfig file,
    an optional context, or the in-cluster service account, and a default namespace.

    Used by the deployer blocks of flavors that run on Kubernetes (folded into their
    settings). With nothing set, the Kubernetes
    client's own defaults apply (in-cluster, then `~/.kube/config`).
    """

    model_config = ConfigDict(hide_input_in_errors=True)

    _block_type_name = "modeldeploy Kubernetes Credentials"
    _block_type_slug = "modeldeploy-kubernetes-credentials"
    _documentation_url = docs("kubernetes-credentials")
    _description = (
        "Access to a Kubernetes cluster for modeldeploy's Kubernetes flavors: a "
        "kubeconfig kept as a secret, or a kubeconfig file, a context, or the in-cluster "
        "service account, and the default namespace."
    )
    _code_example = """
    Load saved credentials and use them in a deployer block of a Kubernetes flavor:
    ```python
    from prefect_modeldeploy.blocks import KubernetesCredentials, deployer_block

    kubernetes_credentials = KubernetesCredentials.load("BLOCK_NAME")
    block = deployer_block("<flavor>")(kubernetes_credentials=kubernetes_credentials)
    ```

    Create them from a kubeconfig file:
    ```python
    from prefect_modeldeploy.blocks import KubernetesCredentials

    KubernetesCredentials.from_file("~/.kube/config", context="prod").save("prod-cluster")
    ```
    """

    kubeconfig: SecretDict | None = Field(
        default=None,
        title="Kubeconfig",
        description=(
            "Contents of a kubeconfig file as a mapping (paste YAML or JSON); stored "
            "encrypted and never shown."
        ),
    )
    kubeconfig_path: str | None = Field(
        default=None,
        title="Kubeconfig path",
        description=(
            "Path of a kubeconfig file on the machine that runs the flow; used when no "
            "kubeconfig is given."
        ),
    )
    context: str | None = Field(
        default=None,
        title="Context",
        description="Kubeconfig context to use; the kubeconfig's current context if empty.",
    )
    in_cluster: bool = Field(
        default=False,
        title="In cluster",
        description=(
            "Use the service account of the pod the flow runs in instead of a kubeconfig."
        ),
    )
    namespace: str | None = Field(
        default=None,
        title="Namespace",
        description=(
            "Namespace where model servers are created and looked up. Empty: the namespace "
            "of the kubeconfig context (as kubectl does), else `default`."
        ),
    )

    @field_validator("kubeconfig", mode="before")
    @classmethod
    def _parse_kubeconfig(cls, value: Any) -> Any:
        if value is None or value == "" or value == {}:
            return None
        return _parse_mapping(value, "kubeconfig")

    @model_validator(mode="after")
    def _one_source(self) -> KubernetesCredentials:
        if self.in_cluster and (self.kubeconfig is not None or self.kubeconfig_path):
            raise ValueError(
                "choose one way to reach the cluster: in_cluster, or a kubeconfig "
                "(kubeconfig or kubeconfig_path), not both"
            )
        return self

    @classmethod
    def from_file(
        cls, path: str | Path = "~/.kube/config", context: str | None = None, **kwargs: Any
    ) -> KubernetesCredentials:
        """Read a kubeconfig file into the (secret) `kubeconfig` field."""
        text = Path(path).expanduser().read_text()
        return cls(kubeconfig=text, context=context, **kwargs)

    def to_settings(self) -> dict[str, Any]:
        """The Kubernetes part of a deployer's settings, secrets revealed."""
        settings: dict[str, Any] = {"in_cluster": self.in_cluster}
        if self.namespace:
            settings["namespace"] = self.namespace
        if self.kubeconfig is not None:
            settings["kubeconfig"] = self.kubeconfig.get_secret_value()
        if self.kubeconfig_path:
            settings["kubeconfig_path"] = self.kubeconfig_path
        if self.context:
            settings["context"] = self.context
        return settings


class StorageCredentials(Block, ABC):
    """Base of the object-store credential blocks (not registered itself).

    Each block maps its fields onto `modeldeploy.flavors.kubernetes.credentials` and is validated
    by that model, so a block the engine would refuse cannot be saved.
    """

    # Validation errors must not quote the input: it holds secrets.
    model_config = ConfigDict(hide_input_in_errors=True)

    provider_type: ClassVar[Literal["s3", "gcs", "azure"]]
    #: block field -> field of the core credentials model
    core_fields: ClassVar[dict[str, str]]

    def to_settings(self) -> dict[str, Any]:
        """The `storage_credentials` setting of a Kubernetes flavor, secrets revealed."""
        settings: dict[str, Any] = {"type": self.provider_type}
        for name, core_name in self.core_fields.items():
            value = _reveal(getattr(self, name))
            if isinstance(value, dict):
                import json

                value = json.dumps(value)
            if value is not None:
                settings[core_name] = value
        return settings

    @model_validator(mode="after")
    def _valid_for_core(self) -> StorageCredentials:
        from modeldeploy.flavors.kubernetes.credentials import StorageCredentials as CoreCredentials
        from pydantic import TypeAdapter, ValidationError

        try:
            TypeAdapter(CoreCredentials).validate_python(self.to_settings())
        except ValidationError as exc:
            # Only the messages: pydantic's own text would quote the (secret) input.
            names = {v: k for k, v in self.core_fields.items()}
            problems = []
            for error in exc.errors(include_input=False, include_url=False):
                fields = [names[str(p)] for p in error["loc"] if str(p) in names]
                message = error["msg"].removeprefix("Value error, ")
                problems.append(f"{fields[-1]}: {message}" if fields else message)
            raise ValueError("; ".join(problems)) from None
        return self


class S3StorageCredentials(StorageCredentials):
    """Credentials for model files in Amazon S3 or an S3-compatible store (MinIO, Ceph...).

    The deployer turns them into the Kubernetes Secret that the model server's storage
    initializer reads.
    """

    provider_type: ClassVar[Literal["s3"]] = "s3"
    core_fields: ClassVar[dict[str, str]] = {
        "aws_access_key_id": "access_key_id",
        "aws_secret_access_key": "secret_access_key",
        "endpoint_url": "endpoint",
        "region_name": "region",
        "verify_ssl": "verify_ssl",
        "provider": "provider",
    }

    _block_type_name = "modeldeploy S3 Storage Credentials"
    _block_type_slug = "modeldeploy-s3-storage-credentials"
    _documentation_url = docs("storage-credentials")
    _description = (
        "An access key for model files in Amazon S3 or an S3-compatible store (MinIO, "
        "Ceph...), handed to the model server's storage initializer as a Kubernetes Secret."
    )
    _code_example = """
    ```python
    from prefect_modeldeploy.blocks import S3StorageCredentials

    s3_credentials = S3StorageCredentials.load("BLOCK_NAME")
    ```
    """

    aws_access_key_id: SecretStr = Field(
        default=...,
        title="AWS access key ID",
        description="Access key ID; stored encrypted.",
    )
    aws_secret_access_key: SecretStr = Field(
        default=...,
        title="AWS secret access key",
        description="Secret access key belonging to the access key ID; stored encrypted.",
    )
    region_name: str | None = Field(
        default=None,
        title="Region",
        description="Region of the bucket, e.g. eu-west-1.",
    )
    endpoint_url: str | None = Field(
        default=None,
        title="Endpoint URL",
        description="Endpoint of an S3-compatible store, e.g. http://minio.minio:9000; empty "
        "for AWS.",
    )
    verify_ssl: bool = Field(
        default=True,
        title="Verify SSL",
        description="Verify the endpoint's TLS certificate.",
    )
    provider: str | None = Field(
        default=None,
        title="rclone provider",
        description="S3 provider for rclone-based storage initializers (AWS, Minio, Ceph...); "
        "guessed from the endpoint if empty.",
    )


class GCSStorageCredentials(StorageCredentials):
    """A Google Cloud service-account key for model files in Google Cloud Storage."""

    provider_type: ClassVar[Literal["gcs"]] = "gcs"
    core_fields: ClassVar[dict[str, str]] = {"service_account_info": "service_account_json"}

    _block_type_name = "modeldeploy GCS Storage Credentials"
    _block_type_slug = "modeldeploy-gcs-storage-credentials"
    _documentation_url = docs("storage-credentials")
    _description = (
        "A Google Cloud service-account key for model files in Google Cloud Storage, "
        "handed to the model server's storage initializer as a Kubernetes Secret."
    )
    _code_example = """
    ```python
    from prefect_modeldeploy.blocks import GCSStorageCredentials

    gcs_credentials = GCSStorageCredentials.load("BLOCK_NAME")
    ```
    """

    service_account_info: SecretDict = Field(
        default=...,
        title="Service account key",
        description="The service account's JSON key file contents; stored encrypted.",
    )

    @field_validator("service_account_info", mode="before")
    @classmethod
    def _parse_key(cls, value: Any) -> Any:
        return _parse_mapping(value, "service_account_info")


class AzureStorageCredentials(StorageCredentials):
    """Credentials for model files in Azure Blob Storage: an account key or a service
    principal."""

    provider_type: ClassVar[Literal["azure"]] = "azure"
    core_fields: ClassVar[dict[str, str]] = {
        "storage_account_name": "account_name",
        "storage_account_key": "account_key",
        "tenant_id": "tenant_id",
        "client_id": "client_id",
        "client_secret": "client_secret",
        "subscription_id": "subscription_id",
    }

    _block_type_name = "modeldeploy Azure Storage Credentials"
    _block_type_slug = "modeldeploy-azure-storage-credentials"
    _documentation_url = docs("storage-credentials")
    _description = (
        "Credentials for model files in Azure Blob Storage (an account key or a service "
        "principal), handed to the model server's storage initializer as a Kubernetes Secret."
    )
    _code_example = """
    ```python
    from prefect_modeldeploy.blocks import AzureStorageCredentials

    azure_credentials = AzureStorageCredentials.load("BLOCK_NAME")
    ```
    """

    storage_account_name: str | None = Field(
        default=None,
        title="Storage account name",
        description="Name of the storage account holding the models (needed with a key).",
    )
    storage_account_key: SecretStr | None = Field(
        default=None,
        title="Storage account key",
        description="Access key of the storage account; stored encrypted.",
    )
    tenant_id: str | None = Field(
        default=None,
        title="Tenant ID",
        description="Azure AD tenant of the service principal.",
    )
    client_id: str | None = Field(
        default=None,
        title="Client ID",
        description="Application (client) ID of the service principal.",
    )
    client_secret: SecretStr | None = Field(
        default=None,
        title="Client secret",
        description="Secret of the service principal; stored encrypted.",
    )
    subscription_id: str | None = Field(
        default=None,
        title="Subscription ID",
        description="Subscription of the storage account (service principal only).",
    )
