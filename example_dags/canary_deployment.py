"""A canary rollout from Airflow, judged on the model itself, with automatic rollback.

    train -> evaluate -> deploy (canary 25 -> 100, deferrable) -> report

* ``train`` fits a logistic regression on iris and logs it to MLflow. With the
  ``broken_labels`` param it reproduces a classic pipeline bug: the class labels are
  shifted before training *and* before evaluation, so the offline accuracy still looks
  excellent and the gate lets the model through;
* ``evaluate`` scores it on held-out rows (with the same labels it was trained on) and
  keeps 30 held-out rows with their **true** labels as the canary's probe;
* ``deploy`` is `DeployModelOperator` with ``strategy="canary"``: the first run has no
  champion and deploys in place; later runs start the candidate beside the champion on the
  local MLflow flavor (embedded default, no cluster), give it 25 % of the traffic, then
  100 %, and at each step score both variants on the probe. ``accuracy>=0.9`` and
  ``agreement>=0.9`` (with the champion) must hold, else all traffic and the ``champion``
  alias stay on the champion and the version is tagged with the reason. Deferrable: the
  bake times are spent in the triggerer, and each step's analysis is in the task log;
* ``report`` prints what happened.

Production rollouts add service rules with real traffic, e.g. ``error_rate<=0.01``,
``p99_ms<=50`` and ``min_requests`` (see docs/progressive-delivery.md); this example has no
client traffic, so it judges on the probe alone (``min_requests: 0``).

Run it three times with ``dag.test()``: a champion, a promoted canary, then
``{"broken_labels": true}``: rolled back.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import Param, dag, task
from modeldeploy_provider.hooks.modeldeploy import ModelDeployHook
from modeldeploy_provider.operators.modeldeploy import DeployModelOperator

DAG_ID = "modeldeploy_canary_deployment"
MODEL_NAME = "iris-canary"
CONN_ID = "modeldeploy_default"
EXPERIMENT = "modeldeploy-airflow-canary"
PROBE_ROWS = 30


@dag(
    dag_id=DAG_ID,
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    tags=["modeldeploy", "example", "canary"],
    params={
        "broken_labels": Param(False, type="boolean"),
        "bake_seconds": Param(2, type="number", minimum=0, maximum=3600),
        "seed": Param(42, type="integer"),
    },
    doc_md=__doc__,
)
def canary_deployment() -> None:
    @task
    def train(params: dict[str, Any]) -> dict[str, Any]:
        """Fit a classifier (with shifted labels if asked) and log it to MLflow."""
        import mlflow
        import mlflow.sklearn
        from sklearn.datasets import load_iris
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import train_test_split

        features, target = load_iris(return_X_y=True, as_frame=True)
        if params["broken_labels"]:
            target = (target + 1) % 3  # the bug: labels shifted by one class
        x_train, _, y_train, _ = train_test_split(
            features, target, test_size=0.3, random_state=params["seed"], stratify=target
        )
        model = LogisticRegression(max_iter=1000).fit(x_train, y_train)
        registry = ModelDeployHook(CONN_ID).get_registry()
        registry.set_experiment(EXPERIMENT)
        with registry.using_tracking_uri(), mlflow.start_run(run_name="train") as run:
            logged = mlflow.sklearn.log_model(
                model,
                name="model",
                input_example=x_train[:3],
                serialization_format="cloudpickle",
                pip_requirements=mlflow.sklearn.get_default_pip_requirements(
                    include_cloudpickle=True
                ),
            )
        return {"model_uri": logged.model_uri, "run_id": run.info.run_id}

    @task
    def evaluate(trained: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        """Offline accuracy (on the labels the model was trained with), and the probe."""
        import mlflow.pyfunc
        from sklearn.datasets import load_iris
        from sklearn.model_selection import train_test_split

        features, truth = load_iris(return_X_y=True, as_frame=True)
        seen = (truth + 1) % 3 if params["broken_labels"] else truth
        _, x_test, _, y_seen = train_test_split(
            features, seen, test_size=0.3, random_state=params["seed"], stratify=seen
        )
        with ModelDeployHook(CONN_ID).get_registry().using_tracking_uri():
            model = mlflow.pyfunc.load_model(trained["model_uri"])
        accuracy = float((model.predict(x_test) == y_seen.to_numpy()).mean())
        probe = x_test[:PROBE_ROWS]
        return {
            "metrics": {"accuracy": accuracy},
            "analysis": {
                "rules": ["accuracy>=0.9", "agreement>=0.9"],
                "min_requests": 0,
                "probe": {
                    "records": probe.to_dict(orient="records"),
                    "labels": [int(y) for y in truth.loc[probe.index]],
                },
            },
        }

    @task
    def report(deployment: dict[str, Any]) -> dict[str, Any]:
        """What the rollout did, for people (the log) and programs (the XCom)."""
        rollout = deployment.get("rollout") or {}
        steps = [
            f"{r['step']['challenger_percent']}%: {r['analyses'][-1]['verdict']}"
            for r in rollout.get("history", [])
            if r["analyses"]
        ]
        summary = {
            "action": deployment["action"],
            "message": deployment["message"],
            "candidate_version": deployment["candidate_version"],
            "champion_version": deployment["champion_version"],
            "prediction_url": deployment["prediction_url"],
            "steps": steps,
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
        metrics=evaluation["metrics"],
        gate_rules=["accuracy>=0.9"],
        strategy={
            "kind": "canary",
            "percents": [25, 100],
            "bake_seconds": "{{ params.bake_seconds }}",
        },
        analysis=evaluation["analysis"],
        fail_on_rollback=False,
        deferrable=True,
        timeout=120,
    )
    report(deploy.output)


canary_deployment()
