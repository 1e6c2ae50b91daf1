"""Apache Airflow provider for modeldeploy: hooks, operators, sensor, trigger and extra link.

Importing this package or its operator, sensor and hook modules is cheap: the engine's
heavy dependencies (mlflow, kubernetes, scikit-learn) load when a task runs.
"""

from __future__ import annotations

from modeldeploy.redaction import add_secret_sink

from modeldeploy_provider.get_provider_info import get_provider_info

__all__ = ["get_provider_info"]


def _mask_in_task_logs(value: str) -> None:
    """Every secret the engine learns (a tracking URI's password...) is masked by Airflow
    too, so other libraries' log lines in the task log (MLflow's, urllib3's) hide it."""
    from airflow.sdk.log import mask_secret

    mask_secret(value)


add_secret_sink(_mask_in_task_logs)
