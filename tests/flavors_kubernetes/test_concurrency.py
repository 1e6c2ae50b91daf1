"""Concurrent deploys of one (pipeline, step, model), as from overlapping DAG runs.

Four processes deploy the same model at once, ten times over: every time exactly one
server exists afterwards and every caller was handed that server and its URL. Processes,
not threads, so nothing is shared but the API server.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from typing import Any

import pytest

from tests.flavors_kubernetes.conftest import PLURAL, Cluster

PROCESSES = 4
TRIALS = 10

_barrier: Any = None


def _init(barrier: Any) -> None:
    global _barrier
    _barrier = barrier


def _deploy(flavor: str, settings: dict[str, Any], config: dict[str, Any]) -> tuple[str, str]:
    from modeldeploy.flavors import create_deployer

    deployer = create_deployer(flavor, settings)
    try:
        _barrier.wait(30)  # all four write at the same moment
        server = deployer.deploy_model(config, timeout=60)
        return str(server.uuid), str(server.prediction_url)
    finally:
        deployer.close()


@pytest.fixture(scope="module")
def pool() -> Iterator[Any]:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(PROCESSES)
    with ctx.Pool(PROCESSES, initializer=_init, initargs=(barrier,)) as p:
        yield p


@pytest.mark.parametrize("flavor", ["seldon", "kserve"])
def test_concurrent_deploys_converge_on_one_server_and_one_url(
    cluster: Cluster, flavor: str, pool: Any
) -> None:
    emu = cluster.requires_emulator()
    settings = cluster.settings()
    for trial in range(TRIALS):
        config = cluster.config(flavor, model=f"race{trial}")
        results = pool.starmap(_deploy, [(flavor, settings, config)] * PROCESSES)

        servers = [
            o
            for o in emu.list_objects(PLURAL[flavor], cluster.namespace)
            if o["metadata"]["labels"].get("modeldeploy.io/model") == config["model_name"]
        ]
        assert len(servers) == 1, (trial, [s["metadata"]["name"] for s in servers])
        [(uuid, url)] = set(results)  # every caller got the same server and URL
        assert servers[0]["metadata"]["labels"]["modeldeploy.io/uuid"] == uuid
        from modeldeploy.flavors import create_deployer

        with create_deployer(flavor, settings) as deployer:
            assert deployer.get_model_server(uuid).prediction_url == url
    assert len(emu.list_objects("secrets", cluster.namespace)) == 1
