"""`ModelGateOperator`: short-circuits or branches on the engine's gate, with the reason in
the log and XCom, and compares the candidate with the registry's champion."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

GATE_DAG = """
from airflow.sdk import dag, task
from modeldeploy_provider.operators.modeldeploy import ModelGateOperator

CONN = "md_gate"


@task
def marker():
    return "ran"


@dag(dag_id="gates", schedule=None, params={"accuracy": 0.95})
def gates():
    metrics = {"accuracy": "{{ params.accuracy }}", "latency_ms": 12}

    passes = ModelGateOperator(
        task_id="passes", metrics=metrics, rules="accuracy>=0.9,latency_ms<=50",
        modeldeploy_conn_id=CONN,
    )
    passes >> marker.override(task_id="after_pass")()

    short = ModelGateOperator(
        task_id="short", metrics=metrics, rules=["accuracy>=0.99"], modeldeploy_conn_id=CONN
    )
    short >> [marker.override(task_id="deploy_a")(), marker.override(task_id="deploy_b")()]

    branch = ModelGateOperator(
        task_id="branch", metrics=metrics, rules=["accuracy>=0.99"],
        on_pass="promote", on_reject="notify", modeldeploy_conn_id=CONN,
    )
    branch >> [marker.override(task_id="promote")(), marker.override(task_id="notify")()]

    champion = ModelGateOperator(
        task_id="champion", metrics=metrics, rules=["accuracy>=0.9"],
        model_name="iris-gate", champion_metric="accuracy", min_improvement="0.01",
        modeldeploy_conn_id=CONN,
    )
    champion >> marker.override(task_id="after_champion")()


gates()
"""


@pytest.fixture
def registry_with_champion(set_connection: Any, tmp_path: Path) -> Any:
    """A registry whose `iris-gate` champion has accuracy 0.95."""
    from modeldeploy.registry import ModelRegistry

    uri = f"sqlite:///{tmp_path / 'registry.db'}"
    set_connection("md_gate", "modeldeploy_mlflow", extra={"tracking_uri": uri, "home": "/x"})
    registry = ModelRegistry(uri)
    version = registry.register_candidate("iris-gate", "s3://models/iris/1", {"accuracy": 0.95})
    registry.promote("iris-gate", version.version)
    return registry


def test_gate_short_circuits_branches_and_compares_with_the_champion(
    run_dag: Any, registry_with_champion: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    result = run_dag(GATE_DAG)

    assert result.state == "success", result.states
    assert result.states == {
        "passes": "success",
        "after_pass": "success",
        "short": "success",
        "deploy_a": "skipped",
        "deploy_b": "skipped",
        "branch": "success",
        "promote": "skipped",
        "notify": "success",
        "champion": "success",
        "after_champion": "skipped",
    }
    passed = result.value("passes")
    assert passed["passed"] is True
    assert passed["reason"] == "passed: accuracy 0.95 >= 0.9; latency_ms 12 <= 50"
    assert result.value("passes", "passed") is True  # each key is its own XCom

    rejected = result.value("short")
    assert rejected["passed"] is False
    assert rejected["reason"] == "rejected: accuracy 0.95 < 0.99"

    champion = result.value("champion")
    assert champion["passed"] is False
    assert champion["champion_version"] == "1"
    assert (
        "accuracy 0.95 vs champion 0.95, higher is better (needs an improvement of at least 0.01)"
        in (champion["reason"])
    )
    log = capfd.readouterr().out
    assert "gate rejected: accuracy 0.95 < 0.99; skipping the deployment" in log
    assert "gate rejected: accuracy 0.95 < 0.99; continuing with notify" in log


DOCS_GATE_DAG = """
from airflow.sdk import dag, task
from modeldeploy_provider.operators.modeldeploy import ModelGateOperator


@task
def deploy():
    return "deployed"


@task
def notify():
    return "notified"


@dag(dag_id="docs_gate", schedule=None, params={"rmse": 50.0})
def docs_gate():
    @task(multiple_outputs=True)
    def evaluate(params=None):
        return {"metrics": {"rmse": float(params["rmse"])}}

    evaluate = evaluate().operator  # an operator, as `evaluate.output[...]` expects
    deploy, notify = globals()["deploy"](), globals()["notify"]()
EXAMPLE


docs_gate()
"""


def _docs_gate_example() -> str:
    """The `ModelGateOperator` example of docs/airflow.md, as the user reads it."""
    docs = (Path(__file__).resolve().parents[2] / "docs" / "airflow.md").read_text()
    section = docs.split("### `ModelGateOperator`", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    return "\n".join("    " + line if line else line for line in code.splitlines())


@pytest.mark.parametrize(
    ("rmse", "runs", "skipped"),
    [(50.0, "deploy", "notify"), (60.13, "notify", "deploy")],
    ids=["better-rmse-passes", "worse-rmse-rejected"],
)
def test_docs_gate_example_runs_only_the_branch_taken(
    run_dag: Any,
    set_connection: Any,
    tmp_path: Path,
    rmse: float,
    runs: str,
    skipped: str,
) -> None:
    """A pass runs only the deploy branch, a reject only `on_reject`; rmse is lower-better."""
    from modeldeploy.registry import ModelRegistry

    uri = f"sqlite:///{tmp_path / 'registry.db'}"
    set_connection(
        "modeldeploy_default", "modeldeploy_mlflow", extra={"tracking_uri": uri, "home": "/x"}
    )
    registry = ModelRegistry(uri)
    champion = registry.register_candidate("house-prices", "s3://models/house/1", {"rmse": 56.5})
    registry.promote("house-prices", champion.version)

    result = run_dag(DOCS_GATE_DAG.replace("EXAMPLE", _docs_gate_example()), conf={"rmse": rmse})

    assert result.states["gate"] == "success"
    assert result.states[runs] == "success"
    assert result.states[skipped] == "skipped"
    decision = result.value("gate")
    assert decision["passed"] is (runs == "deploy")
    assert "lower is better" in decision["reason"]


def test_gate_refuses_an_unknown_metric_without_direction(
    run_dag: Any, registry_with_champion: Any
) -> None:
    source = GATE_DAG.split("    passes = ")[0] + (
        '    ModelGateOperator(task_id="uplift", metrics={"uplift": 2}, model_name="iris-gate",\n'
        '        champion_metric="uplift", modeldeploy_conn_id=CONN)\n\n\ngates()\n'
    )
    result = run_dag(source)
    assert result.states["uplift"] == "failed"
