"""The collection in a real Prefect server and UI.

Starts `prefect server start` on a free loopback port with a private SQLite PREFECT_HOME,
registers the block types with `prefect block register -m prefect_modeldeploy`, checks
through the server's API that every block type is listed with its fields, then drives
headless Chromium to each block's creation form and looks for our fields on the page.

Screenshots go to a temporary folder, or to docs/images/ with
MODELDEPLOY_UPDATE_SCREENSHOTS=1 (how the guide's images are made).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prefect_modeldeploy.blocks import BLOCK_TYPES

from tests.browser import (
    CHROMEDRIVER,
    CHROMIUM,
    chromium_available,
    headless_chromium,
    screenshot_dir,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

PREFECT = str(Path(sys.executable).with_name("prefect"))
STARTUP_TIMEOUT = 150.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A real `prefect server start` on SQLite; yields its URLs and a client environment."""
    import requests

    home = tmp_path_factory.mktemp("prefect-server")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(home / "home"),
        PREFECT_API_DATABASE_CONNECTION_URL=f"sqlite+aiosqlite:///{home / 'prefect.db'}",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_MEMO_STORE_PATH=str(home / "memo_store.toml"),
        PREFECT_SERVER_API_HOST="127.0.0.1",
        PREFECT_SERVER_API_PORT=str(port),
        PREFECT_UI_API_URL=f"{url}/api",
        PREFECT_SERVER_LOGGING_LEVEL="WARNING",
    )
    log = (home / "server.log").open("w")
    server = subprocess.Popen(
        [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if server.poll() is not None:
                pytest.fail(f"prefect server exited: {(home / 'server.log').read_text()[-3000:]}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{url}/api/health", timeout=2).json() is True:
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"prefect server not healthy after {STARTUP_TIMEOUT:g}s")
            time.sleep(0.25)  # nothing to wait on but the socket: poll briefly
        yield {"url": url, "api": f"{url}/api", "env": {**env, "PREFECT_API_URL": f"{url}/api"}}
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)
        log.close()


