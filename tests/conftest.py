"""Fixtures shared by every test group: saved models, a private MODELDEPLOY_HOME, a deployer.

Each test gets its own state directory and SQLite tracking store, and servers pick free
ports, so the suite runs in parallel (`pytest -n auto`). Every server a test leaves behind
is force-deleted at teardown: no daemon outlives the test that started it.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")


@dataclass(frozen=True)
class SavedModels:
    """Small MLflow models on disk: two good ones that predict differently, one broken."""

    first: Path
    second: Path
    broken: Path
    not_a_model: Path
    sample_rows: list[list[float]]
    columns: list[str]


@pytest.fixture(scope="session")
def saved_models(tmp_path_factory: pytest.TempPathFactory) -> SavedModels:
    import mlflow.sklearn
    from sklearn.datasets import load_iris
    from sklearn.dummy import DummyClassifier
    from sklearn.linear_model import LogisticRegression

    root = tmp_path_factory.mktemp("models")
    features, target = load_iris(return_X_y=True, as_frame=True)
    example = features.head(3)
    # Naming the requirements skips MLflow's import-capturing subprocess (seconds each).
    save = functools.partial(
        mlflow.sklearn.save_model,
        input_example=example,
        pip_requirements=mlflow.sklearn.get_default_pip_requirements(),
    )
    first = root / "logreg"
    save(LogisticRegression(max_iter=500).fit(features, target), first)
    # Always predicts class 2, so a test can tell which model answered.
    second = root / "constant"
    save(DummyClassifier(strategy="constant", constant=2).fit(features, target), second)
    broken = root / "broken"
    save(DummyClassifier().fit(features, target), broken)
    for weights in broken.glob("model.*"):  # model.skops or model.pkl, whichever was written
        weights.write_bytes(b"this is not a model")
    not_a_model = root / "not-a-model"
    not_a_model.mkdir()
    (not_a_model / "README").write_text("no MLmodel here")
    return SavedModels(
        first=first,
        second=second,
        broken=broken,
        not_a_model=not_a_model,
        sample_rows=example.values.tolist(),
        columns=list(example.columns),
    )


@pytest.fixture
def md_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private MODELDEPLOY_HOME; every server left in it is force-deleted afterwards."""
    home = tmp_path / "modeldeploy-home"
    home.mkdir()
    monkeypatch.setenv("MODELDEPLOY_HOME", str(home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    yield home
    from modeldeploy.flavors.mlflow.deployer import MLflowModelDeployer

    for server in MLflowModelDeployer({"home": home}).find_model_server():
        with contextlib.suppress(Exception):
            server.delete(force=True)


@pytest.fixture
def tracking_uri(md_home: Path) -> str:
    return f"sqlite:///{md_home / 'mlflow.db'}"


@pytest.fixture
def mlflow_deployer(md_home: Path, tracking_uri: str):
    from modeldeploy.flavors.mlflow.deployer import MLflowModelDeployer

    return MLflowModelDeployer({"home": md_home, "tracking_uri": tracking_uri})
