"""Progressive rollouts on Seldon Core 1: the challenger as a second predictor (issue 12,
item 2). Driven through the engine's runner, as the CLI, Airflow and Prefect drive it.

Against the emulator by default; unchanged against a real cluster with Seldon Core 1.17 and
Istio when MODELDEPLOY_TEST_KUBECONFIG is set (emulator-only checks are guarded).
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import pytest
from modeldeploy.errors import InvalidConfigError, PlatformError
from modeldeploy.progressive.runner import (
    abort_rollout,
    advance_rollout,
    begin_rollout,
    check_rollout,
    promote_rollout,
    run_rollout,
)
from modeldeploy.progressive.state import RolloutState
from modeldeploy.traffic import CHALLENGER, CHAMPION, TrafficControl, TrafficStatus
from modeldeploy.waiting import Deadline

from tests.flavors_kubernetes.conftest import Cluster

#: no service-metric rules: the emulator runs no Prometheus (the analysis is tested apart)
NO_RULES = {"rules": [], "min_requests": 0}
#: Seldon splits traffic in Istio: clients (and so the flavor) go through the gateway. These
#: tests send no request, so on the emulator the address is never contacted.
INGRESS = os.environ.get("MODELDEPLOY_TEST_SELDON_INGRESS", "http://127.0.0.1:9")


@pytest.fixture
def seldon(make_deployer: Any, md_home: Any) -> Any:
    return make_deployer("seldon", ingress_base_url=INGRESS)


def _start(
    cluster: Cluster, deployer: Any, strategy: dict[str, Any], challenger_uri: str | None = None
) -> tuple[Any, RolloutState]:
    champion = deployer.deploy_model(cluster.config("seldon", version=1), timeout=cluster.timeout)
    parsed, analysis = check_rollout(deployer, strategy, NO_RULES)
    config = cluster.config("seldon", version=2)
    if challenger_uri is not None:
        config["model_uri"] = challenger_uri
    state = begin_rollout(
        deployer,
        champion,
        deployer.parse_config(config),
        parsed,
        analysis,
        candidate_version="2",
        champion_version="1",
        timeout=cluster.timeout,
    )
    return champion, state


def _advance_until(deployer: Any, model: str, phase: str, timeout: float) -> RolloutState:
    deadline = Deadline(timeout)
    while True:
        state = advance_rollout(deployer, model)
        if state.phase == phase or state.done or deadline.expired:
            return state
        time.sleep(max(0.0, min(state.next_check_at - time.time(), 0.2)))


def _sdep(deployer: Any, server: Any) -> dict[str, Any]:
    obj = deployer.resources.get(server.name)
    assert obj is not None
    return dict(obj)


def _settled(control: TrafficControl, cluster: Cluster) -> TrafficStatus:
    """The status once the champion alone is ready again (bounded)."""
    deadline = Deadline(cluster.timeout)
    while True:
        status = control.traffic_status()
        names = [v.name for v in status.variants]
        if (names == [CHAMPION] and status.variants[0].ready) or deadline.expired:
            return status
        time.sleep(0.1)


def test_canary_promotes_the_challenger_predictor_and_keeps_the_url(
    cluster: Cluster, seldon: Any
) -> None:
    champion, state = _start(
        cluster, seldon, {"kind": "canary", "percents": [30], "bake_seconds": 0}
    )
    url = champion.prediction_url
    seen: list[tuple[str, int]] = []
    final = run_rollout(
        seldon,
        state.model_name,
        timeout=cluster.timeout * 3,
        on_progress=lambda s: seen.append((s.phase, s.step_index)),
    )
    assert final.phase == "succeeded", final.message
    assert [r.step.challenger_percent for r in final.history] == [30, 100]
    server = seldon.get_model_server(champion.uuid)
    assert server.prediction_url == url  # one public URL while predictors come and go
    assert server.config.model_version == "2"
    assert server.config.model_uri == cluster.good_uri("seldon", 2)
    [predictor] = _sdep(seldon, server)["spec"]["predictors"]
    assert predictor["name"].startswith("g") and predictor["graph"]["modelUri"] == (
        cluster.good_uri("seldon", 2)
    )
    status = _settled(server, cluster)
    [only] = status.variants
    assert (only.name, only.weight, only.ready, only.model_version) == (CHAMPION, 100, True, "2")
    assert only.metric_selector == (
        f'deployment_name="{server.name}",predictor_name="{predictor["name"]}"'
    )
    if cluster.emulator is not None:
        emu = cluster.emulator
        assert emu.wait_for(
            lambda: (
                [d["metadata"]["name"] for d in emu.list_objects("Deployment", "default")]
                == [f"{server.name}-{predictor['name']}-0-{server.name}"]
            ),
            cluster.timeout,
        )
        # the operator applied each split: 70/30, then 0/100, then the challenger alone
        routes = emu.seldon.routes[("default", server.name)]
        assert routes == [(predictor["name"], 0, False)]


def test_a_challenger_that_cannot_load_is_removed_and_the_champion_keeps_serving(
    cluster: Cluster, seldon: Any
) -> None:
    champion, state = _start(
        cluster, seldon, {"kind": "canary", "bake_seconds": 0}, cluster.bad_uri(2)
    )
    final = run_rollout(seldon, state.model_name, timeout=cluster.timeout * 3)
    assert final.phase == "rolled_back"
    assert "the challenger failed" in final.message
    assert "model-initializer" in final.message  # the pod's own words, not a timeout
    server = seldon.get_model_server(champion.uuid)
    assert server.config.model_version == "1"
    [predictor] = _sdep(seldon, server)["spec"]["predictors"]
    assert predictor["name"] == "default" and "traffic" not in predictor
    status = _settled(server, cluster)
    assert [(v.name, v.weight, v.ready) for v in status.variants] == [(CHAMPION, 100, True)]
    server.wait_until_ready(Deadline(cluster.timeout))
    if cluster.emulator is not None:
        emu = cluster.emulator
        assert emu.seldon.wait_idle(cluster.timeout)
        assert [d["metadata"]["name"] for d in emu.list_objects("Deployment", "default")] == [
            f"{server.name}-default-0-{server.name}"
        ]


def test_shadow_mirrors_through_a_shadow_predictor_and_ends_with_a_report(
    cluster: Cluster, seldon: Any
) -> None:
    champion, state = _start(
        cluster, seldon, {"kind": "shadow", "mirror_percent": 50, "bake_seconds": 0}
    )
    baking = _advance_until(seldon, state.model_name, "baking", cluster.timeout)
    assert baking.phase == "baking", baking.message
    server = seldon.get_model_server(champion.uuid)
    status = server.traffic_status()
    assert (status.mirror_to, status.mirror_percent) == (CHALLENGER, 50)
    assert status.weight_of(CHAMPION) == 100 and status.weight_of(CHALLENGER) == 0
    first, shadow = _sdep(seldon, server)["spec"]["predictors"]
    assert (first["name"], first["traffic"], first.get("shadow")) == ("default", 100, None)
    assert (shadow["traffic"], shadow["shadow"]) == (50, True)  # Istio mirrorPercentage
    if cluster.emulator is not None:
        routes = cluster.emulator.seldon.routes[("default", server.name)]
        assert routes == [("default", 100, False), (shadow["name"], 50, True)]
    final = run_rollout(seldon, state.model_name, timeout=cluster.timeout * 3)
    assert final.phase == "reported", final.message
    assert [p["name"] for p in _sdep(seldon, server)["spec"]["predictors"]] == ["default"]
    assert seldon.get_model_server(champion.uuid).config.model_version == "1"


def _served(cluster: Cluster, server: Any) -> dict[str, int]:
    """What the emulator's ingress routes client requests to, by predictor, right now."""
    emu = cluster.requires_emulator()
    route = emu.dataplane.route("seldon", f"{cluster.namespace}/{server.name}")
    assert route is not None
    return {b.key: b.weight for b in route.served}


