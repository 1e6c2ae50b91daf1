"""The connection form in the real Airflow UI: `airflow api-server` on SQLite (simple auth
manager, everyone admin), the API that drives the form, and headless Chromium picking each
of our connection types and seeing its fields.

Screenshots go to the test's temp directory; with MODELDEPLOY_UPDATE_SCREENSHOTS=1 they
are also copied to docs/images/ (how the ones in the docs were made).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.airflow.apiserver import ApiServer
from tests.airflow.apiserver import api_server as start_api_server
from tests.browser import chromium_available, headless_chromium, screenshot_dir

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

#: what each form must show: hook name, extra-field labels, secret inputs
FORMS = {
    "mlflow": (
        "modeldeploy: MLflow",
        ["MLflow tracking URI", "State directory"],
        ["element_tracking_uri"],
    ),
    "seldon": (
        "modeldeploy: Seldon",
        [
            "MLflow tracking URI",
            "Namespace",
            "Kubeconfig context",
            "Kubeconfig path",
            "Kubeconfig (YAML or JSON)",
            "In cluster",
            "Ingress base URL",
            "Storage secret name",
            "Storage credentials",
        ],
        ["element_kubeconfig", "element_storage_credentials", "element_tracking_uri"],
    ),
    "kserve": (
        "modeldeploy: KServe",
        ["Namespace", "Kubeconfig (YAML or JSON)", "Ingress base URL", "Storage credentials"],
        ["element_kubeconfig", "element_storage_credentials"],
    ),
    # found by entry point only: its form comes from its settings, with no provider code
    "seldon2": (
        "modeldeploy: Seldon2",
        ["Namespace", "Kubeconfig (YAML or JSON)", "Seldon mesh URL", "Storage credentials"],
        ["element_kubeconfig", "element_storage_credentials"],
    ),
}


@pytest.fixture(scope="module")
def api_server(
    tmp_path_factory: pytest.TempPathFactory, migrated_template: Path
) -> Iterator[ApiServer]:
    with start_api_server(tmp_path_factory.mktemp("api-server-home"), migrated_template) as server:
        yield server


def test_hook_meta_api_lists_our_connection_types(api_server: ApiServer) -> None:
    response = requests.get(f"{api_server.url}/ui/connections/hook_meta", timeout=60)
    assert response.status_code == 200, response.text[:500]
    meta = {m["connection_type"]: m for m in response.json()}
    for flavor, (hook_name, _, _) in FORMS.items():
        entry = meta[f"modeldeploy_{flavor}"]
        assert entry["hook_name"] == hook_name
        assert entry["hook_class_name"] == f"modeldeploy_provider.hooks.by_flavor.{flavor}"
    mlflow = meta["modeldeploy_mlflow"]
    assert set(mlflow["extra_fields"]) == {"tracking_uri", "home"}
    assert mlflow["extra_fields"]["home"]["schema"]["title"] == "State directory"
    for hidden in ("host", "port", "login", "password", "url_schema"):
        assert mlflow["standard_fields"][hidden]["hidden"] is True, hidden
    for flavor in ("seldon", "kserve", "seldon2"):
        entry = meta[f"modeldeploy_{flavor}"]
        fields = entry["extra_fields"]
        assert fields["kubeconfig"]["schema"]["format"] == "password"
        assert fields["storage_credentials"]["schema"]["format"] == "password"
        assert fields["in_cluster"]["schema"]["type"] == ["boolean", "null"]
        assert fields["namespace"]["value"] is None  # the kubeconfig context's, as kubectl
        for hidden in ("host", "login", "password"):
            assert entry["standard_fields"][hidden]["hidden"] is True, hidden


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not chromium_available():
        pytest.skip("Chromium and chromedriver are not installed (run `make browser`)")
    with headless_chromium(window_size="1280,2800") as driver:
        driver.implicitly_wait(20)
        yield driver


def _screenshot(element: object, name: str, tmp_path: Path) -> Path:
    path = screenshot_dir(tmp_path) / name
    element.screenshot(str(path))  # type: ignore[attr-defined]
    return path


def test_add_connection_form_shows_our_fields(
    api_server: ApiServer, browser: object, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver = browser
    for flavor, (hook_name, labels, secrets) in FORMS.items():
        driver.get(f"{api_server.url}/connections")  # type: ignore[attr-defined]
        driver.find_element(By.XPATH, "//button[normalize-space()='Add Connection']").click()  # type: ignore[attr-defined]
        dialog = driver.find_element(By.CSS_SELECTOR, "[role=dialog]")  # type: ignore[attr-defined]
        combobox = dialog.find_element(By.CSS_SELECTOR, "input[role=combobox]")
        combobox.send_keys("modeldeploy")
        options = driver.find_elements(  # type: ignore[attr-defined]
            By.XPATH, "//*[contains(@id,'react-select') and contains(@id,'-option-')]"
        )
        offered = sorted(o.text for o in options)
        assert offered == sorted(h for h, _, _ in FORMS.values()), offered
        if flavor == "mlflow":
            _screenshot(dialog, "airflow-connection-types.png", tmp_path)
        next(o for o in options if o.text == hook_name).click()
        # standard fields (open first): all hidden, every setting is an extra field
        dialog.find_element(By.XPATH, ".//label[normalize-space()='Description']")
        standard = {label.text.strip() for label in dialog.find_elements(By.TAG_NAME, "label")}
        assert not standard & {"Host", "Port", "Schema", "Login", "Password"}, standard
        dialog.find_element(By.XPATH, ".//button[normalize-space()='Extra Fields']").click()
        first = labels[0]
        dialog.find_element(By.XPATH, f".//label[normalize-space()='{first}']")
        shown = {label.text.strip() for label in dialog.find_elements(By.TAG_NAME, "label")}
        missing = [label for label in labels if label not in shown]
        assert not missing, f"{flavor}: missing {missing}; form shows {sorted(shown)}"
        password_inputs = {
            i.get_attribute("name")
            for i in dialog.find_elements(By.CSS_SELECTOR, "input[type=password]")
        }
        assert set(secrets) <= password_inputs, (flavor, password_inputs)
        assert "Connection type missing" in dialog.text  # the form's own help, not an error
        _screenshot(dialog, f"airflow-connection-{flavor}.png", tmp_path)
        combobox.send_keys(Keys.ESCAPE)
        assert (tmp_path / f"airflow-connection-{flavor}.png").stat().st_size > 10_000


LINK_DAG = """
from airflow.sdk import dag
from modeldeploy_provider.sensors.modeldeploy import ModelServerReadySensor


