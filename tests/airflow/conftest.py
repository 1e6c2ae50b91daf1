"""Real Airflow for the provider's tests: a private SQLite AIRFLOW_HOME per xdist worker.

Airflow reads its configuration when it is first imported, so the environment is set here,
at collection, before any test module imports `airflow_provider`. The database is migrated
once per test session into a template (under a lock shared by the workers) and copied into
each worker's home. DAGs run with `dag.test()`: a test writes its DAG file into the worker's
DAG folder (the file must be inside it), runs it, and gets the task states and XComs.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.k8s_emulator.fixtures import k8s_emulator  # noqa: F401 - re-exported fixture

WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")
AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix=f"modeldeploy-airflow-{WORKER}-"))
DAGS_FOLDER = AIRFLOW_HOME / "dags"
DAGS_FOLDER.mkdir()
atexit.register(shutil.rmtree, AIRFLOW_HOME, True)
ROOT = Path(__file__).resolve().parents[2]

AIRFLOW_ENV = {
    "AIRFLOW_HOME": str(AIRFLOW_HOME),
    "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{AIRFLOW_HOME / 'airflow.db'}",
    "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
    "GIT_PYTHON_REFRESH": "quiet",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}
os.environ.update(AIRFLOW_ENV)


def _migrated_template(shared: Path) -> Path:
    """`airflow db migrate` once per session, whichever worker gets there first."""
    from importlib.metadata import version

    template = shared / f"airflow-{version('apache-airflow-core')}.db"
    with (shared / "airflow-template.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not template.exists():
            home = shared / "airflow-template-home"
            home.mkdir(exist_ok=True)
            partial = home / "airflow.db"
            env = {
                **os.environ,
                "AIRFLOW_HOME": str(home),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{partial}",
            }
            subprocess.run(
                [sys.executable, "-m", "airflow", "db", "migrate"],
                env=env,
                check=True,
                capture_output=True,
            )
            os.replace(partial, template)
    return template


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated metadata database to copy (shared by the workers of this session)."""
    return _migrated_template(tmp_path_factory.getbasetemp().parent)


@pytest.fixture(scope="session", autouse=True)
def airflow_db(migrated_template: Path) -> Path:
    """This worker's migrated metadata database, in place before any test imports Airflow.

    Collecting the tests imports no Airflow, so this session fixture runs before the first
    connection; should one exist already, it is dropped so the next opens the new file.
    """
    database = AIRFLOW_HOME / "airflow.db"
    partial = database.with_suffix(".partial")
    shutil.copyfile(migrated_template, partial)
    os.replace(partial, database)
    if "airflow.settings" in sys.modules:
        from airflow import settings

        if settings.engine is not None:
            settings.engine.dispose()
    return database


@dataclass
class DagResult:
    """What a `dag.test()` run left in the metadata database."""

    dag_id: str
    run_id: str
    state: str
    states: dict[str, str | None]
    xcoms: dict[tuple[str, str], Any] = field(default_factory=dict)

    def value(self, task_id: str, key: str = "return_value") -> Any:
        return self.xcoms.get((task_id, key))


def _collect(dag_id: str, run_id: str, state: str) -> DagResult:
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        tis = session.scalars(
            select(TaskInstance).where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id)
        ).all()
        states = {ti.task_id: (str(ti.state) if ti.state else None) for ti in tis}
        rows = session.scalars(
            select(XComModel).where(XComModel.dag_id == dag_id, XComModel.run_id == run_id)
        ).all()
        xcoms = {(row.task_id, row.key): XComModel.deserialize_value(row) for row in rows}
    return DagResult(dag_id, run_id, state, states, xcoms)


@pytest.fixture
def run_dag(airflow_db: Path) -> Iterator[Callable[..., DagResult]]:
    """`run_dag(source, conf=None)`: write a DAG file, run it with `dag.test()`, report.

    The file defines one DAG named `dag`; it is removed after the test so the next
    `dag.test()` of this worker parses only its own file.
    """
    written: list[Path] = []

    def run(source: str | Path, conf: dict[str, Any] | None = None) -> DagResult:
        path = DAGS_FOLDER / f"dag_{uuid.uuid4().hex[:12]}.py"
        if isinstance(source, Path):
            shutil.copyfile(source, path)
        else:
            path.write_text(source)
        written.append(path)
        from airflow.sdk import DAG
        from airflow.sdk.definitions._internal.contextmanager import DagContext

        spec = importlib.util.spec_from_file_location(path.stem, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[path.stem] = module
        # collect DAGs made by a bare `@dag` call too, as Airflow's own parser does
        DagContext.autoregistered_dags.clear()
        DagContext.current_autoregister_module_name = path.stem
        try:
            spec.loader.exec_module(module)
        finally:
            DagContext.current_autoregister_module_name = None
        dags = {id(v): v for v in vars(module).values() if isinstance(v, DAG)}
        dags.update({id(d): d for d, _ in DagContext.autoregistered_dags})
        DagContext.autoregistered_dags.clear()
        assert len(dags) == 1, f"{path.name} must define exactly one DAG, found {len(dags)}"
        dag = next(iter(dags.values()))
        dagrun = dag.test(run_conf=conf)
        return _collect(dag.dag_id, dagrun.run_id, str(dagrun.state))

    yield run
    for path in written:
        sys.modules.pop(path.stem, None)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def connection_env(conn_id: str, conn_type: str, **fields: Any) -> tuple[str, str]:
    """`AIRFLOW_CONN_<ID>` name and JSON value for a connection (extra given as a dict)."""
    body = {"conn_type": conn_type, **fields}
    if isinstance(body.get("extra"), dict):
        body["extra"] = json.dumps(body["extra"])
    return f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(body)


@pytest.fixture
def set_connection(monkeypatch: pytest.MonkeyPatch) -> Callable[..., str]:
    """Define a connection for this test through its environment variable."""

    def define(conn_id: str, conn_type: str, **fields: Any) -> str:
        name, value = connection_env(conn_id, conn_type, **fields)
        monkeypatch.setenv(name, value)
        return conn_id

    return define
