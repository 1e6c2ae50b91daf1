"""Continuous deployment on one machine, with the engine alone (no orchestrator).

Trains a classifier on scikit-learn's bundled breast-cancer dataset, gates it on accuracy
and against the current champion, registers it in the MLflow Model Registry and rolls it
out to a local MLflow scoring server. Run it again: the same server is updated in place
(same URL) when the candidate passes the gate, or the champion keeps serving.

    python example_dags/continuous_deployment_local.py            # a good model
    python example_dags/continuous_deployment_local.py --c 1e-5   # a weak one: gate says no
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")

PIPELINE = "continuous_deployment_local"
MODEL_NAME = "breast-cancer-classifier"


def train_and_log(registry, regularization: float) -> tuple[str, str, dict[str, float], object]:
    """Train, evaluate and log a model; returns (model URI, run id, metrics, test rows)."""
    import warnings

    import mlflow
    import mlflow.sklearn
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    features, target = load_breast_cancer(return_X_y=True, as_frame=True)
    x_train, x_test, y_train, y_test = train_test_split(
        features, target, test_size=0.25, random_state=7, stratify=target
    )
    model = make_pipeline(StandardScaler(), LogisticRegression(C=regularization, max_iter=2000))
    model.fit(x_train, y_train)
    predicted = model.predict(x_test)
    metrics = {
        "accuracy": float(accuracy_score(y_test, predicted)),
        "f1": float(f1_score(y_test, predicted)),
    }
    registry.set_experiment(PIPELINE)  # artifacts beside the tracking store
    with registry.using_tracking_uri(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with mlflow.start_run() as run:
            mlflow.log_params({"C": regularization, "model": "LogisticRegression"})
            mlflow.log_metrics(metrics)
            info = mlflow.sklearn.log_model(
                model,
                name="model",
                input_example=x_test.head(3),
                # Naming the requirements skips MLflow's slow import-capturing subprocess.
                pip_requirements=mlflow.sklearn.get_default_pip_requirements(),
            )
    return info.model_uri, run.info.run_id, metrics, (x_test, y_test)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--c", type=float, default=1.0, help="inverse regularization strength")
    parser.add_argument("--min-accuracy", type=float, default=0.9)
    parser.add_argument("--timeout", type=float, default=180.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")

    from modeldeploy import Gate, ModelRegistry, continuous_deploy, create_deployer
    from modeldeploy.home import default_home

    started = time.monotonic()
    deployer = create_deployer("mlflow")
    registry = ModelRegistry(deployer.tracking_uri)
    print(f"State directory: {default_home()}")

    model_uri, run_id, metrics, (x_test, y_test) = train_and_log(registry, args.c)
    print(f"Trained {MODEL_NAME}: accuracy {metrics['accuracy']:.4f}, f1 {metrics['f1']:.4f}")

    gate = Gate.from_rules(
        [f"accuracy>={args.min_accuracy}"], champion_metric="accuracy", direction="maximize"
    )

    def progress(server, status) -> None:
        print(f"  [{time.monotonic() - started:5.1f}s] {server.uuid}: {status.state.value}")

    outcome = continuous_deploy(
        deployer,
        {
            "model_name": MODEL_NAME,
            "model_uri": model_uri,
            "model_type": "sklearn",
            "pipeline_name": PIPELINE,
            "run_id": run_id,
            "step_name": "deploy_model",
        },
        metrics,
        gate=gate,
        registry=registry,
        timeout=args.timeout,
        on_transition=progress,
    )
    assert outcome.decision is not None
    print(f"Gate: {outcome.decision.reason}")
    what = {
        "created": "Created a new model server.",
        "updated": "Updated the existing model server in place (same URL).",
        "kept": "Kept the champion serving; the candidate was not deployed.",
        "restarted": "Kept the champion serving and restarted it, it was down.",
        "none": "Nothing deployed and nothing serving yet.",
    }[outcome.action]
    print(f"Result: {what}")
    print(f"Candidate version: {outcome.candidate_version}; champion: {outcome.champion_version}")
    if outcome.server is None:
        return 1

    server = deployer.get_model_server(outcome.server.uuid)
    rows = x_test.head(5)
    predictions = server.predict(rows)
    print("Predictions for 5 held-out rows:", predictions, "expected:", y_test.head(5).tolist())
    print(f"Prediction URL: {server.prediction_url}")
    print(f"Done in {time.monotonic() - started:.1f}s. Next:")
    print("  .venv/bin/modeldeploy models list")
    print(f"  .venv/bin/modeldeploy models describe {server.uuid}")
    print(f"  .venv/bin/modeldeploy models stop {server.uuid}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
