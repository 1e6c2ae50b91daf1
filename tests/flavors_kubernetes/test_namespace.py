"""The namespace, when none is configured, is chosen as kubectl chooses it: the kubeconfig
context's namespace, else `default` (k8s.io/client-go tools/clientcmd, Namespace())."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from modeldeploy.flavors import create_deployer

from tests.flavors_kubernetes.conftest import Cluster


def _with_second_context(doc: dict[str, Any]) -> dict[str, Any]:
    """Add context `bare` (no namespace) beside the emulator's own."""
    bare = {"name": "bare", "context": {"cluster": "emulator", "user": "emulator"}}
    return {**doc, "contexts": [*doc["contexts"], bare]}


def test_namespace_comes_from_the_kubeconfig_context(cluster: Cluster, tmp_path: Path) -> None:
    emu = cluster.requires_emulator()
    emu.create_namespace("team-a")
    doc = _with_second_context(emu.kubeconfig_dict(namespace="team-a"))

    with create_deployer("kserve", {"kubeconfig": doc}) as deployer:
        assert deployer.namespace == "team-a"
        server = deployer.deploy_model(cluster.config("kserve"), timeout=cluster.timeout)
        assert server.namespace == "team-a"
        assert emu.get("inferenceservices", server.name, "team-a") is not None
        server.delete(force=True)

    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(doc))
    with create_deployer("seldon", {"kubeconfig_path": str(path)}) as deployer:
        assert deployer.namespace == "team-a"
    with create_deployer("seldon", {"kubeconfig_path": str(path), "context": "bare"}) as d:
        assert d.namespace == "default"  # the context names none
    with create_deployer("seldon", {"kubeconfig": doc, "namespace": "prod"}) as deployer:
        assert deployer.namespace == "prod"  # configured wins
