"""Continuous deployment of a scikit-learn classifier from a Prefect flow.

The same story as the Airflow example: train on a dataset that ships with scikit-learn
(iris, no download), evaluate on held-out rows, gate on accuracy (and against the champion
now serving), deploy to the local MLflow scoring server (modeldeploy's embedded default),
then check a few live predictions against the endpoint.

Deploy and verification run in one Prefect transaction. If verification fails, the
transaction rolls back: `deploy_model`'s rollback hook redeploys the previous champion in
place (same URL) and moves the `champion` alias back, through `modeldeploy.rollout.rollback`.

Run it (after `make install`):

    .venv/bin/python example_dags/continuous_deployment_prefect.py

Run it again: the model server is updated in place (same URL) when the candidate passes the
gate, or the champion keeps serving when it does not; the report says which. State lives in
MODELDEPLOY_HOME (default ~/.modeldeploy), with the MLflow registry in SQLite beside it.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.transactions import transaction
from prefect_modeldeploy.blocks import MLflowDeployer, ModelDeployerBlock
from prefect_modeldeploy.tasks import deploy_model, evaluate_gate, verify_predictions

MODEL_NAME = "iris-classifier"
EXPERIMENT = "modeldeploy-prefect-example"


@task(cache_policy=NO_CACHE)
def train_and_evaluate(
    deployer: ModelDeployerBlock, regularization: float, verify_rows: int, seed: int
) -> dict[str, Any]:
    """Train a logistic regression, evaluate it on held-out rows and log it to MLflow."""

    import mlflow
    import mlflow.sklearn
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.model_selection import train_test_split

    features, target = load_iris(return_X_y=True, as_frame=True)
    x_train, x_test, y_train, y_test = train_test_split(
        features, target, test_size=0.3, random_state=seed, stratify=target
    )
    model = LogisticRegression(C=regularization, max_iter=1000).fit(x_train, y_train)
    predicted = model.predict(x_test)
    metrics = {
        "accuracy": float(accuracy_score(y_test, predicted)),
        "f1_macro": float(f1_score(y_test, predicted, average="macro")),
    }

    registry = deployer.get_registry()
    registry.set_experiment(EXPERIMENT)  # artifacts beside the tracking store
    with registry.using_tracking_uri(), mlflow.start_run(run_name="train"):
        mlflow.log_params({"C": regularization, "seed": seed})
        mlflow.log_metrics(metrics)
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            input_example=x_train.head(3),
            # Naming the requirements skips MLflow's slow import-capturing subprocess.
            pip_requirements=mlflow.sklearn.get_default_pip_requirements(),
        )
    return {
        "model_uri": info.model_uri,
        "metrics": metrics,
        "rows": x_test.head(verify_rows),
        "labels": [int(v) for v in y_test.head(verify_rows)],
    }


@flow(name="continuous-deployment-prefect")
def continuous_deployment(
    deployer: MLflowDeployer | str | None = None,
    model_name: str = MODEL_NAME,
    regularization: float = 1.0,
    min_accuracy: float = 0.9,
    min_improvement: float = 0.0,
    min_live_accuracy: float = 0.8,
    verify_rows: int = 10,
    seed: int = 42,
    timeout: float = 120.0,
) -> dict[str, Any]:
    """Train, evaluate, gate, deploy and verify; roll back if the live check fails."""
    block = deployer if deployer is not None else MLflowDeployer()
    if isinstance(block, str):
        block = MLflowDeployer.load(block)

    candidate = train_and_evaluate(block, regularization, verify_rows, seed)
    rules = [f"accuracy>={min_accuracy}"]
    # The reason (thresholds and champion comparison) shows in the run log.
    evaluate_gate(
        candidate["metrics"],
        rules,
        champion_metric="accuracy",
        direction="maximize",
        min_improvement=min_improvement,
        deployer=block,
        model_name=model_name,
    )

    with transaction():
        outcome = deploy_model(
            block,
            model_name,
            candidate["model_uri"],
            metrics=candidate["metrics"],
            gate_rules=rules,
            champion_metric="accuracy",
            direction="maximize",
            min_improvement=min_improvement,
            timeout=timeout,
        )
        check = None
        if outcome.server is not None:
            # Raises when the live answers fall short: the transaction then rolls back.
            check = verify_predictions(
                block,
                outcome,
                candidate["rows"],
                expected=candidate["labels"],
                min_accuracy=min_live_accuracy,
            )

    url = outcome.server.prediction_url if outcome.server else None
    report = {
        "action": outcome.action,
        "message": outcome.message,
        "gate": outcome.decision.reason if outcome.decision else None,
        "accuracy": candidate["metrics"]["accuracy"],
        "candidate_version": outcome.candidate_version,
        "champion_version": outcome.champion_version,
        "server_uuid": outcome.server.uuid if outcome.server else None,
        "prediction_url": url,
        "predictions": check.predictions if check else [],
        "verification": check.message if check else None,
    }
    get_run_logger().info("report: %s", report)
    return report


def print_report(report: dict[str, Any]) -> None:
    print(f"Accuracy: {report['accuracy']:.4f}")
    print(f"Gate: {report['gate']}")
    print(f"Rollout: {report['action']}: {report['message']}")
    if report["verification"]:
        print(f"Live predictions: {report['predictions']} ({report['verification']})")
    if report["prediction_url"]:
        print(f"Prediction URL: {report['prediction_url']}")
    if report["server_uuid"]:
        uuid = report["server_uuid"]
        print(
            "\nInspect and manage it:\n"
            "  modeldeploy models list\n"
            f"  modeldeploy models describe {uuid}\n"
            f"  modeldeploy models stop {uuid}\n"
            f"  modeldeploy models delete {uuid} -y"
        )


if __name__ == "__main__":
    print_report(continuous_deployment())
