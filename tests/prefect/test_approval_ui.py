"""A reviewer approves a paused flow run in the real Prefect UI, and the deploy goes on.

A real `prefect server start` (the fixture of test_ui.py); the ready-made flow runs with
`require_approval=True` in its own process against it; headless Chromium opens the flow
run, clicks Resume, reads the report on the form, fills it in and submits. Screenshot:
docs/images/prefect-approval-resume-form.png with MODELDEPLOY_UPDATE_SCREENSHOTS=1.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser import chromium_available, headless_chromium, screenshot_dir
from tests.conftest import SavedModels
from tests.prefect.test_ui import prefect_server  # noqa: F401 - the module's real server

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]

FLOW = """
import json, sys
from prefect_modeldeploy.blocks import MLflowDeployer
from prefect_modeldeploy.flows import continuous_deployment

home, model = sys.argv[1], sys.argv[2]
block = MLflowDeployer(home=home, tracking_uri=f"sqlite:///{home}/mlflow.db")
outcome = continuous_deployment(
    block, "iris", model, metrics={"accuracy": 0.97, "f1": 0.96}, gate_rules=["accuracy>=0.9"],
    require_approval=True, approval_poll_interval=1, timeout=120,
)
print("OUTCOME=" + outcome.model_dump_json())
"""
WAIT = 240.0


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not chromium_available():
        pytest.skip("Chromium and chromedriver are not installed (run `make browser`)")
    with headless_chromium(window_size="1280,1600") as driver:
        yield driver


def _paused_run(api: str) -> str:
    import requests

    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        runs = requests.post(
            f"{api}/flow_runs/filter",
            json={"flow_runs": {"state": {"type": {"any_": ["PAUSED"]}}}},
            timeout=30,
        ).json()
        if runs:
            return str(runs[0]["id"])
        time.sleep(0.5)  # another process: nothing to await but its state
    pytest.fail(f"no flow run paused in {WAIT:g} s")


def test_reviewer_approves_on_the_resume_form_and_the_model_is_deployed(
    prefect_server: dict[str, Any],  # noqa: F811
    browser: Any,
    md_home: Path,
    saved_models: SavedModels,
    tmp_path: Path,
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    script = tmp_path / "flow.py"
    script.write_text(FLOW)
    process = subprocess.Popen(
        [sys.executable, str(script), str(md_home), str(saved_models.first)],
        env=prefect_server["env"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        run_id = _paused_run(prefect_server["api"])
        browser.get(f"{prefect_server['url']}/runs/flow-run/{run_id}")
        wait = WebDriverWait(browser, 60, poll_frequency=0.2)
        wait.until(lambda d: d.find_elements(By.XPATH, "//button[normalize-space()='Resume']"))
        browser.find_element(By.XPATH, "//button[normalize-space()='Resume']").click()
        wait.until(
            lambda d: "iris: deploy the candidate?" in d.find_element(By.TAG_NAME, "body").text
        )
        dialog = browser.find_element(By.CSS_SELECTOR, "[role=dialog]")
        assert "Gate passed." in dialog.text
        assert "No answer within 24 h counts as Reject." in dialog.text
        dialog.find_element(By.CSS_SELECTOR, "[role=switch], input[type=checkbox]").click()
        inputs = dialog.find_elements(By.CSS_SELECTOR, "input[type=text], textarea")
        inputs[0].send_keys("better on every segment")
        inputs[1].send_keys("alice")
        shot = screenshot_dir(tmp_path) / "prefect-approval-resume-form.png"
        dialog.screenshot(str(shot))
        dialog.find_element(By.XPATH, ".//button[normalize-space()='Submit']").click()

        out, _ = process.communicate(timeout=WAIT)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=30)
    assert process.returncode == 0, out[-4000:]
    outcome = json.loads(next(x[8:] for x in out.splitlines() if x.startswith("OUTCOME=")))
    assert outcome["action"] == "created"
    assert outcome["champion_version"] == "1"
    assert outcome["server"]["state"] == "active"
    from modeldeploy.registry import ModelRegistry

    tags = ModelRegistry(f"sqlite:///{md_home / 'mlflow.db'}").get_version("iris", "1").tags
    assert tags["modeldeploy.approval"] == "approved"
    assert tags["modeldeploy.approval_by"] == "alice"
    assert tags["modeldeploy.approval_reason"] == "better on every segment"
    assert shot.stat().st_size > 10_000