def test_a_split_is_reported_applied_only_once_the_ingress_routes_it(
    cluster: Cluster, seldon: Any
) -> None:
    """Seldon Core 1 changes no status for a traffic-only write; the VirtualService its
    operator rewrites is what the ingress follows. Each split, and the abort, returns only
    once the ingress routes that way; a missing permission on VirtualServices is named
    before anything is written."""
    emu = cluster.requires_emulator()
    champion = seldon.deploy_model(cluster.config("seldon", version=1), timeout=cluster.timeout)
    before = _sdep(seldon, champion)["spec"]
    emu.faults.inject(403, method="GET", path_contains="/virtualservices/")
    parsed, analysis = check_rollout(
        seldon, {"kind": "canary", "percents": [30], "bake_seconds": 600}, NO_RULES
    )

    def begin() -> RolloutState:
        return begin_rollout(
            seldon,
            champion,
            seldon.parse_config(cluster.config("seldon", version=2)),
            parsed,
            analysis,
            candidate_version="2",
            champion_version="1",
            timeout=cluster.timeout,
        )

    with pytest.raises(PlatformError) as refused:
        begin()
    assert "`get` on `virtualservices` in API group `networking.istio.io`" in str(refused.value)
    assert _sdep(seldon, champion)["spec"] == before  # nothing written
    state = begin()
    step = _advance_until(seldon, state.model_name, "baking", cluster.timeout)
    assert step.phase == "baking", step.message
    challenger = _sdep(seldon, champion)["spec"]["predictors"][1]["name"]
    assert _served(cluster, champion) == {"default": 70, challenger: 30}
    [vs] = emu.list_objects("VirtualService", cluster.namespace)
    assert vs["metadata"]["name"] == champion.name  # the operator's `seldonId`
    rest = vs["spec"]["http"][0]
    assert [(d["destination"]["subset"], d["weight"]) for d in rest["route"]] == [
        ("default", 70),
        (challenger, 30),
    ]
    final = abort_rollout(seldon, state.model_name)
    assert final.phase == "rolled_back", final.message
    assert _served(cluster, champion) == {"default": 100}


