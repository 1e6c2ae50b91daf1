"""The `modeldeploy` CLI manages the Kubernetes flavors (issue 3 item 14) and their rollouts
(issue 12 item 5): `--flavor seldon|kserve|seldon2` with `--kubeconfig`/`--context`/
`--namespace`, or the environment variables, against the emulator. The CLI runs
in-process (its `main(argv)`)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from modeldeploy.cli.main import main
from modeldeploy.progressive.runner import advance_rollout, begin_rollout, check_rollout
from modeldeploy.status import ServiceState
from modeldeploy.traffic import CHALLENGER, CHAMPION
from modeldeploy.waiting import Deadline

from tests.flavors_kubernetes.conftest import Cluster, controller_of

#: no service-metric rules: the emulator runs no Prometheus (the analysis is tested apart)
NO_RULES = {"rules": [], "min_requests": 0}
#: Seldon 1 splits in Istio, so it needs the gateway's address; no request is sent to it
INGRESS = os.environ.get("MODELDEPLOY_TEST_SELDON_INGRESS", "http://127.0.0.1:9")


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


def _champion_alone(cluster: Cluster, server: Any) -> Any:
    """The traffic once the champion alone serves again (bounded; writes return at once)."""
    deadline = Deadline(cluster.timeout)
    server.wait_for_state(ServiceState.ACTIVE, deadline)
    while True:
        status = server.traffic_status()
        alone = [v.name for v in status.variants] == [CHAMPION] and status.variants[0].ready
        if alone or deadline.expired:
            return status
        time.sleep(0.1)


def test_the_rollout_cli_shows_aborts_and_promotes_a_canary(
    cluster: Cluster,
    make_deployer: Any,
    flavor: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`modeldeploy rollout status|abort|promote` (in-process `main`) on a rollout another
    caller started, the same for every flavor with traffic control; the state is found where
    the flavor keeps it (a ConfigMap on the cluster). Runs unchanged on a real cluster."""
    monkeypatch.setenv("MODELDEPLOY_HOME", str(tmp_path / "home"))
    deployer = make_deployer(flavor, ingress_base_url=INGRESS)
    common = ["--flavor", flavor, "--namespace", cluster.namespace, "--ingress-url", INGRESS]
    if cluster.emulator is not None:
        kubeconfig = cluster.emulator.write_kubeconfig(tmp_path / "kc")
        common += ["--kubeconfig", str(kubeconfig), "--context", "emulator"]
    else:  # pragma: no cover - real clusters only
        common += ["--kubeconfig", str(cluster.kubeconfig_path)]
    champion = deployer.deploy_model(cluster.config(flavor, version=1), timeout=cluster.timeout)
    name = champion.config.model_name

    def start(version: int) -> None:
        canary = {"kind": "canary", "percents": [30], "bake_seconds": 600}
        parsed, analysis = check_rollout(deployer, canary, NO_RULES)
        config = deployer.parse_config(cluster.config(flavor, version=version))
        server = deployer.get_model_server(champion.uuid)
        state = begin_rollout(deployer, server, config, parsed, analysis, timeout=cluster.timeout)
        while state.phase == "starting":
            state = advance_rollout(deployer, name)

    def cli(*argv: str) -> tuple[int, Any]:
        capsys.readouterr()
        code = main(["rollout", *argv, name, "--json", *common])
        return code, json.loads(capsys.readouterr().out)

    start(2)
    code, shown = cli("status")
    assert code == 0 and (shown["phase"], shown["step_index"]) == ("baking", 0)
    assert deployer.get_model_server(champion.uuid).traffic_status().weight_of(CHALLENGER) == 30
    code, aborted = cli("abort")
    assert code == 0 and aborted["phase"] == "rolled_back"
    server = deployer.get_model_server(champion.uuid)
    [alone] = _champion_alone(cluster, server).variants
    assert (alone.weight, server.config.model_version) == (100, "1")

    start(3)
    code, promoted = cli("promote")
    assert code == 0 and promoted["phase"] == "succeeded", promoted["message"]
    server = deployer.get_model_server(champion.uuid)
    [alone] = _champion_alone(cluster, server).variants
    assert (alone.weight, alone.model_version, server.config.model_version) == (100, "3", "3")
    code, shown = cli("status")
    assert code == 0 and shown["phase"] == "succeeded"
