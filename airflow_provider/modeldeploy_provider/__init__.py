"""Apache Airflow provider for modeldeploy: hooks, operators, sensor, trigger and extra link.

Importing this package or its operator, sensor and hook modules is cheap: the engine's
heavy dependencies (mlflow, kubernetes, scikit-learn) load when a task runs.
"""

from __future__ import annotations

from modeldeploy.redaction import add_secret_sink

from modeldeploy_provider.get_provider_info import get_provider_info

__all__ = ["get_provider_info"]


def mask_in_task_logs(value: str) -> None:
    """Every secret the engine learns (a tracking URI's password...) is masked by Airflow
    too, so other libraries' log lines in the task log (MLflow's, urllib3's) hide it.

    Values shorter than Airflow's `[logging] min_length_masked_secret` are not handed over:
    Airflow would skip them with a warning in every task log. The engine's own redaction
    still hides them in everything modeldeploy writes.
    """
    from airflow.sdk.configuration import conf
    from airflow.sdk.log import mask_secret

    if len(value) >= conf.getint("logging", "min_length_masked_secret", fallback=5):
        mask_secret(value)


add_secret_sink(mask_in_task_logs)