def test_splits_seldon_cannot_route_are_refused_before_any_write(
    cluster: Cluster, seldon: Any, make_deployer: Any
) -> None:
    direct = make_deployer("seldon")  # no ingress: clients would bypass Istio's split
    server = direct.deploy_model(cluster.config("seldon", model="direct"), timeout=cluster.timeout)
    with pytest.raises(InvalidConfigError, match="ingress_base_url"):
        server.add_challenger(direct.parse_config(cluster.config("seldon", model="direct")))
    assert len(direct.resources.get(server.name)["spec"]["predictors"]) == 1
    champion = seldon.deploy_model(cluster.config("seldon"), timeout=cluster.timeout)
    champion.add_challenger(seldon.parse_config(cluster.config("seldon", version=2)))

    def written() -> tuple[Any, ...]:  # (the controller keeps writing the status meanwhile)
        obj = _sdep(seldon, champion)
        return obj["metadata"]["generation"], obj["spec"], obj["metadata"]["annotations"]

    before = written()
    with pytest.raises(InvalidConfigError, match="either routed or a shadow"):
        champion.set_traffic(30, mirror_percent=30)
    with pytest.raises(InvalidConfigError, match="sticky_header"):
        champion.set_traffic(30, sticky_header="x-user")
    with pytest.raises(InvalidConfigError, match="protocol"):
        champion.add_challenger(seldon.parse_config(cluster.config("seldon", protocol="v2")))
    assert written() == before


def test_a_webhook_refusal_is_an_error_that_names_the_rule(cluster: Cluster, seldon: Any) -> None:
    """Someone added a shadow predictor by hand: our shadow would be a second one, which
    Seldon's webhook refuses; the error says so and nothing changes."""
    champion = seldon.deploy_model(cluster.config("seldon"), timeout=cluster.timeout)
    champion.add_challenger(seldon.parse_config(cluster.config("seldon", version=2)))

    def add_foreign_shadow(current: dict[str, Any]) -> dict[str, Any]:
        first = current["spec"]["predictors"][0]
        foreign = {**first, "name": "manual", "shadow": True, "traffic": 10}
        foreign.pop("componentSpecs", None)
        current["spec"]["predictors"].append(foreign)
        return current

    seldon.resources.update(champion.name, add_foreign_shadow)
    with pytest.raises(InvalidConfigError) as refused:
        champion.set_traffic(0, mirror_percent=100)
    assert "Multiple shadows are not allowed" in str(refused.value)
    names = [p["name"] for p in _sdep(seldon, champion)["spec"]["predictors"]]
    assert names[0] == "default" and names[2] == "manual"
    assert not _sdep(seldon, champion)["spec"]["predictors"][1].get("shadow")
    # removing our challenger leaves the foreign predictor where it was
    champion.remove_challenger()
    assert [p["name"] for p in _sdep(seldon, champion)["spec"]["predictors"]] == [
        "default",
        "manual",
    ]


