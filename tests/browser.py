"""Headless Chromium for the UI checks of the Airflow and Prefect forms.

Debian's `chromium` and `chromedriver` (installed by `make browser`), driven by selenium,
with the flags that keep Chromium off the network on these machines. Screenshots go to
the test's temp directory, or into `docs/images` with MODELDEPLOY_UPDATE_SCREENSHOTS=1.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
DOCS_IMAGES = Path(__file__).resolve().parents[1] / "docs" / "images"


def chromium_available() -> bool:
    return Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()


@contextlib.contextmanager
def headless_chromium(window_size: str = "1280,1500") -> Iterator[Any]:
    """A selenium driver on a fresh profile, removed afterwards."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = Path(tempfile.mkdtemp(prefix="chromium-profile-"))
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--window-size={window_size}",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def screenshot_dir(tmp_path: Path) -> Path:
    """Where a UI test saves its screenshots: docs/images when asked to refresh them."""
    if os.environ.get("MODELDEPLOY_UPDATE_SCREENSHOTS") == "1":
        DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
        return DOCS_IMAGES
    return tmp_path
