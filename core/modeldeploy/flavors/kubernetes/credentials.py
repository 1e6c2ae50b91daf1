"""Storage credentials (S3, GCS, Azure Blob) and the Secret layouts the platforms read.

Values are `SecretStr`, so they never show in repr, logs or exceptions; they are revealed
only when the Secret's data is built for the API request. The two platforms read
credentials differently:

- Seldon Core 1's rclone storage initializer reads `RCLONE_CONFIG_<REMOTE>_<OPTION>`
  environment variables from the Secret named in the graph's `envSecretRefName`; the remote
  is the model URI's scheme (`s3://` uses remote `s3`, `gs://` uses `gs`, `az://` uses `az`).
- KServe's credential builder follows the predictor's ServiceAccount to its Secrets and
  recognises S3 by `AWS_SECRET_ACCESS_KEY` (endpoint and TLS in the Secret's
  `serving.kserve.io/s3-*` annotations), GCS by `gcloud-application-credentials.json`, and
  Azure by the `AZURE_*` keys.
"""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

KSERVE_S3_ENDPOINT = "serving.kserve.io/s3-endpoint"
KSERVE_S3_USE_HTTPS = "serving.kserve.io/s3-usehttps"
KSERVE_S3_REGION = "serving.kserve.io/s3-region"
KSERVE_S3_VERIFY_SSL = "serving.kserve.io/s3-verifyssl"
KSERVE_GCS_CREDENTIAL_FILE = "gcloud-application-credentials.json"


class _Credentials(BaseModel):
    # Validation errors must not quote what was given: it may be a secret.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    def seldon_env(self) -> dict[str, str]:  # pragma: no cover - abstract
        raise NotImplementedError

    def kserve_secret(self) -> tuple[dict[str, str], dict[str, str]]:  # pragma: no cover
        """(string data, annotations) of the Secret KServe's credential builder reads."""
        raise NotImplementedError

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

    def seldon_env(self) -> dict[str, str]:
        provider = self.provider or ("AWS" if self.endpoint is None else "Minio")
        env = {
            "RCLONE_CONFIG_S3_TYPE": "s3",
            "RCLONE_CONFIG_S3_PROVIDER": provider,
            "RCLONE_CONFIG_S3_ENV_AUTH": "false",
            "RCLONE_CONFIG_S3_ACCESS_KEY_ID": self.access_key_id.get_secret_value(),
            "RCLONE_CONFIG_S3_SECRET_ACCESS_KEY": self.secret_access_key.get_secret_value(),
        }
        if self.endpoint:
            env["RCLONE_CONFIG_S3_ENDPOINT"] = self.endpoint
        if self.region:
            env["RCLONE_CONFIG_S3_REGION"] = self.region
        return env

    def kserve_secret(self) -> tuple[dict[str, str], dict[str, str]]:
        data = {
            "AWS_ACCESS_KEY_ID": self.access_key_id.get_secret_value(),
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key.get_secret_value(),
        }
        annotations: dict[str, str] = {}
        if self.endpoint:
            parsed = urlparse(self.endpoint)
            annotations[KSERVE_S3_ENDPOINT] = parsed.netloc
            annotations[KSERVE_S3_USE_HTTPS] = "1" if parsed.scheme == "https" else "0"
        if self.region:
            annotations[KSERVE_S3_REGION] = self.region
        annotations[KSERVE_S3_VERIFY_SSL] = "1" if self.verify_ssl else "0"
        return data, annotations


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

    def seldon_env(self) -> dict[str, str]:
        return {
            "RCLONE_CONFIG_GS_TYPE": "google cloud storage",
            "RCLONE_CONFIG_GS_ANONYMOUS": "false",
            "RCLONE_CONFIG_GS_SERVICE_ACCOUNT_CREDENTIALS": (
                self.service_account_json.get_secret_value()
            ),
        }

    def kserve_secret(self) -> tuple[dict[str, str], dict[str, str]]:
        return {KSERVE_GCS_CREDENTIAL_FILE: self.service_account_json.get_secret_value()}, {}


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

    def seldon_env(self) -> dict[str, str]:
        env = {"RCLONE_CONFIG_AZ_TYPE": "azureblob"}
        if self.account_name:
            env["RCLONE_CONFIG_AZ_ACCOUNT"] = self.account_name
        if self.account_key is not None:
            env["RCLONE_CONFIG_AZ_KEY"] = self.account_key.get_secret_value()
        if self.client_secret is not None:
            env["RCLONE_CONFIG_AZ_CLIENT_ID"] = self.client_id or ""
            env["RCLONE_CONFIG_AZ_CLIENT_SECRET"] = self.client_secret.get_secret_value()
            env["RCLONE_CONFIG_AZ_TENANT"] = self.tenant_id or ""
        return env

    def kserve_secret(self) -> tuple[dict[str, str], dict[str, str]]:
        data: dict[str, str] = {}
        if self.account_key is not None:
            data["AZURE_STORAGE_ACCESS_KEY"] = self.account_key.get_secret_value()
            if self.account_name:
                data["AZURE_ACCOUNT_NAME"] = self.account_name
        if self.client_secret is not None:
            data["AZURE_CLIENT_ID"] = self.client_id or ""
            data["AZURE_CLIENT_SECRET"] = self.client_secret.get_secret_value()
            data["AZURE_TENANT_ID"] = self.tenant_id or ""
            if self.subscription_id:
                data["AZURE_SUBSCRIPTION_ID"] = self.subscription_id
        return data, {}


StorageCredentials = Annotated[
    S3Credentials | GCSCredentials | AzureCredentials, Field(discriminator="type")
]
