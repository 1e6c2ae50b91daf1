"""Settings keys of the Airflow connection form of modeldeploy 0.x, still accepted.

Connections saved with that form keep working: a kubeconfig under `kubeconfig_secret`,
storage credentials as flat fields (`storage_type`, `s3_*`, `gcs_*`, `azure_*`) with the S3
key pair in the connection's login and password. New connections use the settings' own
names (`kubeconfig`, `storage_credentials` as JSON), which the form now shows.
"""

from __future__ import annotations

from typing import Any

from modeldeploy.settings import as_bool

_S3 = {"s3_endpoint": "endpoint", "s3_region": "region"}
_GCS = {"gcs_service_account_json": "service_account_json"}
_AZURE = {
    "azure_account_name": "account_name",
    "azure_storage_access_key": "account_key",
    "azure_client_id": "client_id",
    "azure_client_secret": "client_secret",
    "azure_tenant_id": "tenant_id",
    "azure_subscription_id": "subscription_id",
}
_LEGACY = {"kubeconfig_secret", "storage_type", "login", "password", "s3_verify_ssl"}
_LEGACY |= set(_S3) | set(_GCS) | set(_AZURE)


def from_legacy_form(data: Any) -> Any:
    """Settings with the legacy keys folded into `kubeconfig` and `storage_credentials`."""
    if not isinstance(data, dict) or not _LEGACY & data.keys():
        return data
    data = {k: v for k, v in data.items() if not (k in _LEGACY and v in (None, ""))}
    if "kubeconfig_secret" in data:
        data.setdefault("kubeconfig", data.pop("kubeconfig_secret"))
    login, password = data.pop("login", None), data.pop("password", None)
    kind = data.pop("storage_type", None) or ("s3" if login or password else None)
    picked = {
        "s3": {
            **{core: data.get(key) for key, core in _S3.items()},
            "access_key_id": login,
            "secret_access_key": password,
        },
        "gcs": {core: data.get(key) for key, core in _GCS.items()},
        "azure": {core: data.get(key) for key, core in _AZURE.items()},
    }
    verify = data.pop("s3_verify_ssl", None)
    for key in (*_S3, *_GCS, *_AZURE):
        data.pop(key, None)
    if not kind or "storage_credentials" in data:
        return data
    if kind not in picked:
        raise ValueError(f"storage_type must be s3, gcs or azure, got {kind!r}")
    creds = {k: v for k, v in picked[kind].items() if v not in (None, "")}
    if kind == "s3" and verify is not None:
        creds["verify_ssl"] = as_bool(verify, "s3_verify_ssl")
    data["storage_credentials"] = {"type": kind, **creds}
    return data
