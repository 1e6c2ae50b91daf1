"""Extra link on the deploy, start, rollback and sensor tasks: the prediction URL."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey

#: operator attribute (and XCom key, with multiple_outputs) holding the prediction URL
PREDICTION_URL_KEY = "prediction_url"


class PredictionUrlLink(BaseOperatorLink):
    """ "Prediction URL" button on the task: where to send requests to the deployed model.

    Airflow 3 resolves links on the worker when the task ends (and stores them for the
    UI), so the operator instance that just ran holds the URL in ``prediction_url``.
    """

    name = "Prediction URL"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        return getattr(operator, PREDICTION_URL_KEY, None) or ""
