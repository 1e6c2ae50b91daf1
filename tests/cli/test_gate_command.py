"""`modeldeploy gate`: the champion comparison's direction on the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from modeldeploy.cli import main as cli

from tests.cli.conftest import _SCRUBBED


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A registry whose `house` champion has rmse 56.5."""
    from modeldeploy.registry import ModelRegistry

    for var in _SCRUBBED:
        monkeypatch.delenv(var, raising=False)
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    registry = ModelRegistry(tracking)
    version = registry.register_candidate("house", "s3://models/house/1", {"rmse": 56.5})
    registry.promote("house", version.version)
    return tracking


def test_gate_infers_lower_is_better_for_rmse_and_rejects_a_worse_one(
    capsys: pytest.CaptureFixture[str], uri: str
) -> None:
    common = ["--tracking-uri", uri, "gate", "house", "--champion-metric", "rmse"]
    code, out, _ = run(capsys, *common, "--metric", "rmse=60.13")
    assert code == 1
    assert "rmse 60.13 vs champion 56.5, lower is better (worse by 3.63" in out
    code, out, _ = run(capsys, *common, "--metric", "rmse=50", "--json")
    assert code == 0
    decision = json.loads(out)
    assert decision["passed"] and decision["champion_version"] == "1"


def test_gate_refuses_an_unknown_metric_without_direction(
    capsys: pytest.CaptureFixture[str], uri: str
) -> None:
    argv = ["--tracking-uri", uri, "gate", "house", "--champion-metric", "uplift"]
    code, _, err = run(capsys, *argv, "--metric", "uplift=2")
    assert code == 2
    assert "--direction" in err and "direction='minimize'" in err
    code, out, _ = run(capsys, *argv, "--metric", "uplift=2", "--direction", "maximize")
    assert code == 0 and "no champion uplift to beat (higher is better)" in out
