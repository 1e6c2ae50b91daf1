"""Progressive rollouts on KServe (issue 12, item 1): Knative mode's `canaryTrafficPercent`
driven by the engine's strategies, against the emulator or a real cluster
(MODELDEPLOY_TEST_KUBECONFIG; tests needing the emulator's controls skip there)."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest
from modeldeploy.errors import InvalidConfigError
from modeldeploy.progressive.runner import begin_rollout, check_rollout, run_rollout
from modeldeploy.progressive.state import RolloutState, RolloutStore
from modeldeploy.status import ServiceState
from modeldeploy.traffic import CHALLENGER, CHAMPION
from modeldeploy.waiting import Deadline

from tests.flavors_kubernetes.conftest import Cluster

#: no service metrics on a cluster without Prometheus: judge the route and readiness only
NO_RULES = {"rules": [], "min_requests": 0}


@pytest.fixture
def kserve(make_deployer: Any) -> Any:
    return make_deployer("kserve")


def _settled(cluster: Cluster, kserve: Any, uuid: Any) -> Any:
    """The server once KServe reports the last route write applied (writes return at once)."""
    server = kserve.get_model_server(uuid)
    server.wait_for_state(ServiceState.ACTIVE, Deadline(cluster.timeout))
    return server


def _predictor(server: Any) -> dict[str, Any]:
    server.check_status()
    return dict(server.obj["status"]["components"]["predictor"])


def _start(
    cluster: Cluster, kserve: Any, strategy: Any, version: int = 2, **extra: Any
) -> tuple[Any, RolloutStore, RolloutState]:
    champion = kserve.deploy_model(cluster.config("kserve", version=1), timeout=cluster.timeout)
    parsed, analysis = check_rollout(kserve, strategy, NO_RULES)
    config = kserve.parse_config(cluster.config("kserve", version=version, **extra))
    store = kserve.rollout_store()  # on the cluster: any caller sees the same rollout
    state = begin_rollout(
        kserve, champion, config, parsed, analysis, store=store, timeout=cluster.timeout
    )
    return champion, store, state


def test_canary_10_50_100_promotes_the_challengers_revision(cluster: Cluster, kserve: Any) -> None:
    strategy = {"kind": "canary", "percents": [10, 50], "bake_seconds": 0}
    champion, store, state = _start(cluster, kserve, strategy)
    champion_revision = _predictor(champion)["latestRolledoutRevision"]
    seen: list[tuple[int, int, Any]] = []

    def on_progress(state: RolloutState) -> None:
        if state.phase == "baking":
            split = champion.traffic_status()
            seen.append((split.weight_of(CHALLENGER), split.weight_of(CHAMPION), champion.obj))

    done = run_rollout(
        kserve, state.model_name, store=store, timeout=cluster.timeout * 3, on_progress=on_progress
    )

    assert done.phase == "succeeded", done.message
    assert [(c, p) for c, p, _ in seen] == [(10, 90), (50, 50), (100, 0)]
    for percent, _, obj in seen:  # KServe's own route, as its status reports it
        traffic = obj["status"]["components"]["predictor"]["traffic"]
        assert obj["spec"]["predictor"]["canaryTrafficPercent"] == percent
        assert {t.get("tag") for t in traffic} >= {"latest"}
        if percent < 100:
            [prev] = [t for t in traffic if t.get("tag") == "prev"]
            assert (prev["revisionName"], prev["percent"]) == (champion_revision, 100 - percent)
    server = _settled(cluster, kserve, champion.uuid)
    assert server.status.state == ServiceState.ACTIVE
    assert "canaryTrafficPercent" not in server.obj["spec"]["predictor"]
    predictor = _predictor(server)
    assert predictor["previousRolledoutRevision"] == champion_revision
    assert predictor["latestRolledoutRevision"] == predictor["latestReadyRevision"]
    assert [t["percent"] for t in predictor["traffic"]] == [100]
    assert server.config.model_version == "2"


def test_a_failing_challenger_is_rolled_back_to_the_champions_model(
    cluster: Cluster, kserve: Any
) -> None:
    strategy = {"kind": "linear", "step_percent": 50, "bake_seconds": 0}
    champion, store, state = _start(cluster, kserve, strategy, model_uri=cluster.bad_uri(2))
    served_before = cluster.good_uri("kserve", 1)

    done = run_rollout(kserve, state.model_name, store=store, timeout=cluster.timeout * 3)

    assert done.phase == "rolled_back" and "challenger failed" in done.message, done.message
    server = _settled(cluster, kserve, champion.uuid)
    spec = server.obj["spec"]["predictor"]
    assert spec["model"]["storageUri"] == served_before and "canaryTrafficPercent" not in spec
    assert server.config.model_version == "1"
    assert server.status.state == ServiceState.ACTIVE, server.status.last_error
    predictor = _predictor(server)
    assert [t["percent"] for t in predictor["traffic"]] == [100]
    assert predictor["latestRolledoutRevision"] == predictor["latestReadyRevision"]
    assert not any(
        k.startswith("modeldeploy.io/champion") for k in server.obj["metadata"]["annotations"]
    )


def test_abort_mid_canary_puts_all_traffic_back_at_once(cluster: Cluster, kserve: Any) -> None:
    from modeldeploy.progressive.runner import abort_rollout, advance_rollout

    strategy = {"kind": "canary", "percents": [30], "bake_seconds": 600}
    champion, store, state = _start(cluster, kserve, strategy)
    champion_revision = _predictor(champion)["latestRolledoutRevision"]
    while state.phase == "starting":
        state = advance_rollout(kserve, state.model_name, store=store)
    assert champion.traffic_status().weight_of(CHALLENGER) == 30
    during = champion.check_status()  # the server serves while its traffic is split
    assert during.state == ServiceState.ACTIVE and during.revision == champion_revision

    aborted = abort_rollout(kserve, state.model_name, store=store)

    assert aborted.phase == "rolled_back"
    server = _settled(cluster, kserve, champion.uuid)
    predictor = _predictor(server)
    assert predictor["previousRolledoutRevision"] == champion_revision
    assert [t["percent"] for t in predictor["traffic"]] == [100]
    assert server.status.state == ServiceState.ACTIVE
    assert server.traffic_status().variants[0].weight == 100


def test_shadow_is_refused_before_anything_changes(cluster: Cluster, kserve: Any) -> None:
    server = kserve.deploy_model(cluster.config("kserve"), timeout=cluster.timeout)
    before = server.obj["metadata"]["resourceVersion"]

    with pytest.raises(InvalidConfigError) as refused:
        check_rollout(kserve, "shadow", None)
    with pytest.raises(InvalidConfigError, match="cannot mirror"):
        server.set_traffic(0, mirror_percent=100)

    assert "KServe cannot mirror requests" in str(refused.value)
    assert "canary, linear or blue_green" in str(refused.value)
    server.check_status()
    assert server.obj["metadata"]["resourceVersion"] == before


# --- Standard mode: spec.canary[] (KServe 0.20+) ------------------------------------------


def _standard_uri(cluster: Cluster, version: int) -> str:
    """A challenger's model: KServe promotes a canary only with another storageUri."""
    if not cluster.real or version == 1:
        return cluster.good_uri("kserve", version)
    other = os.environ.get("MODELDEPLOY_TEST_KSERVE_URI_2")
    if not other:
        pytest.skip("set MODELDEPLOY_TEST_KSERVE_URI_2 to a second model for Standard mode")
    return other


