"""The Secret KServe's credential builder reads, attached to a ServiceAccount.

The builder follows the predictor's ServiceAccount to its Secrets and recognises S3 by
`AWS_SECRET_ACCESS_KEY` (the keys the shipped `inferenceservice-config` names; endpoint and
TLS in `serving.kserve.io/s3-*` annotations), GCS by `gcloud-application-credentials.json`,
and Azure by the `AZURE_*` keys (kserve@v0.20.0 pkg/credentials/s3/s3_secret.go:30-109,
s3/utils.go:36-187, service_account_credentials.go:211-330, azure/azure_secret.go:24-106).
"""

from __future__ import annotations

from urllib.parse import urlparse

from modeldeploy.flavors.kubernetes.credentials import (
    AzureCredentials,
    GCSCredentials,
    S3Credentials,
    StorageCredentials,
)
from modeldeploy.flavors.kubernetes.secrets import SecretData, SecretLayout

S3_ENDPOINT = "serving.kserve.io/s3-endpoint"
S3_USE_HTTPS = "serving.kserve.io/s3-usehttps"
S3_REGION = "serving.kserve.io/s3-region"
S3_VERIFY_SSL = "serving.kserve.io/s3-verifyssl"
GCS_CREDENTIAL_FILE = "gcloud-application-credentials.json"


def kserve_secret(creds: StorageCredentials) -> SecretData:
    """(string data, annotations) of the Secret."""
    if isinstance(creds, S3Credentials):
        data = {
            "AWS_ACCESS_KEY_ID": creds.access_key_id.get_secret_value(),
            "AWS_SECRET_ACCESS_KEY": creds.secret_access_key.get_secret_value(),
        }
        annotations: dict[str, str] = {}
        if creds.endpoint:
            parsed = urlparse(creds.endpoint)
            annotations[S3_ENDPOINT] = parsed.netloc
            annotations[S3_USE_HTTPS] = "1" if parsed.scheme == "https" else "0"
        if creds.region:
            annotations[S3_REGION] = creds.region
        annotations[S3_VERIFY_SSL] = "1" if creds.verify_ssl else "0"
        return data, annotations
    if isinstance(creds, GCSCredentials):
        return {GCS_CREDENTIAL_FILE: creds.service_account_json.get_secret_value()}, {}
    assert isinstance(creds, AzureCredentials)
    data = {}
    if creds.account_key is not None:
        data["AZURE_STORAGE_ACCESS_KEY"] = creds.account_key.get_secret_value()
        if creds.account_name:
            data["AZURE_ACCOUNT_NAME"] = creds.account_name
    if creds.client_secret is not None:
        data["AZURE_CLIENT_ID"] = creds.client_id or ""
        data["AZURE_CLIENT_SECRET"] = creds.client_secret.get_secret_value()
        data["AZURE_TENANT_ID"] = creds.tenant_id or ""
        if creds.subscription_id:
            data["AZURE_SUBSCRIPTION_ID"] = creds.subscription_id
    return data, {}


LAYOUT = SecretLayout(build=kserve_secret, service_account=True)
