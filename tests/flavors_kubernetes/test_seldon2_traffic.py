"""Progressive delivery on Seldon Core 2 through the flavor's TrafficControl: the challenger
is a second Model, the split and the mirror are an Experiment whose default is the champion.

Contract tests: they use only the flavor's API and the cluster's objects, so they run
unchanged against a real cluster (MODELDEPLOY_TEST_KUBECONFIG); what only the emulator can
show (the mesh's routing table) is checked when it is there.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from modeldeploy.errors import InvalidConfigError, ModelDeployError
from modeldeploy.traffic import CHALLENGER, CHAMPION, TrafficControl, TrafficStatus
from modeldeploy.waiting import Deadline

from tests.flavors_kubernetes.conftest import Cluster

FLAVOR = "seldon2"


def _until(
    server: Any, ok: Callable[[TrafficStatus], bool], timeout: float, what: str
) -> TrafficStatus:
    """Poll `traffic_status()` (the documented way to read a TrafficControl) until `ok`."""
    deadline = time.monotonic() + timeout
    while True:
        status = server.traffic_status()
        if ok(status):
            return status
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached in {timeout}s: {status}")
        time.sleep(0.05)


def _ready(name: str) -> Callable[[TrafficStatus], bool]:
    return lambda s: any(v.name == name and v.ready for v in s.variants)


@pytest.fixture
def champion(cluster: Cluster, make_deployer: Any) -> Any:
    deployer = make_deployer(FLAVOR)
    server = deployer.deploy_model(cluster.config(FLAVOR, version=1), timeout=cluster.timeout)
    assert isinstance(server, TrafficControl)
    return server


def _live(obj: dict[str, Any] | None) -> dict[str, Any] | None:
    """`obj` unless it is gone or going (Seldon's finalizers hold deleted objects until the
    scheduler has let go of them)."""
    return None if obj is None or obj["metadata"].get("deletionTimestamp") else obj


def _experiment(cluster: Cluster, server: Any) -> dict[str, Any] | None:
    found = [
        o for o in cluster.managed("experiments") if o["metadata"]["name"] == server.experiment_name
    ]
    return _live(found[0]) if found else None


def _mesh_routes_to(cluster: Cluster, model: str, uri: str) -> bool:
    """The emulated mesh sends every `Seldon-Model: <model>` request to `uri` (awaited)."""
    emu = cluster.requires_emulator()

    def only() -> bool:
        routes = emu.seldon2.routes(cluster.namespace).get(model) or []
        return [(r.model_uri, r.weight) for r in routes] == [(uri, 100)]

    return emu.wait_for(only, timeout=cluster.timeout)


def test_canary_steps_then_promote_leave_one_model_with_the_challengers_spec(
    cluster: Cluster, champion: Any
) -> None:
    url = champion.prediction_url
    champion.add_challenger(champion.deployer.parse_config(cluster.config(FLAVOR, version=2)))
    status = _until(champion, _ready(CHALLENGER), cluster.timeout, "challenger ready")
    assert status.weight_of(CHALLENGER) == 0 and _experiment(cluster, champion) is None

    for percent in (10, 50):
        champion.set_traffic(percent)
        status = _until(
            champion,
            lambda s, p=percent: s.weight_of(CHALLENGER) == p,
            cluster.timeout,
            f"{percent}%",
        )
        assert status.weight_of(CHAMPION) == 100 - percent
        spec = _experiment(cluster, champion)["spec"]
        assert spec["default"] == champion.name  # the champion's own requests are split
        assert {c["name"]: c["weight"] for c in spec["candidates"]} == {
            champion.name: 100 - percent,
            champion.challenger_name: percent,
        }
        if cluster.emulator is not None:  # the mesh routes the champion's name by weight
            routes = cluster.emulator.seldon2.routes(cluster.namespace)[champion.name]
            assert {r.model: r.weight for r in routes} == {
                champion.name: 100 - percent,
                champion.challenger_name: percent,
            }

    champion.promote_challenger()

    status = champion.traffic_status()
    assert [v.name for v in status.variants] == [CHAMPION]
    assert status.variants[0].model_uri == cluster.good_uri(FLAVOR, 2)
    champion.wait_until_ready(Deadline(cluster.timeout))
    assert champion.config.model_uri == cluster.good_uri(FLAVOR, 2)
    assert champion.prediction_url == url
    assert _experiment(cluster, champion) is None
    assert _live(champion.resources.get(champion.challenger_name)) is None  # the challenger went
    [found] = champion.deployer.find_model_server(pipeline_name=cluster.pipeline)
    assert found.uuid == champion.uuid and found.config.model_version == "2"
    if cluster.emulator is not None:  # once Seldon has stopped the experiment
        assert _mesh_routes_to(cluster, champion.name, cluster.good_uri(FLAVOR, 2))


def test_abort_puts_all_traffic_back_and_removes_the_challenger(
    cluster: Cluster, champion: Any
) -> None:
    champion.add_challenger(champion.deployer.parse_config(cluster.config(FLAVOR, version=2)))
    _until(champion, _ready(CHALLENGER), cluster.timeout, "challenger ready")
    champion.set_traffic(30)
    _until(champion, lambda s: s.weight_of(CHALLENGER) == 30, cluster.timeout, "30%")

    champion.remove_challenger()

    if cluster.emulator is not None:  # returned once Seldon stopped routing by the Experiment
        routes = cluster.emulator.seldon2.routes(cluster.namespace).get(champion.name) or []
        assert [(r.model_uri, r.weight) for r in routes] == [(cluster.good_uri(FLAVOR, 1), 100)]
    status = champion.traffic_status()
    assert [(v.name, v.weight, v.ready) for v in status.variants] == [(CHAMPION, 100, True)]
    assert status.variants[0].model_uri == cluster.good_uri(FLAVOR, 1)
    assert champion.experiments.get(champion.experiment_name) is None  # gone, not going
    assert _live(champion.resources.get(champion.challenger_name)) is None


def test_shadow_mirrors_the_champions_requests_to_the_challenger(
    cluster: Cluster, champion: Any
) -> None:
    champion.add_challenger(champion.deployer.parse_config(cluster.config(FLAVOR, version=2)))
    _until(champion, _ready(CHALLENGER), cluster.timeout, "challenger ready")

    champion.set_traffic(0, mirror_percent=100)

    status = _until(champion, lambda s: s.mirror_percent == 100, cluster.timeout, "mirror")
    assert status.mirror_to == CHALLENGER and status.weight_of(CHALLENGER) == 0
    spec = _experiment(cluster, champion)["spec"]
    assert spec["candidates"] == [{"name": champion.name, "weight": 100}]
    assert spec["mirror"] == {"name": champion.challenger_name, "percent": 100}
    if cluster.emulator is not None:
        routes = cluster.emulator.seldon2.routes(cluster.namespace)[champion.name]
        assert [(r.model, r.weight, r.mirror) for r in routes] == [
            (champion.name, 100, False),
            (champion.challenger_name, 0, True),
        ]
    # back to no split at all: the Experiment goes, the challenger stays until removed
    champion.set_traffic(0)
    assert _experiment(cluster, champion) is None
    champion.remove_challenger()


def test_a_challenger_that_cannot_load_reports_seldons_reason(
    cluster: Cluster, champion: Any
) -> None:
    bad = champion.deployer.parse_config(cluster.config(FLAVOR, model_uri=cluster.bad_uri()))
    champion.add_challenger(bad)

    status = _until(
        champion,
        lambda s: any(v.name == CHALLENGER and v.last_error for v in s.variants),
        cluster.timeout,
        "challenger failure",
    )
    [challenger] = [v for v in status.variants if v.name == CHALLENGER]
    assert not challenger.ready and challenger.last_error.startswith("ModelFailed")
    assert status.weight_of(CHAMPION) == 100
    champion.remove_challenger()
    assert champion.traffic_status().variants[0].ready


def test_traffic_changes_are_refused_before_anything_is_written(
    cluster: Cluster, champion: Any
) -> None:
    with pytest.raises(ModelDeployError, match="no challenger"):
        champion.set_traffic(10)
    champion.add_challenger(champion.deployer.parse_config(cluster.config(FLAVOR, version=2)))
    with pytest.raises(InvalidConfigError, match="sticky"):
        champion.set_traffic(10, sticky_header="x-user")
    with pytest.raises(InvalidConfigError, match=r"0\.\.100"):
        champion.set_traffic(120)
    with pytest.raises(ModelDeployError, match="already has a challenger"):
        champion.add_challenger(champion.deployer.parse_config(cluster.config(FLAVOR, version=3)))
    assert _experiment(cluster, champion) is None
    champion.delete()  # the challenger goes with its model server
    assert _live(champion.resources.get(champion.challenger_name)) is None
    assert [o for o in cluster.managed("models") if _live(o)] == []
