"""`modeldeploy --airflow-conn ID` finds the servers where that connection put them, and
says where it looked when there are none."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from modeldeploy.cli.main import main

from tests.mlflow_flavor.records import write_stopped_server


def test_the_cli_lists_the_servers_of_an_airflow_connection(
    set_connection: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home, empty = tmp_path / "home", tmp_path / "empty"
    uuid = write_stopped_server(home)
    set_connection("md_local", "modeldeploy_mlflow", extra={"home": str(home)})
    set_connection("md_empty", "modeldeploy_mlflow", extra={"home": str(empty)})

    assert main(["--airflow-conn", "md_local", "models", "list", "--json"]) == 0
    assert [s["uuid"] for s in json.loads(capsys.readouterr().out)] == [uuid]

    assert main(["models", "list", "--airflow-conn", "md_empty"]) == 0
    err = capsys.readouterr().err
    assert f"No mlflow model servers found in home {empty.resolve()}" in err
    assert "(Airflow connection md_empty)" in err

    assert main(["--airflow-conn", "md_missing", "models", "list"]) == 2
    err = capsys.readouterr().err
    assert "Airflow connection 'md_missing'" in err and "is not defined" in err
