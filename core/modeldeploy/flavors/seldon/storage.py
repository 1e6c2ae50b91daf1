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

from modeldeploy.flavors.kubernetes.credentials import StorageCredentials
from modeldeploy.flavors.kubernetes.rclone import as_env, remote_for
from modeldeploy.flavors.kubernetes.secrets import SecretData, SecretLayout

# What rclone can fetch as `<remote>:` with the remotes this flavor configures, plus PVCs,
# which Seldon mounts instead of copying. The rclone image configures an anonymous `gs`
# remote itself (components/rclone-storage-initializer/Dockerfile), so public gs:// works
# without credentials.
URI_SCHEMES = ("s3", "gs", "gcs", "az", "pvc")
# Remote names written for each kind of credentials: every scheme the flavor accepts for it.
REMOTES = {"s3": ("S3",), "gcs": ("GS", "GCS"), "azure": ("AZ",)}


def rclone_env(creds: StorageCredentials) -> SecretData:
    return as_env(remote_for(creds), REMOTES[creds.type]), {}


LAYOUT = SecretLayout(build=rclone_env)
