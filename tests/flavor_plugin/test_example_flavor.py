"""A flavor from another distribution works everywhere without a change to this repository.

The example flavor in tests/example_flavor (its own pyproject: an entry point in
`modeldeploy.flavors` and a settings model, nothing else) is installed into a private
target directory; every surface runs in a subprocess with that directory on PYTHONPATH, so
tests running in parallel never see it. Then, one after the other, on the same Acme cloud:
the Python API deploys, the CLI lists and stops, an Airflow connection made in the real
form (headless Chromium) drives the hook, and a generated Prefect block runs tasks.
The API key is secret: declared once in the flavor's model, masked by every surface.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.browser import chromium_available, headless_chromium, screenshot_dir

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "tests" / "example_flavor"
API_KEY = "acme-key-7f3e-must-stay-secret"
MODELDEPLOY = str(Path(sys.executable).with_name("modeldeploy"))


@dataclass
class Acme:
    site: Path  # where the flavor is installed
    env: dict[str, str]  # PYTHONPATH with the flavor on it
    cloud: Path = Path()  # this test's Acme cloud (a directory with ACCESS_KEY)

    def run(self, args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            args, env={**self.env, **env}, capture_output=True, text=True, timeout=300
        )

    def python(self, code: str, **env: str) -> Any:
        """Run a script; it prints one JSON value on its last line."""
        done = self.run([sys.executable, "-c", textwrap.dedent(code)], **env)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
        return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Acme:
    base = tmp_path_factory.mktemp("acme")
    source = base / "source"  # a copy: the build writes build/ and egg-info beside it
    shutil.copytree(SOURCE, source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    site = base / "site"
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    assert uv, "uv is installed by `make install`"
    subprocess.run(
        [uv, "pip", "install", "--quiet", "--no-deps", "--python", sys.executable,
         "--target", str(site), str(source)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    return Acme(site, {**os.environ, "PYTHONPATH": str(site), "MLFLOW_TRACKING_URI": ""})


@pytest.fixture
def acme(installed: Acme, tmp_path: Path) -> Acme:
    """The installed flavor and a fresh Acme cloud for this test (tests are independent:
    xdist may run them on different workers)."""
    cloud = tmp_path / "cloud"
    cloud.mkdir()
    (cloud / "ACCESS_KEY").write_text(API_KEY)
    return Acme(installed.site, installed.env, cloud)


def deploy(acme: Acme, **settings: str) -> dict[str, Any]:
    """Deploy `iris` through the Python API; settings as text, coerced by the engine."""
    settings = {"root": str(acme.cloud), "api_key": API_KEY, **settings}
    return acme.python(
        f"""
        import json
        from modeldeploy.flavors import available_flavors, create_deployer
        with create_deployer("acme", {settings!r}) as deployer:
            server = deployer.deploy_model(
                {{"model_name": "iris", "model_uri": "s3://models/iris", "replicas": 2}}
            )
            s = deployer.settings
            print(json.dumps({{
                "flavors": available_flavors(), "repr": repr(deployer), "uuid": str(server.uuid),
                "state": server.status.state, "url": server.prediction_url,
                "settings": [s.replicas_cap, s.autoscale, s.labels, s.region],
            }}))
        """
    )


def test_flavor_is_invisible_outside_its_subprocesses(installed: Acme) -> None:
    from modeldeploy.flavors import available_flavors

    assert "acme" not in available_flavors()
    assert (installed.site / "modeldeploy_acme").is_dir()


def test_python_api_and_cli(acme: Acme) -> None:
    # Python API: settings as text are coerced once, by the engine
    out = deploy(acme, replicas_cap="3", autoscale="yes", labels='{"team": "ml"}', region="us")
    assert "acme" in out["flavors"]
    assert out["settings"] == [3, True, {"team": "ml"}, "us"]
    assert out["state"] == "active"
    assert out["url"].startswith("https://us.acme.invalid/models/")
    assert API_KEY not in out["repr"]
    uuid = out["uuid"]

    # CLI: every setting from MODELDEPLOY_ACME_<NAME> (or --setting)
    env = {"MODELDEPLOY_ACME_ROOT": str(acme.cloud), "MODELDEPLOY_ACME_API_KEY": API_KEY}
    listed = acme.run([MODELDEPLOY, "--flavor", "acme", "models", "list", "--json"], **env)
    assert listed.returncode == 0, listed.stderr
    assert [s["uuid"] for s in json.loads(listed.stdout)] == [uuid]
    stopped = acme.run([MODELDEPLOY, "--flavor", "acme", "models", "stop", uuid], **env)
    assert stopped.returncode == 0, stopped.stderr
    described = acme.run(
        [MODELDEPLOY, "--flavor", "acme", "models", "describe", uuid[:8], "--json"], **env
    )
    assert json.loads(described.stdout)["state"] == "inactive"
    refused = acme.run(
        [MODELDEPLOY, "--flavor", "acme", "--setting", "api_key=wrong-key", "models", "list"],
        **env,
    )
    assert refused.returncode == 2
    assert "refused the API key" in refused.stderr and "wrong-key" not in refused.stderr
    bad = acme.run(
        [MODELDEPLOY, "--flavor", "acme", "--setting", "replicas_cap=many", "models", "list"],
        **env,
    )
    assert bad.returncode == 2 and "replicas_cap must be a number" in bad.stderr
    shown = acme.run([MODELDEPLOY, "flavors", "--settings", "--json"])
    (row,) = [r for r in json.loads(shown.stdout) if r["name"] == "acme"]
    fields = {f["name"]: f for f in row["setting_fields"]}
    assert {n for n, f in fields.items() if f["secret"]} == {"api_key", "tracking_uri"}
    assert fields["api_key"]["env"] == "MODELDEPLOY_ACME_API_KEY"


def type_into(element: Any, value: object) -> None:
    """Replace an input's text; React may drop keys typed while it re-renders, so check."""
    from selenium.webdriver.common.keys import Keys

    text = str(value)
    for _ in range(3):
        element.send_keys(Keys.CONTROL, "a")
        element.send_keys(Keys.DELETE)
        for char in text:  # one key at a time: React re-renders on each
            element.send_keys(char)
        if element.get_attribute("value") == text:
            return
    raise AssertionError(
        f"the form took {element.get_attribute('value')!r} for {element.get_attribute('name')}"
    )


