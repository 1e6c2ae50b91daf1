"""The engine's local state directory (`MODELDEPLOY_HOME`, default `~/.modeldeploy`)."""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "MODELDEPLOY_HOME"


def default_home() -> Path:
    return Path(os.environ.get(HOME_ENV) or Path.home() / ".modeldeploy").expanduser()


def default_tracking_uri(home: Path | None = None) -> str:
    """SQLite tracking and registry store under the home directory."""
    home = (home or default_home()).resolve()
    home.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{home / 'mlflow.db'}"
