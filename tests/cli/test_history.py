"""`modeldeploy history`: a model's records read back from a real MLflow registry."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from modeldeploy.cli import main as cli

from tests.cli.conftest import _SCRUBBED, CLIModels

SECRET = "history-password-never-shown"


def test_history_prints_the_records_as_a_table_and_as_json(
    cli_models: CLIModels,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from modeldeploy.records import build_record
    from modeldeploy.registry import ModelRegistry

    for var in _SCRUBBED:
        monkeypatch.delenv(var, raising=False)
    uri = f"sqlite:///{tmp_path / 'registry.db'}"
    registry = ModelRegistry(uri)
    for path in (cli_models.first, cli_models.second):
        registry.register_candidate("iris", str(path), {"accuracy": 0.9})
    start = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    steps = [
        ("deployed", "1", "1", "gate passed: accuracy 0.9 >= 0.9", "run-1"),
        ("deployed", "2", "2", "gate passed: accuracy 0.95 vs champion 0.9", "run-2"),
        ("rolled_back", "2", "1", "rolled back on request " + "x" * 200, "run-3"),
    ]
    for minute, (action, version, serving, reason, run) in enumerate(steps):
        record = build_record(
            action,  # type: ignore[arg-type]
            "iris",
            version=version,
            serving_version=serving,
            previous_version=None,
            reason=reason,
            run_id=run,
            at=start + timedelta(minutes=minute),
        ).model_copy(
            update={"pipeline_name": "train", "url": f"http://bob:{SECRET}@127.0.0.1:9/invocations"}
        )
        registry.add_record(record)

    base = ["--flavor", "mlflow", "--home", str(tmp_path / "home"), "--tracking-uri", uri]
    code = cli.main(["history", "iris", *base])
    out, _ = capsys.readouterr()
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["TIME", "VERSION", "ACTION", "SERVING", "REASON", "PIPELINE", "RUN"]
    assert [line.split()[:5] for line in lines[1:]] == [
        ["2026-12-01", "08:00:00", "1", "deployed", "1"],
        ["2026-12-01", "08:01:00", "2", "deployed", "2"],
        ["2026-12-01", "08:02:00", "2", "rolled_back", "1"],
    ]
    assert lines[3].endswith("...  train/run-3")  # a long reason is cut in the table
    assert "vs champion 0.9" in lines[2]

    code = cli.main(["history", "iris", "--json", "--limit", "2", *base])
    out, _ = capsys.readouterr()
    rows = json.loads(out)
    assert code == 0 and [(r["action"], r["run_id"]) for r in rows] == [
        ("deployed", "run-2"),
        ("rolled_back", "run-3"),
    ]
    assert rows[1]["reason"].endswith("x" * 200)  # whole in JSON
    assert SECRET not in out and rows[0]["url"].endswith("@127.0.0.1:9/invocations")

    code = cli.main(["history", "unknown-model", *base])
    out, _ = capsys.readouterr()
    assert code == 0 and "no deployment of unknown-model is recorded" in out

    code = cli.main(["history", "iris", "--limit", "-1", *base])
    _, err = capsys.readouterr()
    assert code == 2 and "--limit: must be zero or more" in err