@dag(dag_id="prediction_url_link", schedule=None)
def pipeline():
    ModelServerReadySensor(
        task_id="ready", model_server_uuid="__UUID__", modeldeploy_conn_id="ui_kserve",
        timeout=60,
    )


the_dag = pipeline()

if __name__ == "__main__":
    run = the_dag.test()
    print("RUN_ID=" + run.run_id)
"""


def test_prediction_url_link_on_the_task_instance(
    api_server: ApiServer, browser: object, tmp_path: Path
) -> None:
    """The sensor's Prediction URL link, as a user finds it in the UI (screenshot for docs)."""
    import json
    import subprocess
    import sys

    from modeldeploy.flavors import create_deployer
    from selenium.webdriver.common.by import By

    from tests.k8s_emulator import KubernetesEmulator

    with KubernetesEmulator(namespaces=["default"]) as emu:
        settings = {"kubeconfig": emu.kubeconfig_dict(), "namespace": "default"}
        with create_deployer("kserve", settings) as deployer:
            server = deployer.deploy_model(
                {"model_name": "iris", "model_uri": "s3://models/iris/1", "model_type": "sklearn"},
                timeout=30,
            )
        dags = tmp_path / "dags"
        dags.mkdir()
        dag_file = dags / "prediction_url_link.py"
        dag_file.write_text(LINK_DAG.replace("__UUID__", str(server.uuid)))
        conn = {
            "conn_type": "modeldeploy_kserve",
            "extra": json.dumps({"kubeconfig_secret": json.dumps(settings["kubeconfig"])}),
        }
        env = {
            **api_server.env,
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW_CONN_UI_KSERVE": json.dumps(conn),
        }
        done = subprocess.run(
            [sys.executable, str(dag_file)], env=env, capture_output=True, text=True, timeout=150
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        run_id = next(
            line.split("=", 1)[1] for line in done.stdout.splitlines() if line.startswith("RUN_ID=")
        )
    url = server.prediction_url
    assert url
    driver = browser
    driver.get(  # type: ignore[attr-defined]
        f"{api_server.url}/dags/prediction_url_link/runs/{run_id}/tasks/ready/details"
    )
    link = driver.find_element(By.XPATH, "//a[normalize-space()='Prediction URL']")  # type: ignore[attr-defined]
    assert link.get_attribute("href") == url
    path = _screenshot(
        driver.find_element(By.TAG_NAME, "body"), "airflow-prediction-url-link.png", tmp_path
    )  # type: ignore[attr-defined]
    from PIL import Image

    with Image.open(path) as image:  # the header, the tabs and the Extra Links row
        image.crop((0, 0, image.width, min(image.height, 560))).save(path)
    assert path.stat().st_size > 10_000
