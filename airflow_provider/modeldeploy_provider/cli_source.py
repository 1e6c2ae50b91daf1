"""`modeldeploy --airflow-conn ID`: the CLI's deployer from an Airflow connection.

Published under the `modeldeploy.cli_sources` entry point. Uses the hook's own
`get_deployer()` and `get_registry()`, so the connection means what it means in a DAG.
Outside a task, Airflow reads connections from `AIRFLOW_CONN_<ID>` and the secrets backend.
"""

from __future__ import annotations

from modeldeploy.cli.sources import DeployerSource


def deployer_source(conn_id: str) -> DeployerSource:
    from airflow.sdk.exceptions import AirflowException
    from modeldeploy.errors import InvalidConfigError

    from modeldeploy_provider.hooks.modeldeploy import ModelDeployHook

    hook = ModelDeployHook(modeldeploy_conn_id=conn_id)
    try:
        deployer = hook.get_deployer()
    except AirflowException as exc:
        raise InvalidConfigError(f"Airflow connection {conn_id!r}: {exc}") from None
    return DeployerSource(
        deployer=deployer,
        registry=lambda: hook.get_registry(deployer),
        description=f"Airflow connection {conn_id}",
    )
