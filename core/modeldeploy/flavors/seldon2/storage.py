"""The storage Secret Seldon Core 2 reads: one key holding one rclone remote definition.

A Model's `spec.secretName` names a Secret with exactly one data key whose value is an
rclone remote in rclone's `config create` form, `{"type", "name", "parameters"}`, and the
remote's name must be the prefix of the model's `storageUri` (seldon-core
docs/source/contents/kubernetes/storage-secrets/index.md, "Configuration Format" and
"Kubernetes Secrets"). This is not Seldon Core 1's `RCLONE_CONFIG_*` environment layout.
"""

from __future__ import annotations

from modeldeploy.flavors.kubernetes.credentials import StorageCredentials
from modeldeploy.flavors.kubernetes.rclone import as_config, remote_for
from modeldeploy.flavors.kubernetes.secrets import SecretData, SecretLayout

# What Seldon Core 2 can fetch as `<remote>:` with the remotes this flavor writes; `gs` is
# also preloaded by Seldon for public buckets (Secret `seldon-rclone-gs-public`).
URI_SCHEMES = ("s3", "gs", "az")
#: the one remote name (= storageUri prefix) written for each kind of credentials
REMOTE = {"s3": "s3", "gcs": "gs", "azure": "az"}


def rclone_config(creds: StorageCredentials) -> SecretData:
    name = REMOTE[creds.type]
    return {name: as_config(remote_for(creds), name)}, {}


LAYOUT = SecretLayout(build=rclone_config)