def test_real_predictions_follow_the_split_through_the_ingress(
    cluster: Cluster, make_deployer: Any, md_home: Any, saved_models: Any
) -> None:
    """The emulator's data plane serves each predictor with a real MLflow scoring server
    behind the loopback ingress that honours the routes Seldon applies: at a 50 % step both
    models answer; after promotion only the challenger, with no failed request."""
    emu = cluster.requires_emulator()
    plane = emu.dataplane
    first, second = cluster.good_uri("seldon", 1), cluster.good_uri("seldon", 2)
    plane.register_model(first, str(saved_models.first))
    plane.register_model(second, str(saved_models.second))
    deployer = make_deployer("seldon", ingress_base_url=plane.url)
    champion, state = _start(
        cluster, deployer, {"kind": "canary", "percents": [50], "bake_seconds": 600}
    )
    plane.wait_ready(first)
    plane.wait_ready(second)
    rows = saved_models.sample_rows[:1]
    step = _advance_until(deployer, state.model_name, "baking", cluster.timeout)
    assert step.phase == "baking" and step.steps[step.step_index].challenger_percent == 50
    answers = [champion.predict(rows)[0] for _ in range(100)]
    assert set(answers) == {0, 2}  # the constant model (challenger) answers 2, the first 0
    assert 20 <= answers.count(2) <= 80  # ~50 % (p of leaving this band < 1e-9)

    failures: list[BaseException] = []
    stop = threading.Event()

    def steady() -> None:
        while not stop.is_set():
            try:
                champion.predict(rows)
            except Exception as exc:  # every failed client request is a finding
                failures.append(exc)

    client = threading.Thread(target=steady, daemon=True)
    client.start()
    try:
        final = promote_rollout(deployer, state.model_name)
        assert final.phase == "succeeded", final.message
        deadline = Deadline(cluster.timeout)
        while emu.seldon.routes[("default", champion.name)][0][0] == "default":
            assert not deadline.expired, "the promotion was never applied"
            time.sleep(0.05)
        assert {champion.predict(rows)[0] for _ in range(20)} == {2}
    finally:
        stop.set()
        client.join(timeout=60)
    assert failures == []


PROBE = {"records": [{"x": 1.0}], "labels": [1]}


@pytest.mark.parametrize("flavor", ["seldon", "seldon2"])
def test_probe_rules_are_refused_where_variants_have_no_url_of_their_own(
    flavor: str, make_deployer: Any
) -> None:
    """Seldon 1 and 2 report no URL per variant, so a probe could never be sent and its
    rules would stay inconclusive until patience ran out: refused up front, saying why."""
    deployer = (
        make_deployer(flavor, ingress_base_url=INGRESS)
        if flavor == "seldon"
        else (make_deployer(flavor))
    )
    canary = "canary"
    probe_only = {"rules": ["accuracy>=0.9"], "probe": PROBE, "min_requests": 0}
    with pytest.raises(InvalidConfigError) as refused:
        check_rollout(deployer, canary, probe_only)
    message = str(refused.value)
    assert "analysis.probe cannot be judged" in message and "no URL of its own" in message
    assert "analysis.prometheus_url" in message and "analysis.labels" in message
    assert "variants have one (kserve, mlflow)" in message  # those declaring variant_urls
    for rules in (["accuracy>=0.9"], ["agreement>=0.95"]):  # without a probe, the same
        with pytest.raises(InvalidConfigError, match="needs the probe, which cannot be sent"):
            check_rollout(deployer, canary, {"rules": rules, "min_requests": 0})
    # service rules through Prometheus remain the way to judge it
    check_rollout(deployer, canary, {"prometheus_url": "http://127.0.0.1:9"})


def test_a_flavor_with_variant_urls_accepts_the_probe(make_deployer: Any) -> None:
    kserve = make_deployer("kserve")
    probe_only = {"rules": ["accuracy>=0.9"], "probe": PROBE, "min_requests": 0}
    assert check_rollout(kserve, "canary", probe_only)[1].probe is not None


def test_a_challenger_that_cannot_be_added_fails_with_the_record_of_its_rollback(
    cluster: Cluster, seldon: Any
) -> None:
    """The error carries what the engine did before raising, for a skin to publish (a
    Prefect event and artifact) although its task fails."""
    champion = seldon.deploy_model(cluster.config("seldon", version=1), timeout=cluster.timeout)
    parsed, analysis = check_rollout(seldon, "canary", NO_RULES)
    config = seldon.parse_config(cluster.config("seldon", version=2, protocol="v2"))
    with pytest.raises(InvalidConfigError) as refused:
        begin_rollout(
            seldon, champion, config, parsed, analysis, candidate_version="2",
            champion_version="1", timeout=cluster.timeout,
        )  # fmt: skip
    record = refused.value.record
    assert record is not None and record.action == "rolled_back"
    assert (record.version, record.serving_version, record.flavor) == ("2", "1", "seldon")
    assert record.reason.startswith("rolled back: the challenger did not start")
    assert record.url == champion.prediction_url
