"""The Secret Seldon Core 1's rclone storage initializer reads: `RCLONE_CONFIG_*` variables.

The initializer runs `rclone copy <modelUri> /mnt/models` with the Secret named in the
graph's `envSecretRefName` as its environment (seldon-core@v1.17.1
operator/controllers/model_initializer_injector.go:219-228, 265-285). rclone reads the URI's
scheme as the name of a remote and configures remote `<NAME>` from
`RCLONE_CONFIG_<NAME>_<OPTION>` variables, so each variable set is written under every
scheme the credentials accept: `gs://` needs `RCLONE_CONFIG_GS_*`, `gcs://` needs
`RCLONE_CONFIG_GCS_*`. Schemes no remote is configured for (http, https) are refused
before anything is written (`URI_SCHEMES`).
"""

from __future__ import annotations

from modeldeploy.flavors.kubernetes.credentials import (
    AzureCredentials,
    GCSCredentials,
    S3Credentials,
    StorageCredentials,
)
from modeldeploy.flavors.kubernetes.secrets import SecretData, SecretLayout

# What rclone can fetch as `<remote>:` with the remotes this flavor configures, plus PVCs,
# which Seldon mounts instead of copying. The rclone image configures an anonymous `gs`
# remote itself (components/rclone-storage-initializer/Dockerfile), so public gs:// works
# without credentials.
URI_SCHEMES = ("s3", "gs", "gcs", "az", "pvc")
# Remote names written for each kind of credentials: every scheme the flavor accepts for it.
REMOTES = {"s3": ("S3",), "gcs": ("GS", "GCS"), "azure": ("AZ",)}


def _options(creds: StorageCredentials) -> dict[str, str]:
    """rclone backend options (without the RCLONE_CONFIG_<REMOTE>_ prefix)."""
    if isinstance(creds, S3Credentials):
        options = {
            "TYPE": "s3",
            "PROVIDER": creds.provider or ("AWS" if creds.endpoint is None else "Minio"),
            "ENV_AUTH": "false",
            "ACCESS_KEY_ID": creds.access_key_id.get_secret_value(),
            "SECRET_ACCESS_KEY": creds.secret_access_key.get_secret_value(),
        }
        if creds.endpoint:
            options["ENDPOINT"] = creds.endpoint
        if creds.region:
            options["REGION"] = creds.region
        return options
    if isinstance(creds, GCSCredentials):
        return {
            "TYPE": "google cloud storage",
            "ANONYMOUS": "false",
            "SERVICE_ACCOUNT_CREDENTIALS": creds.service_account_json.get_secret_value(),
        }
    assert isinstance(creds, AzureCredentials)
    options = {"TYPE": "azureblob"}
    if creds.account_name:
        options["ACCOUNT"] = creds.account_name
    if creds.account_key is not None:
        options["KEY"] = creds.account_key.get_secret_value()
    if creds.client_secret is not None:
        options["CLIENT_ID"] = creds.client_id or ""
        options["CLIENT_SECRET"] = creds.client_secret.get_secret_value()
        options["TENANT"] = creds.tenant_id or ""
    return options


def rclone_env(creds: StorageCredentials) -> SecretData:
    options = _options(creds)
    env = {
        f"RCLONE_CONFIG_{remote}_{key}": value
        for remote in REMOTES[creds.type]
        for key, value in options.items()
    }
    return env, {}


LAYOUT = SecretLayout(build=rclone_env)
