"""The storage Secret Seldon Core 2 reads: one key holding one rclone remote definition.

A Model's `spec.secretName` names a Secret with exactly one data key whose value is an
rclone remote in rclone's `config create` form, `{"type", "name", "parameters"}`, and the
remote's name must be the prefix of the model's `storageUri` (seldon-core
docs/source/contents/kubernetes/storage-secrets/index.md, "Configuration Format" and
"Kubernetes Secrets"). This is not Seldon Core 1's `RCLONE_CONFIG_*` environment layout.
"""

from __future__ import annotations

import json

from modeldeploy.flavors.kubernetes.credentials import (
    AzureCredentials,
    GCSCredentials,
    S3Credentials,
    StorageCredentials,
)
from modeldeploy.flavors.kubernetes.secrets import SecretData, SecretLayout

# What Seldon Core 2 can fetch as `<remote>:` with the remotes this flavor writes; `gs` is
# also preloaded by Seldon for public buckets (Secret `seldon-rclone-gs-public`).
URI_SCHEMES = ("s3", "gs", "az")
#: the one remote name (= storageUri prefix) written for each kind of credentials
REMOTE = {"s3": "s3", "gcs": "gs", "azure": "az"}


def _remote(creds: StorageCredentials) -> dict[str, object]:
    """rclone `config create` parameters of the remote."""
    params: dict[str, str | bool]
    if isinstance(creds, S3Credentials):
        params = {
            "provider": creds.provider or ("AWS" if creds.endpoint is None else "Minio"),
            "env_auth": False,
            "access_key_id": creds.access_key_id.get_secret_value(),
            "secret_access_key": creds.secret_access_key.get_secret_value(),
        }
        if creds.endpoint:
            params["endpoint"] = creds.endpoint
        if creds.region:
            params["region"] = creds.region
        kind = "s3"
    elif isinstance(creds, GCSCredentials):
        params = {
            "anonymous": False,
            "service_account_credentials": creds.service_account_json.get_secret_value(),
        }
        kind = "gcs"
    else:
        assert isinstance(creds, AzureCredentials)
        params = {}
        if creds.account_name:
            params["account"] = creds.account_name
        if creds.account_key is not None:
            params["key"] = creds.account_key.get_secret_value()
        if creds.client_secret is not None:
            params["client_id"] = creds.client_id or ""
            params["client_secret"] = creds.client_secret.get_secret_value()
            params["tenant"] = creds.tenant_id or ""
        kind = "azureblob"
    return {"type": kind, "name": REMOTE[creds.type], "parameters": params}


def rclone_config(creds: StorageCredentials) -> SecretData:
    remote = _remote(creds)
    return {str(remote["name"]): json.dumps(remote, sort_keys=True)}, {}


LAYOUT = SecretLayout(build=rclone_config)
