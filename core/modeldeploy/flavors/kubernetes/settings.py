"""Where Kubernetes model servers live: cluster access, namespace, ingress and storage secret.

Every field can be given as a plain string or dict (CLI options, environment variables,
an Airflow connection's extras, a Prefect block), so the same model serves every skin.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from pydantic import ConfigDict, Field, field_validator, model_validator

from modeldeploy.deployer import DeployerSettings
from modeldeploy.flavors.kubernetes.credentials import StorageCredentials
from modeldeploy.flavors.kubernetes.legacy_form import from_legacy_form
from modeldeploy.flavors.kubernetes.naming import check_dns1123_label, check_secret_name
from modeldeploy.settings import SECRET_MARKER, as_mapping


class KubernetesDeployerSettings(DeployerSettings):
    """Cluster access (first that is set wins: `in_cluster`, `kubeconfig`, `kubeconfig_path`,
    then `$KUBECONFIG` / `~/.kube/config`, then the pod's service account) and placement."""

    # Validation errors must not quote what was given: kubeconfigs and credentials are secret.
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    kubeconfig_path: str | None = Field(default=None, description="Path of a kubeconfig file.")
    kubeconfig: dict[str, Any] | None = Field(
        default=None,
        repr=False,
        title="Kubeconfig (YAML or JSON)",
        description="A kubeconfig as a dict (or its YAML/JSON text); holds credentials. "
        "Takes precedence over the path.",
        json_schema_extra={SECRET_MARKER: True},
    )
    context: str | None = Field(
        default=None,
        title="Kubeconfig context",
        description="kubeconfig context to use; empty: the current context.",
    )
    in_cluster: bool = Field(
        default=False, description="Use the pod's service account (running inside the cluster)."
    )
    namespace: str | None = Field(
        default=None,
        description=(
            "Namespace of the model servers; default: the kubeconfig context's namespace "
            "(the pod's own namespace in the cluster), else `default`, as kubectl does."
        ),
    )
    ingress_base_url: str | None = Field(
        default=None,
        title="Ingress base URL",
        description="Base URL of the cluster's ingress gateway for predictions.",
    )
    storage_credentials: StorageCredentials | None = Field(
        default=None,
        repr=False,
        description="Credentials the storage initializer uses to fetch models, as JSON, e.g. "
        '{"type": "s3", "access_key_id": "...", "secret_access_key": "...", "endpoint": '
        '"http://minio:9000"}; type s3, gcs (service_account_json) or azure.',
        json_schema_extra={SECRET_MARKER: True},
    )
    secret_name: str | None = Field(
        default=None,
        title="Storage secret name",
        description=(
            "Secret with storage credentials. With storage_credentials it is written and "
            "managed by modeldeploy; without, an existing Secret is referenced as it is."
        ),
    )
    request_timeout: float = Field(
        default=30.0, gt=0, description="Seconds to wait for one API response."
    )
    max_retries: int = Field(
        default=8, ge=0, le=50, description="Retries of one API call on 429, 5xx or drops."
    )

    @model_validator(mode="before")
    @classmethod
    def _legacy_form(cls, data: Any) -> Any:
        return from_legacy_form(data)

    @field_validator("kubeconfig", mode="before")
    @classmethod
    def _parse_kubeconfig(cls, value: Any) -> Any:
        return as_mapping(value, "kubeconfig", secret=True) or None

    @field_validator("storage_credentials", mode="before")
    @classmethod
    def _parse_credentials(cls, value: Any) -> Any:
        return as_mapping(value, "storage_credentials", secret=True) or None

    @field_validator("kubeconfig_path", "context", "ingress_base_url", "secret_name", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        return value.strip() if isinstance(value, str) else value

    @field_validator("namespace")
    @classmethod
    def _check_namespace(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        try:
            return check_dns1123_label(value.strip(), "namespace")
        except ValueError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("secret_name")
    @classmethod
    def _check_secret(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return check_secret_name(value)
        except ValueError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("ingress_base_url")
    @classmethod
    def _check_ingress(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.rstrip("/")
        parsed = urlparse(value)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"ingress_base_url {value!r} must look like http(s)://host[:port]")
        return value
