"""Storage credentials as one rclone remote, rendered the two ways Seldon's images read it.

Seldon Core 1's storage initializer configures rclone from `RCLONE_CONFIG_<REMOTE>_<OPTION>`
environment variables (`as_env`); Seldon Core 2's agent takes a remote in rclone's
`config create` JSON form (`as_config`). Both carry the same backend and options, mapped
here once. rclone looks a backend type up by its name or its prefix (rclone
fs/registry.go `Find`), so `gcs` stands for "google cloud storage" in either form.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from modeldeploy.flavors.kubernetes.credentials import (
    AzureCredentials,
    GCSCredentials,
    S3Credentials,
    StorageCredentials,
)


@dataclass(frozen=True)
class Remote:
    """An rclone remote: its backend type and options (rclone's lower-case option names)."""

    type: str
    options: dict[str, str | bool]


def remote_for(creds: StorageCredentials) -> Remote:
    """The rclone backend and options that fetch with these credentials."""
    options: dict[str, str | bool]
    if isinstance(creds, S3Credentials):
        options = {
            "provider": creds.provider or ("AWS" if creds.endpoint is None else "Minio"),
            "env_auth": False,
            "access_key_id": creds.access_key_id.get_secret_value(),
            "secret_access_key": creds.secret_access_key.get_secret_value(),
        }
        if creds.endpoint:
            options["endpoint"] = creds.endpoint
        if creds.region:
            options["region"] = creds.region
        return Remote("s3", options)
    if isinstance(creds, GCSCredentials):
        options = {
            "anonymous": False,
            "service_account_credentials": creds.service_account_json.get_secret_value(),
        }
        return Remote("gcs", options)
    assert isinstance(creds, AzureCredentials)
    options = {}
    if creds.account_name:
        options["account"] = creds.account_name
    if creds.account_key is not None:
        options["key"] = creds.account_key.get_secret_value()
    if creds.client_secret is not None:
        options["client_id"] = creds.client_id or ""
        options["client_secret"] = creds.client_secret.get_secret_value()
        options["tenant"] = creds.tenant_id or ""
    return Remote("azureblob", options)


def _env_value(value: str | bool) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else value


def as_env(remote: Remote, names: Iterable[str]) -> dict[str, str]:
    """`RCLONE_CONFIG_<NAME>_<OPTION>` variables defining the remote under each name."""
    options = {"type": remote.type, **remote.options}
    return {
        f"RCLONE_CONFIG_{name.upper()}_{key.upper()}": _env_value(value)
        for name in names
        for key, value in options.items()
    }


def as_config(remote: Remote, name: str) -> str:
    """The remote as rclone's `config create` JSON: `{"type", "name", "parameters"}`."""
    return json.dumps(
        {"type": remote.type, "name": name, "parameters": remote.options}, sort_keys=True
    )
