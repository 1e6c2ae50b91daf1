"""Fixtures for the Prefect collection: a private Prefect home, one test harness per process,
deployer blocks over a private MODELDEPLOY_HOME, and run-log access.

Safe under `pytest -n auto`: every xdist worker is its own process, so it gets its own
temporary PREFECT_HOME, memo store and harness (SQLite database, API server on a free
loopback port); every test gets its own modeldeploy state directory and tracking store.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.k8s_emulator.fixtures import k8s_emulator  # noqa: F401 - fixture for the k8s tests

# Before anything imports prefect: its settings are read from the environment at import.
_ROOT = Path(tempfile.mkdtemp(prefix="modeldeploy-prefect-tests-"))
atexit.register(shutil.rmtree, _ROOT, True)
PREFECT_ENV = {
    "PREFECT_HOME": str(_ROOT / "prefect-home"),
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_MEMO_STORE_PATH": str(_ROOT / "memo_store.toml"),
    "PREFECT_SERVER_LOGGING_LEVEL": "WARNING",
    "PREFECT_LOGGING_LEVEL": "INFO",
}
os.environ.update(PREFECT_ENV)
for _name in ("PREFECT_API_URL", "PREFECT_API_KEY", "PREFECT_PROFILE"):
    os.environ.pop(_name, None)
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

HARNESS_STARTUP_TIMEOUT = 180  # the machine may be busy with the rest of the suite


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """`prefect_test_harness()` once per process: a temporary SQLite-backed API server."""
    from prefect.settings import (
        PREFECT_HOME,
        PREFECT_MEMO_STORE_PATH,
        PREFECT_SERVER_ANALYTICS_ENABLED,
        temporary_settings,
    )
    from prefect.testing.utilities import prefect_test_harness

    # Applies even if another test group imported prefect before this conftest ran.
    with (
        temporary_settings(
            updates={
                PREFECT_HOME: PREFECT_ENV["PREFECT_HOME"],
                PREFECT_MEMO_STORE_PATH: PREFECT_ENV["PREFECT_MEMO_STORE_PATH"],
                PREFECT_SERVER_ANALYTICS_ENABLED: False,
            }
        ),
        prefect_test_harness(server_startup_timeout=HARNESS_STARTUP_TIMEOUT),
    ):
        yield


@pytest.fixture
def md_state(tmp_path: Path) -> Path:
    home = tmp_path / "modeldeploy-home"
    home.mkdir()
    return home


@pytest.fixture
def mlflow_block(md_state: Path) -> Iterator[Any]:
    """An MLflowDeployer block over a private state directory and SQLite registry; every
    model server left in it is force-deleted afterwards."""
    from prefect_modeldeploy.blocks import MLflowDeployer

    block = MLflowDeployer(home=str(md_state), tracking_uri=f"sqlite:///{md_state / 'mlflow.db'}")
    yield block
    deployer = block.get_deployer()
    for server in deployer.find_model_server():
        with contextlib.suppress(Exception):
            server.delete(force=True)
