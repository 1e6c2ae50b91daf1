"""Storage credentials (S3, GCS, Azure Blob) as settings: what they are, not how a platform
reads them.

Values are `SecretStr`, so they never show in repr, logs or exceptions; they are revealed
only when a flavor builds its Secret's data for the API request. Each flavor owns that
layout (a `modeldeploy.flavors.kubernetes.secrets.SecretLayout`): Seldon Core's rclone
variables live in `modeldeploy.flavors.seldon.storage`, KServe's credential-builder keys in
`modeldeploy.flavors.kserve.storage`.
"""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator


class _Credentials(BaseModel):
    # Validation errors must not quote what was given: it may be a secret.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    @property
    def uri_schemes(self) -> tuple[str, ...]:  # pragma: no cover - abstract
        raise NotImplementedError


class S3Credentials(_Credentials):
    """An access key for AWS S3 or an S3-compatible store (MinIO, Ceph...)."""

    type: Literal["s3"] = "s3"
    access_key_id: SecretStr
    secret_access_key: SecretStr
    endpoint: str | None = Field(
        default=None,
        description="Endpoint URL with scheme, e.g. http://minio.minio:9000; default AWS.",
    )
    region: str | None = None
    verify_ssl: bool = True
    provider: str | None = Field(
        default=None, description="rclone S3 provider (AWS, Minio, Ceph...); guessed if unset."
    )

    @field_validator("endpoint")
    @classmethod
    def _check_endpoint(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip().rstrip("/")
        if "://" not in value:
            value = f"https://{value}"
        parsed = urlparse(value)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"endpoint {value!r} must look like https://host[:port]")
        return value

    @property
    def uri_schemes(self) -> tuple[str, ...]:
        return ("s3",)


class GCSCredentials(_Credentials):
    """A Google service-account key (the JSON file `gcloud iam service-accounts keys create`
    writes)."""

    type: Literal["gcs"] = "gcs"
    service_account_json: SecretStr

    @field_validator("service_account_json")
    @classmethod
    def _check_json(cls, value: SecretStr) -> SecretStr:
        import json

        try:
            parsed = json.loads(value.get_secret_value())
        except ValueError:
            raise ValueError("service_account_json is not valid JSON") from None
        if not isinstance(parsed, dict):
            raise ValueError("service_account_json must be a JSON object")
        return value

    @property
    def uri_schemes(self) -> tuple[str, ...]:
        return ("gs", "gcs")


class AzureCredentials(_Credentials):
    """Azure Blob Storage: an account key, or a service principal (client id/secret/tenant)."""

    type: Literal["azure"] = "azure"
    account_name: str | None = None
    account_key: SecretStr | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    tenant_id: str | None = None
    subscription_id: str | None = None

    @model_validator(mode="after")
    def _check_one_method(self) -> AzureCredentials:
        key = self.account_key is not None
        principal = self.client_secret is not None
        if key == principal:
            raise ValueError(
                "give either account_name + account_key, or client_id + client_secret + "
                "tenant_id (a service principal)"
            )
        if key and not self.account_name:
            raise ValueError("account_key needs account_name")
        if principal and not (self.client_id and self.tenant_id):
            raise ValueError("client_secret needs client_id and tenant_id")
        return self

    @property
    def uri_schemes(self) -> tuple[str, ...]:
        return ("az", "azure", "https")


StorageCredentials = Annotated[
    S3Credentials | GCSCredentials | AzureCredentials, Field(discriminator="type")
]
