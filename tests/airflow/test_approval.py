"""A human approval between the gate and the deploy, in real Airflow.

The DAG runs with `dag.test()` in its own process on the database of a real `airflow
api-server`; the run parks the approval task in `awaiting_input` until an answer arrives
from outside: a reviewer in the Required Actions page (headless Chromium), the HITL REST
API, or the scheduler's own timeout sweep, which applies the default answer, Reject.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.airflow.apiserver import ApiServer
from tests.airflow.apiserver import api_server as start_api_server
from tests.browser import chromium_available, headless_chromium, screenshot_dir
from tests.conftest import SavedModels

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]

DAG = """
from datetime import timedelta

from airflow.sdk import dag
from modeldeploy_provider.operators.approval import ModelApprovalOperator
from modeldeploy_provider.operators.modeldeploy import DeployModelOperator, ModelGateOperator

METRICS = {"accuracy": 0.96, "f1": 0.95}


@dag(dag_id="__DAG_ID__", schedule=None)
def pipeline():
    gate = ModelGateOperator(
        task_id="gate", metrics=METRICS, rules=["accuracy>=0.9"], model_name="iris",
        champion_metric="accuracy",
    )
    approve = ModelApprovalOperator(
        task_id="approve", model_name="iris", model_uri="__URI__", metrics=METRICS,
        gate_decision=gate.output, response_timeout=__TIMEOUT__,
    )
    deploy = DeployModelOperator(
        task_id="deploy", model_name="iris", model_uri="__URI__", metrics=METRICS,
        gate_rules=["accuracy>=0.9"], timeout=120, approval=approve.output,
    )
    gate >> approve >> deploy


the_dag = pipeline()

if __name__ == "__main__":
    the_dag.test()
"""
#: a canary held before its second step: the first run of `champion` deploys in place
STEP_DAG = """
from airflow.sdk import dag
from modeldeploy_provider.operators.approval import ModelStepApprovalOperator
from modeldeploy_provider.operators.modeldeploy import DeployModelOperator

CANARY = {"kind": "canary", "percents": [30, 100], "bake_seconds": 0.5}


@dag(dag_id="__DAG_ID__", schedule=None)
def pipeline():
    champion = DeployModelOperator(
        task_id="champion", model_name="iris", model_uri="__FIRST__", strategy=CANARY,
        step_name="serve", timeout=120,
    )
    deploy = DeployModelOperator(
        task_id="deploy", model_name="iris", model_uri="__URI__", step_name="serve",
        strategy={**CANARY, "approve_before_steps": [2]}, timeout=120, deferrable=True,
        analysis={"rules": [], "min_requests": 0},  # no traffic here: every step passes
    )
    approve = ModelStepApprovalOperator(task_id="approve", model_name="iris")
    champion >> deploy >> approve


the_dag = pipeline()

if __name__ == "__main__":
    the_dag.test()
"""
#: bound on each wait; never the thing under test
WAIT = 240.0


@pytest.fixture(scope="module")
def api_server(
    tmp_path_factory: pytest.TempPathFactory, migrated_template: Path
) -> Iterator[ApiServer]:
    with start_api_server(tmp_path_factory.mktemp("api-server-home"), migrated_template) as server:
        yield server


class Run:
    """One `dag.test()` of the approval DAG in its own process, waiting for an answer."""

    def __init__(
        self,
        api: ApiServer,
        tmp_path: Path,
        md_home: Path,
        model: Path,
        timeout: str,
        source: str = DAG,
    ) -> None:
        self.api = f"{api.url}/api/v2"
        self.dag_id = f"approve_{tmp_path.name[-24:].replace('-', '_')}"
        dags = tmp_path / "dags"
        dags.mkdir()
        path = dags / f"{self.dag_id}.py"
        source = source.replace("__DAG_ID__", self.dag_id).replace("__URI__", str(model))
        path.write_text(source.replace("__TIMEOUT__", timeout))
        self.env = {
            **api.env,
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "MODELDEPLOY_HOME": str(md_home),
        }
        self._log: str | None = None
        self.process = subprocess.Popen(
            [sys.executable, str(path)],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def awaiting(self) -> dict[str, Any]:
        """The approval request once the task waits for input (polls the REST API)."""
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.output()
            found = requests.get(
                f"{self.api}/dags/{self.dag_id}/dagRuns/~/hitlDetails", timeout=30
            ).json()
            pending = [d for d in found.get("hitl_details", []) if d["responded_at"] is None]
            if pending and pending[0]["task_instance"]["state"] == "awaiting_input":
                return dict(pending[0])
            time.sleep(0.5)  # an external process: nothing to await but its rows
        pytest.fail(f"no approval request in {WAIT:g} s")

    def answer(self, request: dict[str, Any], option: str, reason: str) -> None:
        ti = request["task_instance"]
        response = requests.patch(
            f"{self.api}/dags/{self.dag_id}/dagRuns/{ti['dag_run_id']}/taskInstances/approve/-1"
            "/hitlDetails",
            json={"chosen_options": [option], "params_input": {"reason": reason}},
            timeout=30,
        )
        assert response.status_code == 200, response.text

    def finish(self) -> tuple[dict[str, str], dict[str, Any]]:
        """Task states and the approval's XCom once the run ended."""
        self.process.wait(WAIT)
        assert self.process.returncode == 0, self.output()
        runs = requests.get(f"{self.api}/dags/{self.dag_id}/dagRuns", timeout=30).json()
        run_id = runs["dag_runs"][0]["dag_run_id"]
        base = f"{self.api}/dags/{self.dag_id}/dagRuns/{run_id}/taskInstances"
        tis = requests.get(base, timeout=30).json()["task_instances"]
        states = {ti["task_id"]: ti["state"] for ti in tis}
        xcom = requests.get(f"{base}/approve/xcomEntries/return_value", timeout=30).json()
        assert "value" in xcom, (states, xcom, self.output())
        return states, xcom["value"]

    def output(self) -> str:
        """The end of the run's log."""
        return self.log()[-6000:]

    def log(self) -> str:
        """The run's whole log, once it ended."""
        if self.process.poll() is None:
            return "(still running)"
        if self._log is None:
            assert self.process.stdout is not None
            self._log = self.process.stdout.read()
        return self._log

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)


