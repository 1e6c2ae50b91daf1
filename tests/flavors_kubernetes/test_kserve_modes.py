"""The kserve flavor's whole life cycle against the emulator's KServe v0.20.0 simulator, in
both deployment modes: create, in-place update, metadata-only update, stop, start after an
update, update while stopped, and a failing update that leaves the old model serving."""

from __future__ import annotations

from typing import Any

import pytest
from modeldeploy.errors import PlatformError
from modeldeploy.status import ServiceState

from tests.flavors_kubernetes.conftest import Cluster


@pytest.mark.parametrize("mode", ["Knative", "Standard"])
def test_life_cycle_in_each_mode(cluster: Cluster, make_deployer: Any, mode: str) -> None:
    emu = cluster.requires_emulator()
    emu.kserve.default_deployment_mode = mode
    deployer = make_deployer("kserve")
    t = cluster.timeout

    server = deployer.deploy_model(cluster.config("kserve", version=1), timeout=t)
    assert server.is_running
    obj = emu.get("inferenceservices", server.name)
    assert obj["status"]["deploymentMode"] == mode

    updated = deployer.deploy_model(cluster.config("kserve", version=2), timeout=t)
    assert updated.uuid == server.uuid and updated.is_running
    # Same spec, other lineage: only our labels change, and the template rolls again.
    relabelled = deployer.deploy_model(cluster.config("kserve", version=2, run_id="r2"), timeout=t)
    assert relabelled.is_running and relabelled.config.run_id == "r2"

    deployer.stop_model_server(server.uuid, timeout=t)
    assert deployer.get_model_server(server.uuid).status.state == ServiceState.INACTIVE
    restarted = deployer.start_model_server(server.uuid, timeout=t)
    assert restarted.is_running
    if mode == "Standard":
        deployment = emu.get("deployments", f"{server.name}-predictor")
        assert deployment is not None

    deployer.stop_model_server(server.uuid, timeout=t)
    again = deployer.deploy_model(cluster.config("kserve", version=3), timeout=t)
    assert again.is_running and again.config.model_uri.endswith("/3")

    with pytest.raises(PlatformError):
        deployer.deploy_model(
            cluster.config("kserve", version=4, model_uri=cluster.bad_uri()), timeout=t
        )
    current = deployer.get_model_server(server.uuid)
    assert current.is_running and current.config.model_uri.endswith("/3")
