"""Provider metadata for Airflow's `apache_airflow_provider` entry point.

Connection forms are declared here (`conn-fields`, `ui-field-behaviour`), the Airflow 3.2+
way: the API server builds the form from this dict without importing any hook. There is
one connection type per installed flavor, generated from its settings model
(`modeldeploy_provider.connection_types`).
"""

from __future__ import annotations

from typing import Any

from modeldeploy_provider.connection_types import connection_types

INTEGRATION = "modeldeploy"
_HOOKS = "modeldeploy_provider.hooks.modeldeploy"


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "modeldeploy",
        "name": "modeldeploy",
        "description": "Continuous deployment of ML models to any installed modeldeploy "
        "flavor: train, gate on metrics, roll out in place, roll back.",
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
                "python-modules": [
                    "modeldeploy_provider.operators.modeldeploy",
                    "modeldeploy_provider.operators.approval",
                ],
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
        "connection-types": connection_types(),
    }
