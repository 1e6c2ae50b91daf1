"""Every Kubernetes request of a deploy honours the deploy's timeout: a hung API server
fails it within its timeout, and nothing is written after the deadline has passed."""

from __future__ import annotations

from typing import Any

import pytest
from modeldeploy.errors import ModelDeployError

from tests.flavors_kubernetes.conftest import Cluster
from tests.k8s_emulator import KubernetesEmulator


def test_a_hung_api_server_fails_the_deploy_and_nothing_is_written_late(
    cluster: Cluster, deployer: Any, flavor: str
) -> None:
    emu: KubernetesEmulator = cluster.requires_emulator()
    emu.faults.latency = 6.0  # every answer comes later than the deploy's whole timeout
    with pytest.raises(ModelDeployError) as failure:
        deployer.deploy(cluster.config(flavor), timeout=2)
    emu.faults.latency = 0.0
    assert "timed out" in str(failure.value).lower() or "timeout" in str(failure.value).lower()
    # Without per-request deadlines the list would have waited for its late answer and
    # the create would have followed, after the deploy had run out of time.
    assert cluster.write_count() == 0