def _start_standard(
    cluster: Cluster, kserve: Any, strategy: Any, model_uri: str | None = None
) -> tuple[Any, RolloutStore, RolloutState]:
    standard = {"deployment_mode": "Standard"}
    first = cluster.config("kserve", version=1, **standard)
    champion = kserve.deploy_model(first, timeout=cluster.timeout)
    parsed, analysis = check_rollout(kserve, strategy, NO_RULES)
    uri = model_uri or _standard_uri(cluster, 2)
    config = kserve.parse_config(cluster.config("kserve", version=2, model_uri=uri, **standard))
    store = kserve.rollout_store()
    state = begin_rollout(
        kserve, champion, config, parsed, analysis, store=store, timeout=cluster.timeout
    )
    return champion, store, state


def _deployments(kserve: Any, server: Any, cluster: Cluster) -> set[str]:
    """The predictor Deployments KServe runs for `server` (stable and canaries)."""
    import json

    from kubernetes import client

    kube = kserve.kube
    resp = client.AppsV1Api(kube.api_client).list_namespaced_deployment(
        cluster.namespace,
        label_selector=f"serving.kserve.io/inferenceservice={server.name}",
        _preload_content=False,
    )
    return {d["metadata"]["name"] for d in json.loads(resp.data)["items"]}


