"""Fixtures of the CLI tests.

In-process tests call `modeldeploy.cli.main.main(argv)` against a fake in-memory flavor; the
end-to-end tests run the real console script in subprocesses against real MLflow scoring
servers on loopback, each test with its own MODELDEPLOY_HOME and SQLite tracking store.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

VENV_BIN = Path(sys.executable).parent
CONSOLE_SCRIPT = VENV_BIN / "modeldeploy"

# Variables a developer's shell may carry that would change what the CLI talks to.
_SCRUBBED = (
    "MODELDEPLOY_FLAVOR",
    "MODELDEPLOY_HOME",
    "MODELDEPLOY_NAMESPACE",
    "MODELDEPLOY_KUBE_CONTEXT",
    "MODELDEPLOY_INGRESS_URL",
    "MODELDEPLOY_IN_CLUSTER",
    "MODELDEPLOY_TIMEOUT",
    "MODELDEPLOY_DEBUG",
    "MLFLOW_TRACKING_URI",
    "MLFLOW_REGISTRY_URI",
    "KUBECONFIG",
)


def cli_command() -> list[str]:
    """The installed console script, or the module when the script is not installed."""
    if CONSOLE_SCRIPT.exists():
        return [str(CONSOLE_SCRIPT)]
    return [sys.executable, "-m", "modeldeploy.cli.main"]


def clean_env(home: Path, tracking_uri: str | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    env["MODELDEPLOY_HOME"] = str(home)
    if tracking_uri:
        env["MLFLOW_TRACKING_URI"] = tracking_uri
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


@dataclass(frozen=True)
class CLIModels:
    """Two small MLflow models on disk that answer differently for the same rows."""

    first: Path  # logistic regression: class 0 for the sample rows
    second: Path  # constant: always class 2
    columns: list[str]
    sample_rows: list[list[float]]


@pytest.fixture(scope="session")
def cli_models(tmp_path_factory: pytest.TempPathFactory) -> CLIModels:
    """Saved with an explicit signature and requirements: MLflow then skips inferring
    requirements in a subprocess, which costs seconds per model on a busy machine."""
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.datasets import load_iris
    from sklearn.dummy import DummyClassifier
    from sklearn.linear_model import LogisticRegression

    root = tmp_path_factory.mktemp("cli-models")
    features, target = load_iris(return_X_y=True, as_frame=True)
    saved = []
    for name, estimator in (
        ("logreg", LogisticRegression(max_iter=500)),
        ("constant", DummyClassifier(strategy="constant", constant=2)),
    ):
        model = estimator.fit(features, target)
        path = root / name
        mlflow.sklearn.save_model(
            model,
            path,
            signature=infer_signature(features, model.predict(features)),
            pip_requirements=["scikit-learn"],
        )
        saved.append(path)
    return CLIModels(
        first=saved[0],
        second=saved[1],
        columns=list(features.columns),
        sample_rows=features.head(3).values.tolist(),
    )


@pytest.fixture
def cli_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    return home


@pytest.fixture
def run_cli(cli_home: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run `modeldeploy ARGS...` in a subprocess with a private home; stdin is not a tty."""

    def run(
        *args: str, env: dict[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*cli_command(), *args],
            env=env or clean_env(cli_home),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return run


@pytest.fixture(autouse=True)
def _restore_modeldeploy_logger() -> Iterator[None]:
    """In-process `main()` configures the `modeldeploy` logger; undo it after each test."""
    logger = logging.getLogger("modeldeploy")
    handlers, level, propagate = list(logger.handlers), logger.level, logger.propagate
    yield
    logger.handlers[:] = handlers
    logger.setLevel(level)
    logger.propagate = propagate


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


def assert_one_error_line(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    """Non-zero exit, and stderr is exactly one `error: ...` line with no traceback."""
    assert result.returncode != 0, result
    lines = error_lines(result.stderr)
    assert len(lines) == 1, f"expected one error line, got: {result.stderr!r}"
    line = lines[0]
    assert line.startswith("error: "), line
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in line, (needle, line)
    return line


def load_json(text: str) -> Any:
    import json

    return json.loads(text)
