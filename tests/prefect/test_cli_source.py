"""`modeldeploy --prefect-block NAME` finds the servers where that block put them, and says
where it looked when there are none."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from modeldeploy.cli.main import main

from tests.mlflow_flavor.records import write_stopped_server

pytestmark = [pytest.mark.usefixtures("prefect_harness")]


def test_the_cli_lists_the_servers_of_a_prefect_block(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from prefect_modeldeploy.blocks import MLflowDeployer

    home, empty = tmp_path / "home", tmp_path / "empty"
    uuid = write_stopped_server(home)
    MLflowDeployer(home=str(home)).save("cli-local", overwrite=True)
    MLflowDeployer(home=str(empty)).save("cli-empty", overwrite=True)

    assert main(["--prefect-block", "cli-local", "models", "list", "--json"]) == 0
    assert [s["uuid"] for s in json.loads(capsys.readouterr().out)] == [uuid]
    slug = MLflowDeployer.get_block_type_slug()
    assert main(["models", "describe", uuid[:8], "--prefect-block", f"{slug}/cli-local"]) == 0
    assert uuid in capsys.readouterr().out

    assert main(["--prefect-block", "cli-empty", "models", "list"]) == 0
    err = capsys.readouterr().err
    assert f"No mlflow model servers found in home {empty.resolve()}" in err
    assert "(Prefect block cli-empty)" in err

    assert main(["--prefect-block", "nosuch", "models", "list"]) == 2
    assert "no Prefect deployer block named 'nosuch'" in capsys.readouterr().err
