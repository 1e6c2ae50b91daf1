"""The `modeldeploy` CLI manages the Kubernetes flavors (issue 3 item 14): `--flavor
seldon|kserve` with `--kubeconfig`/`--context`/`--namespace`, or the environment variables,
against the emulator. The CLI runs in-process (its `main(argv)`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from modeldeploy.cli.main import main

from tests.flavors_kubernetes.conftest import Cluster, controller_of


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_the_cli_lists_stops_starts_shows_logs_and_deletes(
    cluster: Cluster,
    deployer: Any,
    flavor: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    emu = cluster.requires_emulator()
    server = deployer.deploy_model(cluster.config(flavor), timeout=cluster.timeout)
    kubeconfig = emu.write_kubeconfig(tmp_path / "config")
    common = ["--flavor", flavor, "--kubeconfig", str(kubeconfig), "--context", "emulator"]
    common += ["--namespace", "default"]
    capsys.readouterr()

    code, out, _ = _run(capsys, "models", "list", "--json", *common)
    assert code == 0
    [listed] = json.loads(out)
    assert listed["uuid"] == str(server.uuid) and listed["state"] == "active"

    code, out, _ = _run(capsys, "models", "get-url", str(server.uuid), *common)
    assert code == 0 and out.strip() == server.prediction_url

    assert _run(capsys, "models", "stop", str(server.uuid), *common)[0] == 0
    assert deployer.get_model_server(server.uuid).status.state.value == "inactive"

    # The same through environment variables only.
    monkeypatch.setenv("MODELDEPLOY_FLAVOR", flavor)
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.setenv("MODELDEPLOY_NAMESPACE", "default")
    assert _run(capsys, "models", "start", str(server.uuid))[0] == 0
    assert deployer.get_model_server(server.uuid).is_running

    controller = controller_of(emu, flavor)
    controller.append_log(server.name, "served one request", container=server.container_name)
    code, out, _ = _run(capsys, "models", "logs", str(server.uuid), "--tail", "1")
    assert code == 0 and out.strip() == "served one request"

    code, out, _ = _run(capsys, "models", "delete", str(server.uuid), "-y")
    assert code == 0
    assert deployer.find_model_server(pipeline_name=cluster.pipeline) == []
    assert cluster.managed("secrets") == []


def test_the_cli_reports_a_bad_namespace_as_one_line(
    cluster: Cluster, flavor: str, capsys: pytest.CaptureFixture[str]
) -> None:
    emu = cluster.requires_emulator()
    code, out, err = _run(
        capsys, "models", "list", "--flavor", flavor, "--namespace", "Bad_NS", "--kubeconfig", "x"
    )
    assert code != 0 and out == ""
    assert "namespace" in err and len(err.strip().splitlines()) == 1
    assert len(emu.requests) == 0