@pytest.fixture(scope="module")
def registered(prefect_server: dict[str, Any]) -> dict[str, Any]:
    """`prefect block register -m prefect_modeldeploy` against the running server."""
    done = subprocess.run(
        [PREFECT, "block", "register", "-m", "prefect_modeldeploy"],
        env=prefect_server["env"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    prefect_server["register_output"] = done.stdout
    return prefect_server


@pytest.fixture(scope="module")
def schemas(registered: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Block type and newest schema of each of our slugs, as the API serves them to the UI."""
    import requests

    api = registered["api"]
    out = {}
    for cls in BLOCK_TYPES:
        slug = cls.get_block_type_slug()
        response = requests.get(f"{api}/block_types/slug/{slug}", timeout=10)
        assert response.status_code == 200, f"{slug} is not registered: {response.text}"
        block_type = response.json()
        found = requests.post(
            f"{api}/block_schemas/filter",
            json={"block_schemas": {"block_type_id": {"any_": [block_type["id"]]}}},
            timeout=10,
        ).json()
        assert found, f"no schema registered for {slug}"
        out[slug] = {"type": block_type, "schema": found[0]}
    return out


def check_block_register_reports_every_block_type(registered: dict[str, Any]) -> None:
    output = " ".join(registered["register_output"].split())
    assert f"Successfully registered {len(BLOCK_TYPES)} blocks" in output
    for cls in BLOCK_TYPES:
        assert cls.get_block_type_name() in output


def check_api_lists_our_block_types_with_their_fields(
    registered: dict[str, Any], schemas: dict[str, dict[str, Any]]
) -> None:
    import requests

    listed = requests.post(f"{registered['api']}/block_types/filter", json={}, timeout=10).json()
    slugs = {t["slug"] for t in listed}
    assert {cls.get_block_type_slug() for cls in BLOCK_TYPES} <= slugs

    for cls in BLOCK_TYPES:
        entry = schemas[cls.get_block_type_slug()]
        block_type, fields = entry["type"], entry["schema"]["fields"]
        assert block_type["name"] == cls.get_block_type_name()
        assert block_type["description"] == cls.get_description()
        assert block_type["documentation_url"] == str(cls._documentation_url)
        assert f"{cls.__name__}.load(" in block_type["code_example"]
        assert set(fields["properties"]) == set(cls.model_fields)
        for name, prop in fields["properties"].items():
            assert prop.get("description"), f"{cls.__name__}.{name} has no description"
        assert sorted(fields.get("secret_fields", [])) == sorted(
            cls.model_json_schema().get("secret_fields", [])
        )
        assert entry["schema"]["checksum"] == cls._calculate_schema_checksum()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium with a fresh profile; None when Chromium is not installed."""
    if not chromium_available():
        yield None
        return
    with headless_chromium() as driver:
        yield driver


def check_browser_opens_each_block_creation_form_and_sees_our_fields(
    registered: dict[str, Any],
    schemas: dict[str, dict[str, Any]],
    browser: Any,
    tmp_path: Path,
) -> None:
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    shots = screenshot_dir(tmp_path)
    for cls in BLOCK_TYPES:
        slug = cls.get_block_type_slug()
        properties = schemas[slug]["schema"]["fields"]["properties"]
        wanted = [cls.get_block_type_name(), *(p["title"] for p in properties.values())]
        browser.get(f"{registered['url']}/blocks/catalog/{slug}/create")

        def shows_form(driver: Any, wanted: list[str] = wanted) -> bool:
            text = driver.find_element(By.TAG_NAME, "body").text
            return all(label in text for label in wanted)

        try:
            WebDriverWait(browser, 30, poll_frequency=0.2).until(shows_form)
        except TimeoutException:
            text = browser.find_element(By.TAG_NAME, "body").text
            missing = [label for label in wanted if label not in text]
            browser.save_screenshot(str(tmp_path / f"failed-{slug}.png"))
            pytest.fail(f"{slug} form lacks {missing}; page text: {text[:1500]}")
        assert browser.save_screenshot(str(shots / f"prefect-{slug}.png"))


def check_a_block_created_in_the_ui_keeps_its_secret_secret(
    registered: dict[str, Any], browser: Any, tmp_path: Path
) -> None:
    """Fill the S3 form in the browser and create the block: the UI and the API show the
    secret masked afterwards, while a client that asks for secrets gets it back."""
    import requests
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    slug = "modeldeploy-s3-storage-credentials"
    secret = "ui-typed-secret-7e3a-must-stay-secret"
    browser.get(f"{registered['url']}/blocks/catalog/{slug}/create")
    wait = WebDriverWait(browser, 30, poll_frequency=0.2)

    def field(label: str) -> Any:
        return wait.until(
            lambda d: d.find_element(
                By.XPATH,
                f"//*[normalize-space(text())='{label}']/ancestor::*[.//textarea or .//input]"
                "[1]//*[self::textarea or self::input]",
            )
        )

    field("Block Name").send_keys("typed-in-the-ui")
    field("AWS access key ID").send_keys("AKIA-UI-TYPED")
    field("AWS secret access key").send_keys(secret)
    browser.find_element(By.XPATH, "//button[normalize-space()='Create']").click()
    wait.until(lambda d: "/blocks/block/" in d.current_url)
    wait.until(lambda d: "typed-in-the-ui" in d.find_element(By.TAG_NAME, "body").text)
    page = browser.find_element(By.TAG_NAME, "body").text
    browser.save_screenshot(str(screenshot_dir(tmp_path) / f"prefect-{slug}-saved.png"))
    assert secret not in page

    base = f"{registered['api']}/block_types/slug/{slug}/block_documents/name/typed-in-the-ui"
    shown = requests.get(base, timeout=10).json()["data"]
    assert shown["aws_secret_access_key"] != secret and "*" in shown["aws_secret_access_key"]
    revealed = requests.get(base, params={"include_secrets": "true"}, timeout=10).json()["data"]
    assert revealed["aws_secret_access_key"] == secret
    assert revealed["aws_access_key_id"] == "AKIA-UI-TYPED"


def test_prefect_ui(
    registered: dict[str, Any],
    schemas: dict[str, dict[str, Any]],
    browser: Any,
    tmp_path: Path,
) -> None:
    """One test, so that `pytest -n auto` starts one Prefect server, not one per worker."""
    check_block_register_reports_every_block_type(registered)
    check_api_lists_our_block_types_with_their_fields(registered, schemas)
    if browser is None:
        pytest.skip(
            f"API checks passed; browser checks need Chromium ({CHROMIUM}, {CHROMEDRIVER}), "
            "which is not installed: run `make browser`"
        )
    check_browser_opens_each_block_creation_form_and_sees_our_fields(
        registered, schemas, browser, tmp_path
    )
    check_a_block_created_in_the_ui_keeps_its_secret_secret(registered, browser, tmp_path)