def _only_deployment(kserve: Any, server: Any, cluster: Cluster, name: str) -> None:
    """KServe deletes an orphaned canary (or the former stable) Deployment on its own time."""
    deadline = Deadline(cluster.timeout)
    while _deployments(kserve, server, cluster) != {name}:
        assert not deadline.expired, _deployments(kserve, server, cluster)
        time.sleep(0.2)  # a poll, bounded by the deadline


def test_standard_canary_promotes_the_canary_by_predictor_name(
    cluster: Cluster, kserve: Any
) -> None:
    strategy = {"kind": "canary", "percents": [10, 50], "bake_seconds": 0}
    champion, store, state = _start_standard(cluster, kserve, strategy)
    name = champion.name
    seen: list[tuple[int, int, list[dict[str, Any]]]] = []

    def on_progress(state: RolloutState) -> None:
        if state.phase == "baking":
            split = champion.traffic_status()
            statuses = champion.obj["status"].get("canaryStatuses") or []
            seen.append((split.weight_of(CHALLENGER), split.weight_of(CHAMPION), statuses))

    done = run_rollout(
        kserve, state.model_name, store=store, timeout=cluster.timeout * 3, on_progress=on_progress
    )

    assert done.phase == "succeeded", done.message
    assert [(c, p) for c, p, _ in seen] == [(10, 90), (50, 50), (100, 0)]
    for percent, _, statuses in seen:  # KServe's own per-canary status
        [entry] = statuses
        assert (entry["ready"], entry["trafficPercent"]) == (True, percent)
    server = _settled(cluster, kserve, champion.uuid)
    spec = server.obj["spec"]
    canary = seen[0][2][0]["name"]
    assert "canary" not in spec and spec["predictor"]["name"] == canary
    assert spec["predictor"]["model"]["storageUri"] == _standard_uri(cluster, 2)
    assert server.config.model_version == "2"
    _only_deployment(kserve, server, cluster, f"{name}-{canary}-predictor")
    assert server.traffic_status().variants[0].weight == 100


def test_standard_abort_puts_traffic_back_and_leaves_no_canary(
    cluster: Cluster, kserve: Any
) -> None:
    from modeldeploy.progressive.runner import abort_rollout, advance_rollout

    strategy = {"kind": "canary", "percents": [30], "bake_seconds": 600}
    champion, store, state = _start_standard(cluster, kserve, strategy)
    while state.phase == "starting":
        state = advance_rollout(kserve, state.model_name, store=store)
    split = champion.traffic_status()
    assert (split.weight_of(CHALLENGER), split.weight_of(CHAMPION)) == (30, 70)
    canary = champion.obj["spec"]["canary"][0]["predictor"]["name"]
    assert f"{champion.name}-{canary}-predictor" in _deployments(kserve, champion, cluster)
    assert champion.check_status().state == ServiceState.ACTIVE  # the stable serves

    aborted = abort_rollout(kserve, state.model_name, store=store)

    assert aborted.phase == "rolled_back"
    server = _settled(cluster, kserve, champion.uuid)
    assert "canary" not in server.obj["spec"] and "name" not in server.obj["spec"]["predictor"]
    assert server.obj["spec"]["predictor"]["model"]["storageUri"] == cluster.good_uri("kserve")
    assert server.config.model_version == "1"
    assert not any(
        k.startswith("modeldeploy.io/challenger") for k in server.obj["metadata"]["annotations"]
    )
    _only_deployment(kserve, server, cluster, f"{champion.name}-predictor")
    assert [v.weight for v in server.traffic_status().variants] == [100]