@pytest.fixture(scope="module")
def empty_registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLflow SQLite store created once: each run copies it instead of migrating anew."""
    from modeldeploy.registry import ModelRegistry

    database = tmp_path_factory.mktemp("registry") / "mlflow.db"
    assert ModelRegistry(f"sqlite:///{database}").get_champion("iris") is None
    return database


@pytest.fixture
def dag_run(
    api_server: ApiServer,
    tmp_path: Path,
    md_home: Path,
    saved_models: SavedModels,
    empty_registry: Path,
) -> Iterator[Any]:
    runs: list[Run] = []
    shutil.copyfile(empty_registry, md_home / "mlflow.db")

    def start(timeout: str = "timedelta(hours=24)", source: str = DAG) -> Run:
        runs.append(Run(api_server, tmp_path, md_home, saved_models.first, timeout, source))
        return runs[-1]

    yield start
    for run in runs:
        run.stop()


def _version_tags(md_home: Path, version: str) -> dict[str, str]:
    from modeldeploy.registry import ModelRegistry

    registry = ModelRegistry(f"sqlite:///{md_home / 'mlflow.db'}")
    assert registry.get_champion("iris") is None, "a rejected candidate must not be champion"
    return registry.get_version("iris", version).tags


def test_reject_through_the_api_skips_the_deploy_and_tags_who_and_why(
    dag_run: Any, md_home: Path
) -> None:
    run = dag_run()
    request = run.awaiting()
    assert request["subject"] == "Deploy iris?"
    assert request["options"] == ["Approve", "Reject"]
    assert request["defaults"] == ["Reject"]
    assert "| accuracy | 0.96 |  |" in request["body"]
    assert "**Gate passed.**" in request["body"]
    assert "No answer within 24 h counts as **Reject**." in request["body"]

    run.answer(request, "Reject", "latency budget exceeded on the big segment")
    states, result = run.finish()
    assert states == {"gate": "success", "approve": "success", "deploy": "skipped"}
    assert result["approved"] is False
    assert result["timed_out"] is False
    assert result["reason"] == "latency budget exceeded on the big segment"
    assert result["by"]
    tags = _version_tags(md_home, result["rejected_version"])
    assert tags["modeldeploy.approval"] == "rejected"
    assert tags["modeldeploy.approval_by"] == result["by"]
    assert tags["modeldeploy.approval_reason"] == "latency budget exceeded on the big segment"
    assert list(md_home.glob("servers/*")) == []  # nothing was deployed


def test_no_answer_before_the_timeout_is_a_rejection(dag_run: Any, md_home: Path) -> None:
    run = dag_run(timeout="timedelta(seconds=1)")
    request = run.awaiting()
    assert "No answer within 1 s counts as **Reject**." in request["body"]
    sweep = (
        "from airflow.jobs.job import Job\n"
        "from airflow.jobs.scheduler_job_runner import SchedulerJobRunner\n"
        "SchedulerJobRunner(job=Job()).check_awaiting_input_timeouts()\n"
    )
    time.sleep(1.5)  # the deadline must pass; the sweep is the scheduler's, run once
    done = subprocess.run(
        [sys.executable, "-c", sweep], env=run.env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    states, result = run.finish()
    assert states["deploy"] == "skipped"
    assert result["approved"] is False
    assert result["timed_out"] is True
    assert result["by"] is None
    assert result["decision"] == (
        "rejected: no answer within 1 s; an unanswered approval is a rejection"
    )
    tags = _version_tags(md_home, result["rejected_version"])
    assert tags["modeldeploy.approval_by"] == "(nobody)"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not chromium_available():
        pytest.skip("Chromium and chromedriver are not installed (run `make browser`)")
    with headless_chromium(window_size="1280,1400") as driver:
        driver.implicitly_wait(30)
        yield driver


def _approve_in_ui(
    browser: Any,
    api_server: ApiServer,
    run: Run,
    request: dict[str, Any],
    shown: str,
    reason: str,
    shot: Path,
) -> None:
    """Open the request's Required Action tab, check it shows `shown`, type the reason,
    take the screenshot and click Approve."""
    from selenium.webdriver.common.by import By

    ti = request["task_instance"]
    browser.get(
        f"{api_server.url}/dags/{run.dag_id}/runs/{ti['dag_run_id']}/tasks/approve/required_actions"
    )
    browser.find_element(By.XPATH, f"//*[contains(normalize-space(), '{shown}')]")
    field = browser.find_element(By.CSS_SELECTOR, "textarea, input[name='element_reason']")
    field.send_keys(reason)
    browser.find_element(By.TAG_NAME, "body").screenshot(str(shot))
    browser.find_element(By.XPATH, "//button[normalize-space()='Approve']").click()


def test_a_reviewer_approves_in_the_required_actions_page_and_the_deploy_runs(
    dag_run: Any, api_server: ApiServer, browser: Any, tmp_path: Path, md_home: Path
) -> None:
    run = dag_run()
    request = run.awaiting()
    shot = screenshot_dir(tmp_path) / "airflow-approval-required-action.png"
    _approve_in_ui(
        browser, api_server, run, request, "iris: deploy", "better accuracy, same latency", shot
    )

    states, result = run.finish()
    assert states == {"gate": "success", "approve": "success", "deploy": "success"}
    assert result["approved"] is True
    assert result["reason"] == "better accuracy, same latency"
    assert result["rejected_version"] is None
    assert shot.stat().st_size > 10_000
    # the deploy tagged the approval on the version it registered, as Prefect's flow does
    from modeldeploy.registry import ModelRegistry

    tags = ModelRegistry(f"sqlite:///{md_home / 'mlflow.db'}").get_version("iris", "1").tags
    assert tags["modeldeploy.approval"] == "approved"
    assert tags["modeldeploy.approval_by"] == result["by"]
    assert tags["modeldeploy.approval_reason"] == "better accuracy, same latency"


def test_a_canary_held_before_its_second_step_goes_on_once_approved(
    dag_run: Any,
    md_home: Path,
    saved_models: SavedModels,
    api_server: ApiServer,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    from modeldeploy.registry import ModelRegistry

    # the champion is the constant model, the held candidate the logistic regression
    run = dag_run(source=STEP_DAG.replace("__FIRST__", str(saved_models.second)))
    held = run.awaiting()
    assert held["subject"] == "iris: enter step 2 of 2?"
    assert held["defaults"] == ["Reject"]
    assert "### Step 1 (challenger 30% / champion 70%): passed" in held["body"]
    assert "No answer by " in held["body"]
    registry = ModelRegistry(f"sqlite:///{md_home / 'mlflow.db'}")
    assert registry.get_champion("iris").version == "1"  # type: ignore[union-attr]

    if chromium_available():  # the reviewer's way, in the Required Actions page
        browser = request.getfixturevalue("browser")
        shot = screenshot_dir(tmp_path) / "airflow-step-approval-required-action.png"
        shown = "Step 1 (challenger"
        _approve_in_ui(browser, api_server, run, held, shown, "step 1 looks fine", shot)
    else:  # the same answer through the HITL REST API
        run.answer(held, "Approve", "step 1 looks fine")
    states, result = run.finish()
    assert states == {"champion": "success", "deploy": "success", "approve": "success"}
    assert result["action"] == "promoted", result["message"]
    assert result["approval"]["approved"] is True
    assert result["approval"]["step"] == 2
    assert registry.get_champion("iris").version == "2"  # type: ignore[union-attr]
    tags = registry.get_version("iris", "2").tags
    assert tags["modeldeploy.approval"] == "approved"
    assert tags["modeldeploy.approval_by"] == result["approval"]["by"]
    assert tags["modeldeploy.approval_reason"] == "step 1 looks fine"
    assert tags["modeldeploy.approval_step"] == "2"
    # the deploy replayed the champion's input example through the candidate: loading it
    # imported skops, whose thousand deprecation warnings are one line of the task log
    (summary,) = [line for line in run.log().splitlines() if "DeprecatedImportWarning" in line]
    assert "were not shown" in summary and "skops/io/_utils.py" in summary, summary
