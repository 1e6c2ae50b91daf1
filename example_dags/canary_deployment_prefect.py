"""A canary rollout from Prefect, judged on the model itself, with automatic rollback.

The same story as the Airflow canary example (example_dags/canary_deployment.py): train a
classifier on iris, and with ``broken_labels=True`` reproduce a pipeline bug that shifts the
class labels before training and before evaluation, so the offline accuracy looks fine and
the gate lets it through. The ready-made `continuous_deployment` flow then rolls it out as a
canary (25 % -> 100 %) on the local MLflow flavor (embedded default, no cluster), scoring both
variants at every step on 30 held-out rows with their true labels. The broken model fails
``accuracy>=0.9`` at the first step: all traffic stays on the champion, the ``champion``
alias does not move, the version is tagged with the reason, and the flow run fails with
`RolloutRolledBack` (inside its transaction, so nothing else of the run is kept either).

Run it (after `make install`) three times: a champion, a promoted canary, a rollback:

    .venv/bin/python example_dags/canary_deployment_prefect.py
    .venv/bin/python example_dags/canary_deployment_prefect.py
    .venv/bin/python example_dags/canary_deployment_prefect.py --broken-labels
"""

from __future__ import annotations

import sys
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect_modeldeploy.blocks import MLflowDeployer, ModelDeployerBlock
from prefect_modeldeploy.flows.continuous_deployment import continuous_deployment

MODEL_NAME = "iris-canary"
EXPERIMENT = "modeldeploy-prefect-canary"
PROBE_ROWS = 30


@task(cache_policy=NO_CACHE)
def train_and_evaluate(
    deployer: ModelDeployerBlock, broken_labels: bool, seed: int
) -> dict[str, Any]:
    """Train (labels shifted if asked), evaluate on the same labels, keep a true probe."""
    import mlflow
    import mlflow.sklearn
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    features, truth = load_iris(return_X_y=True, as_frame=True)
    seen = (truth + 1) % 3 if broken_labels else truth
    x_train, x_test, y_train, y_test = train_test_split(
        features, seen, test_size=0.3, random_state=seed, stratify=seen
    )
    model = LogisticRegression(max_iter=1000).fit(x_train, y_train)
    accuracy = float((model.predict(x_test) == y_test.to_numpy()).mean())
    registry = deployer.get_registry()
    registry.set_experiment(EXPERIMENT)
    with registry.using_tracking_uri(), mlflow.start_run(run_name="train"):
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            input_example=x_train.head(3),
            pip_requirements=mlflow.sklearn.get_default_pip_requirements(),
        )
    probe = x_test.head(PROBE_ROWS)
    return {
        "model_uri": info.model_uri,
        "metrics": {"accuracy": accuracy},
        "probe": {
            "records": probe.to_dict(orient="records"),
            "labels": [int(y) for y in truth.loc[probe.index]],
        },
    }


@flow(name="canary-deployment-prefect")
def canary_deployment(
    deployer: MLflowDeployer | None = None,
    broken_labels: bool = False,
    bake_seconds: float = 2.0,
    seed: int = 42,
) -> dict[str, Any]:
    """Train, evaluate, then a canary rollout analysed on the probe at every step."""
    block = deployer if deployer is not None else MLflowDeployer()
    candidate = train_and_evaluate(block, broken_labels, seed)
    outcome = continuous_deployment(
        block,
        MODEL_NAME,
        candidate["model_uri"],
        candidate["metrics"],
        gate_rules=["accuracy>=0.9"],
        strategy={"kind": "canary", "percents": [25, 100], "bake_seconds": bake_seconds},
        # no client traffic in this example: judge on the probe alone
        analysis={
            "rules": ["accuracy>=0.9", "agreement>=0.9"],
            "min_requests": 0,
            "probe": candidate["probe"],
        },
        timeout=120,
    )
    return {
        "action": outcome.action,
        "message": outcome.message,
        "candidate_version": outcome.candidate_version,
        "champion_version": outcome.champion_version,
        "prediction_url": outcome.server.prediction_url if outcome.server else None,
    }


if __name__ == "__main__":
    state = canary_deployment(broken_labels="--broken-labels" in sys.argv, return_state=True)
    if state.is_failed():
        print(f"Rolled back: {state.message}")
    else:
        for key, value in state.result().items():
            print(f"{key}: {value}")