def test_standard_failing_canary_is_rolled_back_automatically(
    cluster: Cluster, kserve: Any
) -> None:
    strategy = {"kind": "linear", "step_percent": 50, "bake_seconds": 0}
    champion, store, state = _start_standard(cluster, kserve, strategy, cluster.bad_uri(2))

    done = run_rollout(kserve, state.model_name, store=store, timeout=cluster.timeout * 3)

    assert done.phase == "rolled_back" and "challenger" in done.message, done.message
    server = _settled(cluster, kserve, champion.uuid)
    assert "canary" not in server.obj["spec"]
    assert server.obj["spec"]["predictor"]["model"]["storageUri"] == cluster.good_uri("kserve")
    _only_deployment(kserve, server, cluster, f"{champion.name}-predictor")
    assert server.status.state == ServiceState.ACTIVE, server.status.last_error


def test_standard_mode_refuses_service_rules_without_a_metric_source(
    cluster: Cluster, kserve: Any
) -> None:
    """No queue-proxy in Standard mode: rules on request figures are refused up front."""
    champion = kserve.deploy_model(
        cluster.config("kserve", deployment_mode="Standard"), timeout=cluster.timeout
    )
    before = champion.obj["metadata"]["resourceVersion"]
    analysis = {"rules": ["error_rate<=0.05"], "prometheus_url": "http://127.0.0.1:9"}
    parsed, checked = check_rollout(kserve, "canary", analysis)  # Knative mode could measure it
    config = kserve.parse_config(cluster.config("kserve", version=2, deployment_mode="Standard"))
    store = kserve.rollout_store()

    with pytest.raises(InvalidConfigError, match=r"KServe Standard mode .* exports no per-variant"):
        begin_rollout(kserve, champion, config, parsed, checked, store=store)

    champion.check_status()
    assert champion.obj["metadata"]["resourceVersion"] == before
    assert store.load(config.model_name) is None


