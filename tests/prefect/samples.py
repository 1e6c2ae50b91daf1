"""Block instances with recognisable secret values, for round-trip and leak tests."""

from __future__ import annotations

from typing import Any

KUBE_TOKEN = "kube-token-4f1d9c-must-stay-secret"
AWS_KEY_ID = "AKIA-PREFECT-TEST-KEY-ID"
AWS_SECRET = "aws-secret-9b2e77-must-stay-secret"
GCS_PRIVATE_KEY = "-----BEGIN PRIVATE KEY-----gcs-3c8a-must-stay-secret"
AZURE_KEY = "azure-account-key-71aa-must-stay-secret"
AZURE_CLIENT_SECRET = "azure-client-secret-5d0e-must-stay-secret"

SECRETS = (KUBE_TOKEN, AWS_KEY_ID, AWS_SECRET, GCS_PRIVATE_KEY, AZURE_KEY, AZURE_CLIENT_SECRET)


def kubeconfig(server: str = "http://127.0.0.1:6443", token: str = KUBE_TOKEN) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": server}}],
        "users": [{"name": "u", "user": {"token": token}}],
        "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "ctx",
    }


def kubernetes_credentials(**kwargs: Any) -> Any:
    from prefect_modeldeploy.blocks import KubernetesCredentials

    return KubernetesCredentials(
        **{"kubeconfig": kubeconfig(), "context": "ctx", "namespace": "models", **kwargs}
    )


def s3() -> Any:
    from prefect_modeldeploy.blocks import S3StorageCredentials

    return S3StorageCredentials(
        aws_access_key_id=AWS_KEY_ID,
        aws_secret_access_key=AWS_SECRET,
        endpoint_url="http://minio.minio:9000",
        region_name="us-east-1",
    )


def gcs() -> Any:
    from prefect_modeldeploy.blocks import GCSStorageCredentials

    return GCSStorageCredentials(
        service_account_info={
            "type": "service_account",
            "project_id": "p",
            "private_key": GCS_PRIVATE_KEY,
            "client_email": "sa@p.iam.gserviceaccount.com",
        }
    )


def azure_key() -> Any:
    from prefect_modeldeploy.blocks import AzureStorageCredentials

    return AzureStorageCredentials(storage_account_name="models", storage_account_key=AZURE_KEY)


def azure_principal() -> Any:
    from prefect_modeldeploy.blocks import AzureStorageCredentials

    return AzureStorageCredentials(
        tenant_id="tenant", client_id="client", client_secret=AZURE_CLIENT_SECRET
    )


def every_block() -> dict[str, Any]:
    """One instance of every block type, secrets filled in, nested blocks included."""
    from prefect_modeldeploy.blocks import KServeDeployer, MLflowDeployer, SeldonDeployer

    return {
        "mlflow": MLflowDeployer(home="/tmp/md-home", tracking_uri="sqlite:////tmp/md.db"),
        "seldon": SeldonDeployer(
            kubernetes_credentials=kubernetes_credentials(),
            ingress_base_url="http://ingress.example.com",
            storage_credentials=s3(),
            secret_name="iris-storage",
        ),
        "kserve": KServeDeployer(
            kubernetes_credentials=kubernetes_credentials(),
            namespace="kserve-models",
            storage_credentials=gcs(),
        ),
        "kubernetes": kubernetes_credentials(),
        "s3": s3(),
        "gcs": gcs(),
        "azure-key": azure_key(),
        "azure-principal": azure_principal(),
    }
