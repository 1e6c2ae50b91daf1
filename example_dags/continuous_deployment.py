"""Continuous deployment of a scikit-learn classifier from an Airflow DAG.

    train -> evaluate -> deploy (gate + rollout) -> verify -> report

* ``train`` fits a logistic regression on iris (ships with scikit-learn, no download)
  and logs it to MLflow;
* ``evaluate`` scores it on held-out rows;
* ``deploy`` is `DeployModelOperator`: it gates the candidate on accuracy and against the
  champion now serving, registers it in the MLflow registry, and rolls it out to the local
  MLflow scoring server (modeldeploy's embedded default, no cluster needed): the first
  run creates the server, later runs update it in place (same URL) or keep the champion
  serving when the gate says no; the reason is in its log and XCom;
* ``verify`` sends a few rows to the live endpoint and compares the answers;
* ``report`` prints the prediction URL, the accuracy, the gate's reason and what happened.

Connection: ``modeldeploy_default`` (type ``modeldeploy_mlflow``). Left undefined, it means
the local default: state in ``$MODELDEPLOY_HOME`` (``~/.modeldeploy``) with the MLflow
registry in SQLite beside it. Point it at a ``modeldeploy_seldon`` or ``modeldeploy_kserve``
connection and a model URI the cluster can read to roll out to Kubernetes instead.

Run it locally with ``make demo`` (``example_dags/run_airflow_demo.py``: SQLite
``AIRFLOW_HOME`` under ``.demo/airflow`` and ``dag.test()``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import Param, dag, task
from modeldeploy_provider.hooks.modeldeploy import ModelDeployHook
from modeldeploy_provider.operators.modeldeploy import DeployModelOperator

DAG_ID = "modeldeploy_continuous_deployment"
MODEL_NAME = "iris-classifier"
CONN_ID = "modeldeploy_default"
EXPERIMENT = "modeldeploy-airflow-example"
VERIFY_ROWS = 10


@dag(
    dag_id=DAG_ID,
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    tags=["modeldeploy", "example"],
    params={
        "min_accuracy": Param(0.9, type="number", minimum=0, maximum=1),
        "min_improvement": Param(0.0, type="number", minimum=0),
        "regularization": Param(1.0, type="number", exclusiveMinimum=0),
        "seed": Param(42, type="integer"),
    },
    doc_md=__doc__,
)
def continuous_deployment() -> None:
    @task
    def train(params: dict[str, Any]) -> dict[str, Any]:
        """Fit a classifier and log it to the MLflow tracking store of the connection."""
        import mlflow
        import mlflow.sklearn
        from sklearn.datasets import load_iris
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import train_test_split

        features, target = load_iris(return_X_y=True, as_frame=True)
        x_train, _, y_train, _ = train_test_split(
            features, target, test_size=0.3, random_state=params["seed"], stratify=target
        )
        model = LogisticRegression(C=params["regularization"], max_iter=1000)
        model.fit(x_train, y_train)

        registry = ModelDeployHook(CONN_ID).get_registry()
        registry.set_experiment(EXPERIMENT)  # artifacts beside the tracking store
        with registry.using_tracking_uri(), mlflow.start_run(run_name="train") as run:
            mlflow.log_params({"C": params["regularization"], "seed": params["seed"]})
            logged = mlflow.sklearn.log_model(
                model,
                name="model",
                input_example=x_train[:3],
                # cloudpickle: skops (the default) scans every loaded module, slow beside Airflow
                serialization_format="cloudpickle",
                # naming the requirements skips MLflow's slow import-capturing subprocess
                pip_requirements=mlflow.sklearn.get_default_pip_requirements(
                    include_cloudpickle=True
                ),
            )
        return {"model_uri": logged.model_uri, "run_id": run.info.run_id}

    @task
    def evaluate(trained: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        """Accuracy on held-out rows, plus a few rows and labels for the live check."""
        import mlflow.pyfunc
        from sklearn.datasets import load_iris
        from sklearn.metrics import accuracy_score, f1_score
        from sklearn.model_selection import train_test_split

        features, target = load_iris(return_X_y=True, as_frame=True)
        _, x_test, _, y_test = train_test_split(
            features, target, test_size=0.3, random_state=params["seed"], stratify=target
        )
        with ModelDeployHook(CONN_ID).get_registry().using_tracking_uri():
            model = mlflow.pyfunc.load_model(trained["model_uri"])
        predicted = model.predict(x_test)
        return {
            "metrics": {
                "accuracy": float(accuracy_score(y_test, predicted)),
                "f1_macro": float(f1_score(y_test, predicted, average="macro")),
            },
            "rows": x_test[:VERIFY_ROWS].to_dict(orient="split"),
            "labels": [int(v) for v in y_test[:VERIFY_ROWS]],
        }

    @task
    def verify(deployment: dict[str, Any], evaluation: dict[str, Any]) -> dict[str, Any]:
        """Send held-out rows to the live endpoint and compare with the true labels.

        `modeldeploy.verification.verify_predictions`: labels must match exactly, numbers
        within a tolerance; a failure names the worst rows with their inputs.
        """
        from modeldeploy.verification import verify_predictions

        if not deployment["uuid"]:
            return {"checked": 0, "correct": 0, "predictions": []}
        with ModelDeployHook(CONN_ID).get_deployer() as deployer:
            result = verify_predictions(
                deployer.get_model_server(deployment["uuid"]),
                {"dataframe_split": {k: evaluation["rows"][k] for k in ("columns", "data")}},
                expected=evaluation["labels"],
                min_accuracy=0.8,
            )
        correct = round((result.accuracy or 0) * result.rows)
        return {"checked": result.rows, "correct": correct, "predictions": result.predictions}

    @task
    def report(
        deployment: dict[str, Any], evaluation: dict[str, Any], verification: dict[str, Any]
    ) -> dict[str, Any]:
        """One summary for people (the log) and for programs (the XCom)."""
        said = {
            "created": "created a new model server",
            "updated": "updated the model server in place (same URL)",
            "kept": "kept the champion serving",
            "restarted": "kept the champion serving (restarted it)",
            "none": "deployed nothing (no champion to keep)",
        }
        summary = {
            "prediction_url": deployment["prediction_url"],
            "accuracy": evaluation["metrics"]["accuracy"],
            "gate_passed": deployment["gate_passed"],
            "gate_reason": deployment["gate_reason"],
            "action": deployment["action"],
            "what_happened": said.get(deployment["action"], deployment["action"]),
            "uuid": deployment["uuid"],
            "model_version": deployment["model_version"],
            "champion_version": deployment["champion_version"],
            "live_check": f"{verification['correct']}/{verification['checked']} correct",
            "predictions": verification["predictions"],
            "expected": evaluation["labels"][: len(verification["predictions"])],
        }
        for key, value in summary.items():
            print(f"{key}: {value}")
        return summary

    trained = train()
    evaluation = evaluate(trained)
    deploy = DeployModelOperator(
        task_id="deploy",
        modeldeploy_conn_id=CONN_ID,
        model_name=MODEL_NAME,
        model_uri=trained["model_uri"],
        model_type="sklearn",
        metrics=evaluation["metrics"],
        gate_rules=["accuracy>={{ params.min_accuracy }}"],
        champion_metric="accuracy",
        direction="maximize",
        min_improvement="{{ params.min_improvement }}",
        timeout=120,
    )
    report(deploy.output, evaluation, verify(deploy.output, evaluation))


continuous_deployment()