def test_the_rollout_lock_on_the_cluster_waits_for_its_holder_and_outlives_a_dead_one(
    cluster: Cluster, kserve: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ConfigMap store: one holder at a time; a lock whose holder died expires."""
    import threading

    from modeldeploy.flavors.kubernetes import rollout_store

    store = kserve.rollout_store()
    model = f"lock-{cluster.run}"
    order: list[str] = []
    found_busy = threading.Event()

    class Busy(rollout_store._Busy):  # raised when a caller finds the lock held
        def __init__(self) -> None:
            super().__init__()
            found_busy.set()

    monkeypatch.setattr(rollout_store, "_Busy", Busy)

    def second() -> None:
        with store.locked(model):
            order.append("second")

    with store.locked(model):
        order.append("first")
        waiter = threading.Thread(target=second)
        waiter.start()
        assert found_busy.wait(60), "the second caller never found the lock held"
        order.append("first done")
    waiter.join(60)
    assert order == ["first", "first done", "second"]

    monkeypatch.setattr(rollout_store, "LOCK_SECONDS", -1.0)  # a holder that died long ago
    dead = store.locked(model)
    dead.__enter__()  # never released
    monkeypatch.setattr(rollout_store, "LOCK_SECONDS", 600.0)
    with store.locked(model):
        order.append("after the dead one")
    assert order[-1] == "after the dead one"


def _configmap(kserve: Any, model_name: str) -> dict[str, Any] | None:
    from modeldeploy.flavors.kubernetes.rollout_store import configmap_name

    kube = kserve.kube
    found: dict[str, Any] | None = kube.read_json(
        kube.core.read_namespaced_config_map, configmap_name(model_name), "ConfigMap"
    )
    return found


def _deleted(kserve: Any, model_name: str, timeout: float) -> bool:
    """Whether the rollout ConfigMap is gone within `timeout`, watched from a list."""
    from kubernetes import watch
    from modeldeploy.flavors.kubernetes.rollout_store import configmap_name

    core, namespace = kserve.kube.core, kserve.kube.namespace
    selector = f"metadata.name={configmap_name(model_name)}"
    listed = core.list_namespaced_config_map(namespace, field_selector=selector)
    if not listed.items:
        return True
    stream = watch.Watch().stream(
        core.list_namespaced_config_map,
        namespace,
        field_selector=selector,
        resource_version=listed.metadata.resource_version,
        timeout_seconds=int(timeout),
    )
    return any(event["type"] == "DELETED" for event in stream)


def test_the_rollout_configmap_lives_and_dies_with_its_model_server(
    cluster: Cluster, kserve: Any
) -> None:
    """Owned by the server's InferenceService: kept after the rollout ended (status shows
    it), garbage-collected when the server is deleted; a lock alone leaves nothing."""
    from modeldeploy.errors import ModelServerNotFoundError
    from modeldeploy.progressive.runner import abort_rollout, rollout_status

    champion, store, state = _start(cluster, kserve, "canary")
    abort_rollout(kserve, state.model_name, store=store)
    assert rollout_status(kserve, state.model_name, store).phase == "rolled_back"
    configmap = _configmap(kserve, state.model_name)
    assert configmap is not None
    isvc = kserve.resources.get(champion.name)
    assert configmap["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "serving.kserve.io/v1beta1",
            "kind": "InferenceService",
            "name": champion.name,
            "uid": isvc["metadata"]["uid"],
        }
    ]
    assert configmap["metadata"]["labels"]["modeldeploy.io/uuid"] == str(champion.uuid)

    kserve.delete_model_server(champion.uuid)  # what `modeldeploy models delete` does
    assert _deleted(kserve, state.model_name, cluster.timeout), "the ConfigMap outlived it"

    nothing = f"never-rolled-out-{cluster.run}"
    with pytest.raises(ModelServerNotFoundError):
        abort_rollout(kserve, nothing, store=store)
    assert _configmap(kserve, nothing) is None


def test_a_rollout_aborted_by_its_timeout_raises_with_the_record_of_its_rollback(
    cluster: Cluster, kserve: Any
) -> None:
    """The challenger is slow to load (the emulator's delay): `run_rollout`'s own timeout
    ends it first, aborts it, and the error carries the rollback for a skin to publish."""
    from modeldeploy.errors import DeploymentTimeoutError

    emu = cluster.requires_emulator()
    champion = kserve.deploy_model(cluster.config("kserve", version=1), timeout=cluster.timeout)
    parsed, analysis = check_rollout(kserve, "canary", NO_RULES)
    config = kserve.parse_config(cluster.config("kserve", version=2))
    delay, emu.kserve.delay = emu.kserve.delay, 3.0  # each revision takes 3 s to be ready
    try:
        state = begin_rollout(
            kserve, champion, config, parsed, analysis, candidate_version="2",
            champion_version="1", timeout=cluster.timeout,
        )  # fmt: skip
        with pytest.raises(DeploymentTimeoutError) as timed_out:
            run_rollout(kserve, state.model_name, timeout=0.5)
    finally:
        emu.kserve.delay = delay
    record = timed_out.value.record
    assert record is not None and record.action == "rolled_back"
    assert (record.version, record.serving_version) == ("2", "1")
    assert record.reason == "rolled back: the rollout timed out"
    assert record.url == champion.prediction_url
