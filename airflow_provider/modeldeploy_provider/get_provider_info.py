"""Provider metadata for Airflow's `apache_airflow_provider` entry point.

Connection forms are declared here (`conn-fields`, `ui-field-behaviour`), the Airflow 3.2+
way: the API server builds the form from this dict without importing any hook.
"""

from __future__ import annotations

from typing import Any

INTEGRATION = "modeldeploy"
_HOOKS = "modeldeploy_provider.hooks.modeldeploy"


def _text(label: str, description: str, default: str | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": ["string", "null"]}
    if default is not None:
        schema["default"] = default
    return {"label": label, "description": description, "schema": schema}


def _secret(label: str, description: str) -> dict[str, Any]:
    return {
        "label": label,
        "description": description,
        "schema": {"type": ["string", "null"], "format": "password"},
    }


_TRACKING_URI = _text(
    "MLflow tracking URI",
    "Tracking server and model registry (candidates, champion alias, rollback). Empty: "
    "$MLFLOW_TRACKING_URI, else SQLite under the state directory of the worker.",
)


def _kubernetes_fields() -> dict[str, Any]:
    return {
        "namespace": _text("Namespace", "Namespace of the model servers.", "default"),
        "context": _text("Kubeconfig context", "Context to use; empty: the current context."),
        "kubeconfig_path": _text(
            "Kubeconfig path", "Path of a kubeconfig file on the workers and the triggerer."
        ),
        "kubeconfig_secret": _secret(
            "Kubeconfig (YAML or JSON)",
            "The whole kubeconfig as text; takes precedence over the path. Kept secret.",
        ),
        "in_cluster": {
            "label": "In cluster",
            "description": "Use the service account of the pod Airflow runs in.",
            "schema": {"type": ["boolean", "null"], "default": False},
        },
        "ingress_base_url": _text(
            "Ingress base URL",
            "Base URL of the cluster's ingress gateway, used to build prediction URLs "
            "(e.g. http://istio-ingressgateway.example.com).",
        ),
        "secret_name": _text(
            "Storage secret name",
            "Name of the Kubernetes Secret that holds the storage credentials below.",
        ),
        "storage_type": {
            "label": "Model storage",
            "description": "Where the model files live, to build the storage credentials "
            "(S3 key pair: the login and password fields above).",
            "schema": {"type": ["string", "null"], "enum": ["s3", "gcs", "azure"]},
        },
        "s3_endpoint": _text("S3 endpoint URL", "For MinIO or other S3-compatible stores."),
        "s3_region": _text("S3 region", "Region of the bucket."),
        "s3_verify_ssl": {
            "label": "S3 verify TLS",
            "description": "Verify the endpoint's certificate.",
            "schema": {"type": ["boolean", "null"], "default": True},
        },
        "gcs_service_account_json": _secret(
            "GCS service-account key (JSON)", "Content of the service-account key file."
        ),
        "azure_account_name": _text("Azure storage account", "Name of the storage account."),
        "azure_storage_access_key": _secret(
            "Azure storage account key", "Account key (or use a service principal below)."
        ),
        "azure_client_id": _text("Azure client ID", "Service principal client ID."),
        "azure_tenant_id": _text("Azure tenant ID", "Service principal tenant ID."),
        "azure_client_secret": _secret("Azure client secret", "Service principal secret."),
        "azure_subscription_id": _text("Azure subscription ID", "Optional."),
        "tracking_uri": _TRACKING_URI,
    }


_KUBERNETES_BEHAVIOUR = {
    "hidden-fields": ["host", "schema", "port", "extra"],
    "relabeling": {"login": "S3 access key ID", "password": "S3 secret access key"},
    "placeholders": {
        "login": "AKIA... (only for models on S3)",
        "password": "secret access key",
        "namespace": "default",
        "ingress_base_url": "http://istio-ingressgateway.istio-system",
        "kubeconfig_path": "~/.kube/config",
    },
}


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "modeldeploy",
        "name": "modeldeploy",
        "description": "Continuous deployment of ML models to a local MLflow scoring server, "
        "Seldon Core or KServe: train, gate on metrics, roll out in place, roll back.",
        "integrations": [
            {
                "integration-name": INTEGRATION,
                "external-doc-url": "https://github.com/modeldeploy/modeldeploy",
                "tags": ["software"],
            }
        ],
        "hooks": [{"integration-name": INTEGRATION, "python-modules": [_HOOKS]}],
        "operators": [
            {
                "integration-name": INTEGRATION,
                "python-modules": ["modeldeploy_provider.operators.modeldeploy"],
            }
        ],
        "sensors": [
            {
                "integration-name": INTEGRATION,
                "python-modules": ["modeldeploy_provider.sensors.modeldeploy"],
            }
        ],
        "triggers": [
            {
                "integration-name": INTEGRATION,
                "python-modules": ["modeldeploy_provider.triggers.modeldeploy"],
            }
        ],
        "extra-links": ["modeldeploy_provider.links.modeldeploy.PredictionUrlLink"],
        "connection-types": [
            {
                "connection-type": "modeldeploy_mlflow",
                "hook-class-name": f"{_HOOKS}.MLflowDeployHook",
                "hook-name": "modeldeploy: local MLflow server",
                "conn-fields": {
                    "tracking_uri": _TRACKING_URI,
                    "home": _text(
                        "State directory",
                        "Where the local model servers keep their config, pid and log. "
                        "Empty: $MODELDEPLOY_HOME, else ~/.modeldeploy.",
                    ),
                },
                "ui-field-behaviour": {
                    "hidden-fields": ["host", "schema", "login", "password", "port", "extra"],
                    "relabeling": {},
                    "placeholders": {
                        "tracking_uri": "sqlite:////var/lib/modeldeploy/mlflow.db",
                        "home": "~/.modeldeploy",
                    },
                },
            },
            {
                "connection-type": "modeldeploy_seldon",
                "hook-class-name": f"{_HOOKS}.SeldonDeployHook",
                "hook-name": "modeldeploy: Seldon Core",
                "conn-fields": _kubernetes_fields(),
                "ui-field-behaviour": _KUBERNETES_BEHAVIOUR,
            },
            {
                "connection-type": "modeldeploy_kserve",
                "hook-class-name": f"{_HOOKS}.KServeDeployHook",
                "hook-name": "modeldeploy: KServe",
                "conn-fields": _kubernetes_fields(),
                "ui-field-behaviour": _KUBERNETES_BEHAVIOUR,
            },
        ],
    }