@pytest.fixture(scope="module")
def airflow_api(installed: Acme, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from tests.airflow.apiserver import api_server
    from tests.airflow.conftest import _migrated_template

    template = _migrated_template(tmp_path_factory.getbasetemp().parent)
    home = tmp_path_factory.mktemp("airflow-acme")
    env = {"PYTHONPATH": installed.env["PYTHONPATH"], "AIRFLOW__CORE__TEST_CONNECTION": "Enabled"}
    with api_server(home, template, env) as server:
        yield server


def test_airflow_connection_made_in_the_real_form(
    acme: Acme, airflow_api: Any, tmp_path: Path
) -> None:
    if not chromium_available():
        pytest.skip("Chromium and chromedriver are not installed (run `make browser`)")
    from selenium.webdriver.common.by import By

    deploy(acme)
    meta = requests.get(f"{airflow_api.url}/ui/connections/hook_meta", timeout=60).json()
    entry = {m["connection_type"]: m for m in meta}["modeldeploy_acme"]
    assert entry["hook_name"] == "modeldeploy: Acme"
    fields = entry["extra_fields"]
    assert fields["api_key"]["schema"]["format"] == "password"
    assert fields["region"]["schema"]["enum"] == ["eu", "us"]
    assert fields["autoscale"]["schema"]["type"] == ["boolean", "null"]

    with headless_chromium(window_size="1280,2400") as driver:
        driver.implicitly_wait(20)
        driver.get(f"{airflow_api.url}/connections")
        driver.find_element(By.XPATH, "//button[normalize-space()='Add Connection']").click()
        dialog = driver.find_element(By.CSS_SELECTOR, "[role=dialog]")
        dialog.find_element(By.CSS_SELECTOR, "input[name=connection_id]").send_keys("acme_ui")
        combobox = dialog.find_element(By.CSS_SELECTOR, "input[role=combobox]")
        combobox.send_keys("modeldeploy: Acme")
        driver.find_element(
            By.XPATH, "//*[contains(@id,'-option-') and normalize-space()='modeldeploy: Acme']"
        ).click()
        dialog.find_element(By.XPATH, ".//button[normalize-space()='Extra Fields']").click()
        for label in ("Acme cloud directory", "API key", "Replica cap", "Labels"):
            dialog.find_element(By.XPATH, f".//label[normalize-space()='{label}']")
        secret = dialog.find_element(By.CSS_SELECTOR, "input[name=element_api_key]")
        assert secret.get_attribute("type") == "password"
        type_into(secret, API_KEY)
        type_into(dialog.find_element(By.CSS_SELECTOR, "input[name=element_root]"), acme.cloud)
        cap = dialog.find_element(By.CSS_SELECTOR, "input[name=element_replicas_cap]")
        assert cap.get_attribute("value") == "2"  # the settings model's default
        type_into(cap, 4)
        dialog.screenshot(str(screenshot_dir(tmp_path) / "airflow-connection-acme.png"))
        assert API_KEY not in dialog.text
        dialog.find_element(By.XPATH, ".//button[normalize-space()='Save']").click()
        driver.find_element(By.XPATH, "//*[normalize-space()='acme_ui']")  # listed

    # stored: the REST API masks the secret; the metadata database holds it
    shown = requests.get(f"{airflow_api.url}/api/v2/connections/acme_ui", timeout=60)
    assert shown.status_code == 200, shown.text[:500]
    assert shown.json()["conn_type"] == "modeldeploy_acme"
    assert API_KEY not in shown.text
    stored = acme.run(
        [sys.executable, "-m", "airflow", "connections", "get", "acme_ui", "-o", "json"],
        **{k: v for k, v in airflow_api.env.items() if k.startswith("AIRFLOW")},
    )
    assert stored.returncode == 0, stored.stderr[-2000:]
    (conn,) = json.loads(stored.stdout)
    extra = conn.get("extra_dejson") or json.loads(conn["extra"])
    assert extra["api_key"] == API_KEY and extra["replicas_cap"] in (4, "4")

    # the one generic hook builds the flavor's deployer from that connection
    out = acme.python(
        """
        import json
        from modeldeploy_provider.hooks.modeldeploy import ModelDeployHook
        hook = ModelDeployHook("acme_ui")
        ok, message = hook.test_connection()
        s = hook.settings
        servers = hook.get_deployer().find_model_server()
        print(json.dumps({"ok": ok, "message": message, "flavor": hook.flavor,
                          "cap": s.replicas_cap, "repr": repr(s), "servers": len(servers)}))
        """,
        AIRFLOW_CONN_ACME_UI=json.dumps({"conn_type": "modeldeploy_acme", "extra": extra}),
    )
    assert out["ok"], out["message"]
    assert out["message"] == "acme deployer is reachable: 1 model server(s), 1 running"
    assert (out["flavor"], out["cap"], out["servers"]) == ("acme", 4, 1)
    assert API_KEY not in out["repr"]


def test_prefect_block_generated_for_the_flavor(acme: Acme, tmp_path: Path) -> None:
    deploy(acme)
    out = acme.python(
        f"""
        import json
        from prefect import flow
        from prefect.blocks.core import Block
        from prefect.client.orchestration import get_client
        from prefect.testing.utilities import prefect_test_harness
        from prefect_modeldeploy.blocks import AcmeDeployer
        from prefect_modeldeploy.tasks import (
            find_model_servers, start_model_server, stop_model_server
        )

        @flow
        def restart(block_ref):
            (server,) = find_model_servers(block_ref, model_name="iris")
            stop_model_server(block_ref, server)
            return start_model_server(block_ref, server).state

        with prefect_test_harness(server_startup_timeout=180):
            block = AcmeDeployer(root={str(acme.cloud)!r}, api_key={API_KEY!r},
                                 labels={{"team": "ml"}})
            block.save("acme")
            loaded = Block.load("modeldeploy-acme-deployer/acme")
            state = restart("modeldeploy-acme-deployer/acme")
            with get_client(sync_client=True) as client:
                doc = client.read_block_document_by_name(
                    "acme", "modeldeploy-acme-deployer", include_secrets=False
                )
            print(json.dumps({{
                "type": type(loaded).__name__, "state": state, "repr": repr(loaded),
                "json": loaded.model_dump_json(), "shown": json.dumps(doc.data, default=str),
                "secret_fields": AcmeDeployer.model_json_schema()["secret_fields"],
                "settings": loaded.deployer_settings()["labels"],
            }}))
        """,
        PREFECT_HOME=str(tmp_path / "prefect-home"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_MEMO_STORE_PATH=str(tmp_path / "memo.toml"),
        PREFECT_API_URL="",
    )
    assert out["type"] == "AcmeDeployer"
    assert out["state"] == "active"
    assert out["settings"] == {"team": "ml"}
    assert set(out["secret_fields"]) == {"api_key", "tracking_uri"}
    for shown in (out["repr"], out["json"], out["shown"]):
        assert API_KEY not in shown
    assert "********" in out["shown"]
