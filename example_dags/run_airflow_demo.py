"""Run the continuous-deployment DAG locally, as `make demo` does.

    .venv/bin/python example_dags/run_airflow_demo.py [--verbose]

Sets up an Airflow home on SQLite under ``.demo/airflow`` (migrated once per Airflow
version), runs ``example_dags/continuous_deployment.py`` with ``dag.test()`` and prints
what it did: the prediction URL, the accuracy, the gate's reason, and whether it created a
model server, updated it in place or kept the champion; then the commands to list, inspect
and stop the server. State lives in ``$MODELDEPLOY_HOME`` (default ``.demo/modeldeploy``),
so running it again updates the same server in place or keeps the champion.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DAGS = ROOT / "example_dags"
DEMO = ROOT / ".demo"


def prepare_environment(airflow_home: Path, modeldeploy_home: Path, verbose: bool) -> None:
    """Environment of the demo; must be set before Airflow is imported."""
    os.environ.update(
        AIRFLOW_HOME=str(airflow_home),
        AIRFLOW__CORE__DAGS_FOLDER=str(DAGS),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__UNIT_TEST_MODE="False",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{airflow_home / 'airflow.db'}",
        AIRFLOW__LOGGING__LOGGING_LEVEL="INFO" if verbose else "WARNING",
        MODELDEPLOY_HOME=str(modeldeploy_home),
    )
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    airflow_home.mkdir(parents=True, exist_ok=True)
    modeldeploy_home.mkdir(parents=True, exist_ok=True)


def migrate_once(airflow_home: Path) -> None:
    """`airflow db migrate` when the database is new or from another Airflow version."""
    from importlib.metadata import version

    stamp = airflow_home / ".migrated"
    wanted = version("apache-airflow-core")
    if stamp.exists() and stamp.read_text() == wanted and (airflow_home / "airflow.db").exists():
        return
    print(f"Migrating the Airflow database in {airflow_home} ...", flush=True)
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    stamp.write_text(wanted)


def run_dag(conf: dict[str, Any] | None = None) -> tuple[str, dict[str, Any] | None]:
    """Run the example DAG with `dag.test()`; returns the run's state and the report."""
    sys.path.insert(0, str(DAGS))
    from continuous_deployment import continuous_deployment  # the DAG module

    dag = continuous_deployment()
    run = dag.test(run_conf=conf)
    return str(run.state), read_xcom(dag.dag_id, run.run_id, "report")


def read_xcom(dag_id: str, run_id: str, task_id: str) -> Any:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.scalar(
            XComModel.get_many(
                run_id=run_id, key="return_value", dag_ids=dag_id, task_ids=task_id
            ).with_only_columns(XComModel.value)
        )
    return XComModel.deserialize_value(_Row(row)) if row is not None else None


class _Row:
    def __init__(self, value: Any) -> None:
        self.value = value


def _short(path: Path) -> str:
    """The path relative to the current directory when it is below it (as `make` runs)."""
    relative = os.path.relpath(path)
    return str(path) if relative.startswith("..") else relative


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--verbose", action="store_true", help="show Airflow's task logs")
    parser.add_argument("--min-accuracy", type=float, help="gate threshold (default 0.9)")
    args = parser.parse_args(argv)

    airflow_home = DEMO / "airflow"
    modeldeploy_home = Path(os.environ.get("MODELDEPLOY_HOME") or DEMO / "modeldeploy")
    prepare_environment(airflow_home, modeldeploy_home.resolve(), args.verbose)
    migrate_once(airflow_home)

    conf = {} if args.min_accuracy is None else {"min_accuracy": args.min_accuracy}
    state, report = run_dag(conf)
    if state != "success" or report is None:
        print(f"The DAG run ended {state}; run again with --verbose to see the task logs.")
        return 1

    print()
    print(f"Prediction URL: {report['prediction_url']}")
    print(f"Accuracy: {report['accuracy']:.4f}")
    print(f"Gate: {report['gate_reason']}")
    print(f"Rollout: {report['what_happened']} (action: {report['action']})")
    print(f"Live check: {report['live_check']}")
    print(f"Predictions: {report['predictions']} (expected {report['expected']})")
    print(f"Model server: {report['uuid']} (model version {report['model_version']})")
    env = f"MODELDEPLOY_HOME={shlex.quote(_short(modeldeploy_home))}"
    cli = shlex.quote(_short(Path(sys.executable).with_name("modeldeploy")))
    print()
    print("Next:")
    print(f"  {env} {cli} models list")
    print(f"  {env} {cli} models describe {report['uuid']}")
    print(f"  {env} {cli} models stop {report['uuid']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
