"""The Seldon Core 1.17.1 simulator's upstream behaviours (FIDELITY.md rows S-*)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.k8s_emulator import KubernetesEmulator

from .conftest import NS, SELDON, custom_api, raises, sdep, status_of
from .test_upstream_kserve import Recorder, cond

SDEP = "seldondeployments"


def create(emu: KubernetesEmulator, body: dict[str, Any], version: str = "v1") -> dict[str, Any]:
    body = dict(body, apiVersion=f"machinelearning.seldon.io/{version}")
    return custom_api(emu).create_namespaced_custom_object(SELDON[0], version, NS, SDEP, body)


def state(o: dict[str, Any]) -> str:
    return str((o.get("status") or {}).get("state", ""))


def test_a_model_that_cannot_load_stays_creating_until_the_progress_deadline(
    k8s_emulator: KubernetesEmulator,
) -> None:
    emu = k8s_emulator.progress_deadline(0.5)
    emu.seldon.fail_when_uri_startswith = "gs://bad"
    rec = Recorder(emu, "machinelearning.seldon.io/seldondeployments", "iris")
    create(emu, sdep("iris", "gs://bad/model"))
    failed = rec.wait(lambda o: state(o) == "Failed")
    assert failed["status"]["description"] == (
        "Deployment is no longer progressing and not available."
    )
    assert {state(o) for o in rec.seen} <= {"", "Creating", "Failed"}
    # the cause is only on the pods: the init container crash-loops
    pod = emu.list_objects("Pod", NS)[0]
    waiting = pod["status"]["initContainerStatuses"][0]["state"]["waiting"]
    assert waiting["reason"] == "CrashLoopBackOff"


def test_zero_replicas_never_becomes_available(k8s_emulator: KubernetesEmulator) -> None:
    body = sdep("iris")
    body["spec"]["predictors"][0]["replicas"] = 0
    create(k8s_emulator, body)
    assert k8s_emulator.seldon.wait_idle(3)
    obj = k8s_emulator.get(SDEP, "iris")
    assert obj is not None and state(obj) == "Creating"
    assert cond(obj, "Ready")["status"] == "False"
    assert not k8s_emulator.list_objects("Pod", NS)


def test_v1alpha2_and_v1alpha3_are_served_from_one_storage_version(
    k8s_emulator: KubernetesEmulator,
) -> None:
    create(k8s_emulator, sdep("iris"), "v1alpha2")
    api = custom_api(k8s_emulator)
    for version in ("v1", "v1alpha2", "v1alpha3"):
        got = api.get_namespaced_custom_object(SELDON[0], version, NS, SDEP, "iris")
        assert got["apiVersion"] == f"machinelearning.seldon.io/{version}"
    stored = k8s_emulator.get(SDEP, "iris")
    assert stored is not None and stored["apiVersion"] == "machinelearning.seldon.io/v1"
    rec = Recorder(k8s_emulator, "machinelearning.seldon.io/seldondeployments", "iris")
    ready = rec.wait(lambda o: state(o) == "Available")
    assert cond(ready, "Ready")["status"] == "True"
    reasons = {e["reason"] for e in k8s_emulator.list_objects("Event", NS)}
    assert {"CreateDeployment", "CreateService"} <= reasons


def test_the_scale_subresource_reads_and_writes_spec_replicas(
    k8s_emulator: KubernetesEmulator,
) -> None:
    create(k8s_emulator, sdep("iris"))
    api = custom_api(k8s_emulator)
    scale = api.get_namespaced_custom_object_scale(SELDON[0], "v1", NS, SDEP, "iris")
    assert scale["kind"] == "Scale" and scale["spec"]["replicas"] == 0
    out = api.patch_namespaced_custom_object_scale(
        SELDON[0], "v1", NS, SDEP, "iris", {"spec": {"replicas": 3}}
    )
    assert out["spec"]["replicas"] == 3
    obj = k8s_emulator.get(SDEP, "iris")
    assert obj is not None and obj["spec"]["replicas"] == 3
    exc = raises(
        api.patch_namespaced_custom_object_scale,
        SELDON[0],
        "v1",
        NS,
        SDEP,
        "iris",
        {"spec": {"replicas": -1}},
    )
    assert exc.status == 422


def _predictors(body: dict[str, Any], predictors: list[tuple[str, int, bool]]) -> None:
    graph = body["spec"]["predictors"][0]["graph"]
    body["spec"]["predictors"] = [
        {"name": n, "traffic": t, "shadow": s, "replicas": 1, "graph": graph}
        for n, t, s in predictors
    ]


@pytest.mark.parametrize(
    ("predictors", "message"),
    [
        ([("a", 50, False)], "Traffic must sum be 100 for a single predictor when set"),
        ([("a", 60, False), ("b", 30, False)], "Traffic must sum to 100"),
        ([("a", 100, False), ("b", 0, True), ("c", 0, True)], "Multiple shadows"),
        ([("a", 100, True)], "Shadow can not exist as only predictor"),
        ([("a", 100, False), ("b", 150, True)], "shadow traffic is illegal"),
        ([("a", 50, False), ("a", 50, False)], "Duplicate predictor name"),
    ],
)
def test_the_validating_webhook_checks_traffic_and_shadows(
    k8s_emulator: KubernetesEmulator, predictors: list[tuple[str, int, bool]], message: str
) -> None:
    body = sdep("iris")
    _predictors(body, predictors)
    exc = raises(create, k8s_emulator, body)
    st = status_of(exc)
    assert exc.status == 422 and message in st["message"]
    assert 'admission webhook "v1.vseldondeployment.kb.io" denied the request' in st["message"]


@pytest.mark.parametrize(
    "predictors",
    [
        [("a", 100, False), ("b", 0, False)],  # a new predictor at 0 beside the champion
        [("a", 50, False), ("b", 30, True)],  # a lone routed predictor's sum is not checked
        [("a", 0, False), ("b", 0, True)],  # (upstream counts the shadow in len(predictors))
        [("a", 100, False), ("b", 100, True)],
    ],
)
def test_the_webhook_accepts_what_upstream_accepts(
    k8s_emulator: KubernetesEmulator, predictors: list[tuple[str, int, bool]]
) -> None:
    body = sdep("iris")
    _predictors(body, predictors)
    created = create(k8s_emulator, body)
    assert [p["name"] for p in created["spec"]["predictors"]] == [n for n, _, _ in predictors]


def _pods(emu: KubernetesEmulator) -> dict[str, str]:
    return {p["metadata"]["name"]: p["status"]["phase"] for p in emu.list_objects("Pod", NS)}


def _patch_predictors(emu: KubernetesEmulator, predictors: list[dict[str, Any]]) -> None:
    obj = emu.get(SDEP, "iris")
    assert obj is not None
    obj["spec"]["predictors"] = predictors
    custom_api(emu).replace_namespaced_custom_object(SELDON[0], "v1", NS, SDEP, "iris", obj)


def _predictor(name: str, uri: str, traffic: int, shadow: bool = False) -> dict[str, Any]:
    graph = {"name": "classifier", "implementation": "SKLEARN_SERVER", "modelUri": uri}
    out: dict[str, Any] = {"name": name, "replicas": 1, "traffic": traffic, "graph": graph}
    if shadow:
        out["shadow"] = True
    return out


def test_each_predictor_has_its_deployment_and_traffic_alone_rolls_nothing(
    k8s_emulator: KubernetesEmulator,
) -> None:
    emu = k8s_emulator
    rec = Recorder(emu, "machinelearning.seldon.io/seldondeployments", "iris")
    create(emu, sdep("iris"))
    rec.wait(lambda o: state(o) == "Available")
    champion_pods = _pods(emu)
    since = len(rec.seen)
    _patch_predictors(
        emu,
        [_predictor("default", "gs://models/iris", 100), _predictor("g2", "gs://models/v2", 0)],
    )
    both = rec.wait(
        lambda o: state(o) == "Available" and len(o["status"].get("deploymentStatus", {})) == 2,
        since,
    )
    assert set(both["status"]["deploymentStatus"]) == {
        "iris-default-0-classifier",
        "iris-g2-0-classifier",
    }
    assert set(both["status"]["serviceStatus"]) == {"iris-default", "iris-g2"}
    assert {n for n in _pods(emu) if n.startswith("iris-default")} == set(champion_pods)
    assert emu.seldon.routes[(NS, "iris")] == [("default", 100, False), ("g2", 0, False)]
    pods_before = _pods(emu)
    generations = {
        d["metadata"]["name"]: d["metadata"]["generation"]
        for d in emu.list_objects("Deployment", NS)
    }
    _patch_predictors(
        emu,
        [_predictor("default", "gs://models/iris", 60), _predictor("g2", "gs://models/v2", 40)],
    )
    assert emu.seldon.wait_idle(5)
    assert emu.seldon.routes[(NS, "iris")] == [("default", 60, False), ("g2", 40, False)]
    assert _pods(emu) == pods_before  # the engine's predictor copy has traffic zeroed
    assert generations == {
        d["metadata"]["name"]: d["metadata"]["generation"]
        for d in emu.list_objects("Deployment", NS)
    }
    # a shadow mirrors its traffic as a percentage; the flag is in the engine's copy: rolls
    since = len(rec.seen)
    _patch_predictors(
        emu,
        [
            _predictor("default", "gs://models/iris", 100),
            _predictor("g2", "gs://models/v2", 30, shadow=True),
        ],
    )
    creating = rec.wait(lambda o: state(o) == "Creating", since)
    rec.wait(lambda o: state(o) == "Available", rec.seen.index(creating))
    assert emu.seldon.routes[(NS, "iris")] == [("default", 100, False), ("g2", 30, True)]
    assert not {n for n in _pods(emu) if n.startswith("iris-g2")} & set(pods_before)


def test_a_predictor_that_cannot_load_fails_the_deployment_but_not_the_routes(
    k8s_emulator: KubernetesEmulator,
) -> None:
    emu = k8s_emulator.progress_deadline(0.5)
    emu.seldon.fail_when_uri_startswith = "gs://bad"
    rec = Recorder(emu, "machinelearning.seldon.io/seldondeployments", "iris")
    create(emu, sdep("iris"))
    rec.wait(lambda o: state(o) == "Available")
    routes = emu.seldon.routes[(NS, "iris")]
    _patch_predictors(
        emu, [_predictor("default", "gs://models/iris", 100), _predictor("g2", "gs://bad/m", 0)]
    )
    failed = rec.wait(lambda o: state(o) == "Failed")
    assert failed["status"]["description"].startswith("Deployment is no longer progressing")
    assert {state(o) for o in rec.seen} <= {"", "Creating", "Available", "Failed"}
    # the routes wait for every predictor (completeServiceCreation): the champion keeps all
    assert emu.seldon.routes[(NS, "iris")] == routes
    # an existing Deployment is reported with its replicas; none of the challenger's is
    # available (availableReplicas is omitted when 0)
    assert failed["status"]["deploymentStatus"]["iris-g2-0-classifier"] == {"replicas": 1}
    champion = [p for p in emu.list_objects("Pod", NS) if "-default-" in p["metadata"]["name"]]
    assert [p["status"]["phase"] for p in champion] == ["Running"]
    # removing the failing predictor: Available again, its Deployment and pods deleted
    since = len(rec.seen)
    _patch_predictors(emu, [_predictor("default", "gs://models/iris", 0)])
    back = rec.wait(lambda o: state(o) == "Available", since)
    assert set(back["status"]["deploymentStatus"]) == {"iris-default-0-classifier"}
    assert emu.seldon.wait_idle(5)
    assert [d["metadata"]["name"] for d in emu.list_objects("Deployment", NS)] == [
        "iris-default-0-classifier"
    ]
    assert all("-g2-" not in n for n in _pods(emu))
    reasons = {e["reason"] for e in emu.list_objects("Event", NS)}
    assert "DeleteDeployment" in reasons


def test_the_webhook_requires_a_model_uri_for_prepackaged_servers(
    k8s_emulator: KubernetesEmulator,
) -> None:
    body = sdep("iris")
    del body["spec"]["predictors"][0]["graph"]["modelUri"]
    assert "modelUri required" in status_of(raises(create, k8s_emulator, body))["message"]


def test_the_operator_writes_its_deployments(k8s_emulator: KubernetesEmulator) -> None:
    emu = k8s_emulator.progress_deadline(0.3)
    rec = Recorder(emu, "machinelearning.seldon.io/seldondeployments", "iris")
    create(emu, sdep("iris"))
    rec.wait(lambda o: state(o) == "Available")
    [dep] = emu.list_objects("Deployment", NS)
    assert dep["metadata"]["name"] == "iris-default-0-classifier"
    assert dep["metadata"]["ownerReferences"][0]["kind"] == "SeldonDeployment"
    init = dep["spec"]["template"]["spec"]["initContainers"][0]
    assert init["name"] == "classifier-model-initializer" and init["args"][0] == "gs://models/iris"
    conds = {c["type"]: c["reason"] for c in dep["status"]["conditions"]}
    assert conds == {
        "Available": "MinimumReplicasAvailable",
        "Progressing": "NewReplicaSetAvailable",
    }

    emu.seldon.fail_when_uri_startswith = "gs://bad"
    custom_api(emu).patch_namespaced_custom_object(
        SELDON[0], "v1", NS, SDEP, "iris", {"spec": sdep("iris", "gs://bad/m")["spec"]}
    )
    failed = rec.wait(lambda o: state(o) == "Failed")
    assert failed["status"]["description"].startswith("Deployment is no longer progressing")
    dep = emu.get("Deployment", "iris-default-0-classifier")
    assert dep is not None and dep["metadata"]["generation"] == 2
    progressing = {c["type"]: c for c in dep["status"]["conditions"]}["Progressing"]
    assert progressing["reason"] == "ProgressDeadlineExceeded"
    # the old pod still serves: the Deployment stays Available
    assert {c["type"]: c for c in dep["status"]["conditions"]}["Available"]["status"] == "True"


VS = ("networking.istio.io", "v1alpha3", NS, "virtualservices")


def test_the_operator_routes_through_the_virtual_service_it_writes(
    k8s_emulator: KubernetesEmulator,
) -> None:
    """S-vs: one VirtualService per SeldonDeployment, named after it and owned by it; the
    ingress routes as it says, from the moment it says so; Istio off, none is written."""
    emu = k8s_emulator
    api = custom_api(emu)
    rec = Recorder(emu, "machinelearning.seldon.io/seldondeployments", "iris")
    body = sdep("iris")
    body["spec"]["predictors"] = [
        _predictor("default", "gs://models/iris", 70),
        _predictor("g2", "gs://models/v2", 30),
    ]
    create(emu, body)
    ready = rec.wait(lambda o: state(o) == "Available")
    assert cond(ready, "istioVirtualServicesReady")["reason"] == "All VirtualServices created"
    vs = api.get_namespaced_custom_object(*VS, "iris")
    assert vs["metadata"]["ownerReferences"][0]["uid"] == ready["metadata"]["uid"]
    assert vs["spec"]["gateways"] == ["seldon-gateway"] and vs["spec"]["hosts"] == ["*"]
    rest, grpc = vs["spec"]["http"]
    assert rest["match"] == [{"uri": {"prefix": f"/seldon/{NS}/iris/"}}]
    assert rest["rewrite"] == {"uri": "/"}
    assert [(d["destination"], d["weight"]) for d in rest["route"]] == [
        ({"host": "iris-default", "subset": "default", "port": {"number": 8000}}, 70),
        ({"host": "iris-g2", "subset": "g2", "port": {"number": 8000}}, 30),
    ]
    assert grpc["match"][0]["headers"] == {"seldon": {"exact": "iris"}, "namespace": {"exact": NS}}
    assert [d["destination"]["port"]["number"] for d in grpc["route"]] == [5001, 5001]

    # a traffic change: the data plane already routes so when the VirtualService says it
    seen: list[dict[str, int]] = []

    def on_write(ev: Any) -> None:
        if ev.rkey == "networking.istio.io/virtualservices" and ev.type == "MODIFIED":
            route = emu.dataplane.route("seldon", f"{NS}/iris")
            seen.append({b.key: b.weight for b in route.served} if route else {})

    emu.store.add_listener(on_write)
    _patch_predictors(
        emu,
        [
            _predictor("default", "gs://models/iris", 100),
            _predictor("g2", "gs://models/v2", 40, True),
        ],
    )
    assert emu.wait_for(lambda: bool(seen), 5)
    assert seen == [{"default": 100}]
    rest = api.get_namespaced_custom_object(*VS, "iris")["spec"]["http"][0]
    assert [(d["destination"]["subset"], d["weight"]) for d in rest["route"]] == [("default", 100)]
    assert (rest["mirror"]["subset"], rest["mirrorPercentage"]) == ("g2", {"value": 40.0})

    emu.seldon.istio = False
    create(emu, sdep("plain"))
    plain = Recorder(emu, "machinelearning.seldon.io/seldondeployments", "plain").wait(
        lambda o: state(o) == "Available"
    )
    assert cond(plain, "istioVirtualServicesReady")["reason"] == "No VirtualServices defined"
    assert [v["metadata"]["name"] for v in emu.list_objects("VirtualService", NS)] == ["iris"]
    assert emu.dataplane.route("seldon", f"{NS}/plain") is not None  # Ambassador routes
