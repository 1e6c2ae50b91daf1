"""The KServe v0.20.0 simulator's upstream behaviours (FIDELITY.md rows K-*): statuses are
recorded as the store commits them, so transient ones cannot be missed."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.k8s_emulator import KubernetesEmulator
from tests.k8s_emulator.store import Event

from .conftest import KSERVE, NS, create_isvc, custom_api, isvc, raises

ISVC = "inferenceservices"


@pytest.fixture
def up(k8s_emulator: KubernetesEmulator) -> Iterator[KubernetesEmulator]:
    yield k8s_emulator.progress_deadline(0.4)


class Recorder:
    """Every committed version of one object, in order."""

    def __init__(self, emu: KubernetesEmulator, key: str, name: str) -> None:
        self.emu = emu
        self.seen: list[dict[str, Any]] = []
        self._key, self._name = key, f"{NS}/{name}"
        emu.store.add_listener(self._on)

    def _on(self, ev: Event) -> None:
        if ev.rkey == self._key and ev.key == self._name and ev.type != "DELETED":
            self.seen.append(ev.obj)

    def wait(self, pred: Callable[[dict[str, Any]], bool], since: int = 0) -> dict[str, Any]:
        found: list[dict[str, Any]] = []

        def check() -> bool:
            found[:] = [o for o in self.seen[since:] if pred(o)]
            return bool(found)

        assert self.emu.wait_for(check, 10), self.seen[-1:] if self.seen else "no events"
        return found[0]


def cond(obj: dict[str, Any], ctype: str) -> dict[str, Any]:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c["type"] == ctype:
            return dict(c)
    return {}


def ready(obj: dict[str, Any]) -> bool:
    return cond(obj, "Ready").get("status") == "True"


def revision(obj: dict[str, Any]) -> str:
    pred = ((obj.get("status") or {}).get("components") or {}).get("predictor") or {}
    return str(pred.get("latestReadyRevision", ""))


def patch(emu: KubernetesEmulator, name: str, body: dict[str, Any]) -> dict[str, Any]:
    return custom_api(emu).patch_namespaced_custom_object(*KSERVE, NS, ISVC, name, body)


def test_observed_generation_is_the_knative_service_generation(up: KubernetesEmulator) -> None:
    rec = Recorder(up, "serving.kserve.io/inferenceservices", "iris")
    create_isvc(custom_api(up), isvc("iris"))
    first = rec.wait(ready)
    assert first["status"]["observedGeneration"] == 1 and revision(first) == "iris-predictor-00001"
    assert first["status"]["deploymentMode"] == "Knative"
    assert cond(first, "RoutesReady")["status"] == "True"
    assert cond(first, "Stopped")["status"] == "False"

    # a metadata-only write: the ISVC generation stays, the ksvc template (labels and
    # annotations are copied into it) moves, a new revision rolls out
    mark = len(rec.seen)
    meta = patch(up, "iris", {"metadata": {"annotations": {"modeldeploy.io/note": "x"}}})
    assert meta["metadata"]["generation"] == 1
    second = rec.wait(lambda o: ready(o) and revision(o) == "iris-predictor-00002", mark)
    assert second["status"]["observedGeneration"] == 2 > second["metadata"]["generation"] - 1
    assert second["status"]["components"]["predictor"]["previousRolledoutRevision"] == (
        "iris-predictor-00001"
    )

    mark = len(rec.seen)
    patch(up, "iris", {"spec": {"predictor": {"model": {"storageUri": "s3://models/v2"}}}})
    third = rec.wait(lambda o: ready(o) and revision(o) == "iris-predictor-00003", mark)
    assert third["metadata"]["generation"] == 2 and third["status"]["observedGeneration"] == 3


def test_stop_clears_the_status_and_resume_recreates_the_child(up: KubernetesEmulator) -> None:
    rec = Recorder(up, "serving.kserve.io/inferenceservices", "iris")
    create_isvc(custom_api(up), isvc("iris"))
    rec.wait(ready)
    patch(up, "iris", {"spec": {"predictor": {"model": {"storageUri": "s3://models/v2"}}}})
    rec.wait(lambda o: ready(o) and o["status"]["observedGeneration"] == 2)

    mark = len(rec.seen)
    patch(up, "iris", {"metadata": {"annotations": {"serving.kserve.io/stop": "true"}}})
    stopped = rec.wait(lambda o: cond(o, "Stopped").get("status") == "True", mark)
    assert set(stopped["status"]) == {"deploymentMode", "conditions"}  # cleared
    assert cond(stopped, "PredictorReady")["reason"] == "Stopped"
    assert up.wait_for(lambda: not up.list_objects("Pod", NS), 3)

    mark = len(rec.seen)
    patch(up, "iris", {"metadata": {"annotations": {"serving.kserve.io/stop": "false"}}})
    resumed = rec.wait(lambda o: cond(o, "Stopped").get("status") == "False", mark)
    # the first status after a resume: not ready, not terminal, no observedGeneration
    assert cond(resumed, "Ready")["status"] == "False"
    assert cond(resumed, "IngressReady")["message"] == "Predictor ingress not created"
    assert cond(resumed, "PredictorReady")["reason"] == "Stopped"
    assert "observedGeneration" not in resumed["status"]
    back = rec.wait(ready, mark)
    assert back["metadata"]["generation"] == 2
    assert back["status"]["observedGeneration"] == 1  # a new ksvc starts at generation 1
    assert revision(back) == "iris-predictor-00001"


@pytest.mark.parametrize(
    ("model", "runtime", "reason"),
    [
        ({"modelFormat": {"name": "sklearn"}}, "kserve-sklearnserver", None),
        (
            {"modelFormat": {"name": "sklearn"}, "protocolVersion": "v2"},
            "kserve-sklearnserver",
            None,
        ),
        ({"modelFormat": {"name": "mlflow"}}, None, "NoSupportingRuntime"),
        ({"modelFormat": {"name": "mlflow"}, "protocolVersion": "v2"}, "kserve-mlserver", None),
        (
            {"modelFormat": {"name": "mlflow"}, "runtime": "kserve-mlserver"},
            "kserve-mlserver",
            None,
        ),
        ({"modelFormat": {"name": "triton"}}, "kserve-tritonserver", None),
        ({"modelFormat": {"name": "pytorch"}, "protocolVersion": "v1"}, "kserve-torchserve", None),
        (
            {"modelFormat": {"name": "xgboost"}, "runtime": "kserve-sklearnserver"},
            None,
            "NoSupportingRuntime",
        ),
        (
            {"modelFormat": {"name": "sklearn"}, "runtime": "my-runtime"},
            None,
            "RuntimeNotRecognized",
        ),
    ],
)
def test_runtime_selection_follows_the_shipped_runtimes(
    up: KubernetesEmulator, model: dict[str, Any], runtime: str | None, reason: str | None
) -> None:
    body = isvc("m")
    body["spec"]["predictor"]["model"].update(model)
    rec = Recorder(up, "serving.kserve.io/inferenceservices", "m")
    create_isvc(custom_api(up), body)
    if runtime is not None:
        assert rec.wait(ready)["status"]["clusterServingRuntimeName"] == runtime
        return
    failed = rec.wait(
        lambda o: (o.get("status") or {}).get("modelStatus", {}).get("lastFailureInfo")
    )
    ms = failed["status"]["modelStatus"]
    assert ms["transitionStatus"] == "InvalidSpec"
    assert ms["states"]["targetModelState"] == "FailedToLoad"
    assert ms["lastFailureInfo"]["reason"] == reason
    events = [e for e in up.list_objects("Event", NS) if e["reason"] == "InternalError"]
    assert events and events[0]["type"] == "Warning"


def test_the_webhook_defaults_the_legacy_form_and_the_deployment_mode(
    k8s_emulator: KubernetesEmulator,
) -> None:
    k8s_emulator.kserve.default_deployment_mode = "Standard"
    body = isvc("legacy")
    body["spec"]["predictor"] = {"triton": {"storageUri": "s3://m/triton"}}
    out = create_isvc(custom_api(k8s_emulator), body)
    assert out["spec"]["predictor"]["model"] == {
        "modelFormat": {"name": "triton"},
        "protocolVersion": "v2",
        "storageUri": "s3://m/triton",
    }
    assert out["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Standard"
    bad = isvc("Bad_Name")
    assert raises(create_isvc, custom_api(k8s_emulator), bad).status in (403, 422)


def _standard(emu: KubernetesEmulator, name: str = "iris", uri: str = "s3://m/iris") -> Recorder:
    body = isvc(name, uri)
    body["metadata"]["annotations"] = {"serving.kserve.io/deploymentMode": "RawDeployment"}
    rec = Recorder(emu, "serving.kserve.io/inferenceservices", name)
    create_isvc(custom_api(emu), body)
    return rec


def dep_cond(emu: KubernetesEmulator, ctype: str, name: str = "iris") -> dict[str, Any]:
    dep = emu.get("Deployment", f"{name}-predictor") or {}
    for c in (dep.get("status") or {}).get("conditions") or []:
        if c["type"] == ctype:
            return dict(c)
    return {}


def test_standard_mode_rolls_the_deployment_while_old_pods_serve(up: KubernetesEmulator) -> None:
    rec = _standard(up)
    first = rec.wait(ready)
    assert first["status"]["deploymentMode"] == "Standard"  # legacy value normalised
    dep = up.get("Deployment", "iris-predictor")
    assert dep is not None and dep["metadata"]["generation"] == 1
    assert first["status"]["observedGeneration"] == dep["status"]["observedGeneration"] == 1
    assert dep_cond(up, "Progressing")["reason"] == "NewReplicaSetAvailable"
    assert "RoutesReady" not in {c["type"] for c in first["status"]["conditions"]}
    old_pods = {p["metadata"]["name"] for p in up.list_objects("Pod", NS)}

    up.kserve.hold = True  # freeze the rollout half-way to look at it
    mark = len(rec.seen)
    patch(up, "iris", {"spec": {"predictor": {"model": {"storageUri": "s3://m/v2"}}}})
    mid = rec.wait(lambda o: (o.get("status") or {}).get("observedGeneration") == 2, mark)
    assert dep_cond(up, "Progressing")["reason"] == "ReplicaSetUpdated"
    assert dep_cond(up, "Available")["status"] == "True"
    # 0.20: PredictorReady stays True while the old pods are available (K5)
    assert cond(mid, "PredictorReady")["status"] == "True" and ready(mid)
    pods = {p["metadata"]["name"]: p for p in up.list_objects("Pod", NS)}
    assert old_pods < set(pods) and all(pods[n]["status"]["phase"] == "Running" for n in old_pods)
    # the new pods are stamped from the new template; KServe's pod webhook adds the storage
    # initializer from its source-URI annotation (storage_initializer_injector.go)
    template = up.get("Deployment", "iris-predictor")["spec"]["template"]
    [new] = [pods[n] for n in set(pods) - old_pods]
    assert new["spec"]["containers"] == template["spec"]["containers"]
    assert new["spec"]["initContainers"][0]["args"] == ["s3://m/v2", "/mnt/models"]

    up.kserve.hold = False
    up.kserve.enqueue(NS, "iris", 0)
    assert up.wait_for(
        lambda: dep_cond(up, "Progressing").get("reason") == "NewReplicaSetAvailable"
    )
    assert up.wait_for(
        lambda: not old_pods & {p["metadata"]["name"] for p in up.list_objects("Pod", NS)}
    )


def test_standard_mode_scale_event_moves_the_observed_generation(up: KubernetesEmulator) -> None:
    rec = _standard(up)
    rec.wait(ready)
    from kubernetes import client

    # what an HPA does: write the Deployment's /scale subresource
    client.AppsV1Api(up.api_client()).patch_namespaced_deployment_scale(
        "iris-predictor", NS, {"spec": {"replicas": 2}}
    )
    moved = rec.wait(lambda o: (o.get("status") or {}).get("observedGeneration") == 2)
    assert moved["metadata"]["generation"] == 1  # the HPA's write ran the child ahead


def test_standard_mode_failures_follow_the_deployment_conditions(up: KubernetesEmulator) -> None:
    up.kserve.fail_when_uri_startswith = "s3://bad"
    rec = _standard(up, "iris", "s3://bad/model")
    failing = rec.wait(
        lambda o: (
            (o.get("status") or {}).get("modelStatus", {}).get("transitionStatus")
            == "BlockedByFailedLoad"
        )
    )
    assert cond(failing, "PredictorReady")["reason"] == "MinimumReplicasUnavailable"
    assert set(failing["status"]["modelStatus"]["lastFailureInfo"]) == {
        "reason",
        "message",
        "exitCode",
    }
    assert up.wait_for(
        lambda: dep_cond(up, "Progressing").get("reason") == "ProgressDeadlineExceeded"
    )

    up.kserve.fail_create_message = 'pods "x" is forbidden: exceeded quota: compute'
    rec2 = _standard(up, "quota")
    blocked = rec2.wait(lambda o: cond(o, "PredictorReady").get("reason") == "FailedCreate")
    assert "exceeded quota" in cond(blocked, "PredictorReady")["message"]
    assert dep_cond(up, "ReplicaFailure", "quota")["status"] == "True"


def test_knative_model_load_failure_has_upstreams_failure_info(up: KubernetesEmulator) -> None:
    up.kserve.fail_when_uri_startswith = "s3://bad"
    rec = Recorder(up, "serving.kserve.io/inferenceservices", "iris")
    create_isvc(custom_api(up), isvc("iris", "s3://bad/model"))
    failed = rec.wait(lambda o: cond(o, "Ready").get("status") == "False")
    info = failed["status"]["modelStatus"]["lastFailureInfo"]
    assert set(info) == {"reason", "message", "exitCode"} and info["reason"] == "ModelLoadFailed"
    assert cond(failed, "PredictorReady")["reason"] == "RevisionFailed"


def test_standard_mode_stop_deletes_the_deployment_and_resume_starts_over(
    up: KubernetesEmulator,
) -> None:
    rec = _standard(up)
    rec.wait(ready)
    patch(up, "iris", {"spec": {"predictor": {"model": {"storageUri": "s3://m/v2"}}}})
    rec.wait(lambda o: ready(o) and o["status"]["observedGeneration"] == 2)

    mark = len(rec.seen)
    patch(up, "iris", {"metadata": {"annotations": {"serving.kserve.io/stop": "true"}}})
    rec.wait(lambda o: cond(o, "Stopped").get("status") == "True", mark)
    assert up.wait_for(lambda: up.get("Deployment", "iris-predictor") is None, 3)

    mark = len(rec.seen)
    patch(up, "iris", {"metadata": {"annotations": {"serving.kserve.io/stop": None}}})
    first = rec.wait(lambda o: cond(o, "Stopped").get("status") == "False", mark)
    assert cond(first, "Ready")["status"] == "False" and "observedGeneration" not in first["status"]
    back = rec.wait(ready, mark)
    assert back["metadata"]["generation"] == 2 and back["status"]["observedGeneration"] == 1


def traffic(obj: dict[str, Any]) -> list[tuple[str, int, str | None]]:
    pred = obj["status"]["components"]["predictor"]
    return [(t["revisionName"], t["percent"], t.get("tag")) for t in pred["traffic"]]


def revisions_with_pods(emu: KubernetesEmulator) -> set[str]:
    pods = emu.kserve.pods_of(NS, emu.kserve.pod_selector("iris"))
    return {p["metadata"]["labels"]["serving.knative.dev/revision"] for p in pods}


def test_knative_canary_traffic_percent_splits_latest_and_prev(up: KubernetesEmulator) -> None:
    """K-canary: canaryTrafficPercent routes the latest ready revision (tag `latest` with tag
    routing) and the last rolled-out one (tag `prev`); removing it promotes; a failed canary
    revision leaves the traffic where it was."""
    rec = Recorder(up, "serving.kserve.io/inferenceservices", "iris")
    create_isvc(custom_api(up), isvc("iris"))
    rec.wait(ready)
    mark = len(rec.seen)
    patch(
        up,
        "iris",
        {
            "metadata": {"annotations": {"serving.kserve.io/enable-tag-routing": "true"}},
            "spec": {"predictor": {"canaryTrafficPercent": 10, "model": {"storageUri": "s3://v2"}}},
        },
    )
    split = rec.wait(lambda o: ready(o) and revision(o) == "iris-predictor-00002", mark)
    assert traffic(split) == [
        ("iris-predictor-00002", 10, "latest"),
        ("iris-predictor-00001", 90, "prev"),
    ]
    pred = split["status"]["components"]["predictor"]
    assert pred["latestRolledoutRevision"] == "iris-predictor-00001"
    assert pred["traffic"][1]["url"] == "http://prev-iris-predictor.default.example.com"
    assert revisions_with_pods(up) == {"iris-predictor-00001", "iris-predictor-00002"}

    mark = len(rec.seen)
    patch(up, "iris", {"spec": {"predictor": {"canaryTrafficPercent": 50}}})
    half = rec.wait(lambda o: traffic(o)[0][1] == 50, mark)
    assert revision(half) == "iris-predictor-00002" and traffic(half)[1][:2] == (
        "iris-predictor-00001",
        50,
    )

    mark = len(rec.seen)
    patch(up, "iris", {"spec": {"predictor": {"canaryTrafficPercent": None}}})
    done = rec.wait(lambda o: len(traffic(o)) == 1, mark)
    pred = done["status"]["components"]["predictor"]
    assert traffic(done) == [("iris-predictor-00002", 100, "latest")]
    assert (pred["latestRolledoutRevision"], pred["previousRolledoutRevision"]) == (
        "iris-predictor-00002",
        "iris-predictor-00001",
    )
    assert up.wait_for(lambda: revisions_with_pods(up) == {"iris-predictor-00002"}, 10)

    # KServe's documented rollback: canaryTrafficPercent below 100 on the rolled-out revision
    # routes `prev` to the previously rolled-out one again
    mark = len(rec.seen)
    patch(up, "iris", {"spec": {"predictor": {"canaryTrafficPercent": 0}}})
    back = rec.wait(lambda o: len(traffic(o)) == 2, mark)
    assert traffic(back) == [
        ("iris-predictor-00002", 0, "latest"),
        ("iris-predictor-00001", 100, "prev"),
    ]
    assert (
        back["status"]["components"]["predictor"]["latestRolledoutRevision"]
        == "iris-predictor-00001"
    )
    mark = len(rec.seen)
    patch(up, "iris", {"spec": {"predictor": {"canaryTrafficPercent": None}}})
    rec.wait(lambda o: traffic(o) == [("iris-predictor-00002", 100, "latest")], mark)

    up.kserve.fail_when_uri_startswith = "s3://bad"
    mark = len(rec.seen)
    patch(
        up,
        "iris",
        {
            "spec": {
                "predictor": {"canaryTrafficPercent": 10, "model": {"storageUri": "s3://bad/v3"}}
            }
        },
    )
    failed = rec.wait(lambda o: cond(o, "Ready").get("status") == "False", mark)
    assert cond(failed, "PredictorReady")["reason"] == "RevisionFailed"
    pred = failed["status"]["components"]["predictor"]
    assert pred["latestCreatedRevision"] == "iris-predictor-00003"
    assert pred["latestReadyRevision"] == "iris-predictor-00002"
    assert traffic(failed) == [
        ("iris-predictor-00002", 10, "latest"),
        ("iris-predictor-00002", 90, "prev"),
    ]


# ------------------------------------------------- Standard mode spec.canary[] (K-C rows)


def _canary(name: str, uri: str, percent: int, **pred: Any) -> dict[str, Any]:
    # the CRD requires a canary model's (container) name
    model = {"name": "kserve-container", "modelFormat": {"name": "sklearn"}, "storageUri": uri}
    return {"trafficPercent": percent, "predictor": {"name": name, "model": model, **pred}}


def _weights(emu: KubernetesEmulator, host: str = "iris-predictor-default.example.com") -> Any:
    route = emu.dataplane.route("kserve", host)
    return None if route is None else {b.key: b.weight for b in route.served}


def _pods(emu: KubernetesEmulator, deployment: str) -> set[str]:
    return {
        p["metadata"]["name"]
        for p in emu.list_objects("Pod", NS)
        if p["metadata"]["labels"].get("app") == f"isvc.{deployment}"
    }


def test_the_webhook_refuses_canaries_kserve_cannot_run(up: KubernetesEmulator) -> None:
    api = custom_api(up)
    standard = {"serving.kserve.io/deploymentMode": "Standard"}

    def refused(body: dict[str, Any]) -> str:
        exc = raises(create_isvc, api, body)
        assert exc.status == 403 and "inferenceservice.kserve-webhook-server" in exc.body
        return str(exc.body)

    knative = isvc("kn")
    knative["spec"]["canary"] = [_canary("v2", "s3://m/v2", 10)]
    assert "only supported in Standard" in refused(knative)
    cases = {
        "predictor.name is required": [{"trafficPercent": 10, "predictor": {"minReplicas": 1}}],
        "is not unique": [_canary("v2", "s3://m/v2", 10), _canary("v2", "s3://m/v3", 10)],
        "must not exceed 100, got 110": [
            _canary("v2", "s3://m/v2", 60),
            _canary("v3", "s3://m/v3", 50),
        ],
        "autoscaling fields are not allowed on a canary (maxReplicas)": [
            _canary("v2", "s3://m/v2", 10, maxReplicas=3)
        ],
        "exceeds 63 characters": [_canary("v" * 60, "s3://m/v2", 10)],
    }
    for message, canaries in cases.items():
        body = isvc("std")
        body["metadata"]["annotations"] = standard
        body["spec"]["canary"] = canaries
        assert message in refused(body), message
    assert not [o for o in up.list_objects("InferenceService", NS)]

    rec = _standard(up)
    rec.wait(ready)
    # promotion renames the predictor, which the webhook allows only with a new model
    exc = raises(patch, up, "iris", {"spec": {"predictor": {"name": "v2"}}})
    assert exc.status == 403 and "predictor.name change requires a model change" in exc.body
    assert "name" not in up.get("InferenceService", "iris")["spec"]["predictor"]


def test_standard_canary_is_routed_once_ready_promoted_by_name_and_removed(
    up: KubernetesEmulator,
) -> None:
    rec = _standard(up)
    rec.wait(ready)
    assert _weights(up) == {"iris-predictor": 100}
    stable_pods = _pods(up, "iris-predictor")

    # a canary that is not ready yet gets no traffic (kserve#5984)
    up.kserve.hold = True
    mark = len(rec.seen)
    patch(up, "iris", {"spec": {"canary": [_canary("v2", "s3://m/v2", 20)]}})
    waiting = rec.wait(lambda o: bool((o.get("status") or {}).get("canaryStatuses")), mark)
    assert waiting["status"]["canaryStatuses"][0] | {"modelStatus": None} == {
        "name": "v2",
        "ready": False,
        "trafficPercent": 20,
        "modelStatus": None,
    }
    assert cond(waiting, "CanaryPredictorReady")["status"] == "False" and ready(waiting)
    assert _weights(up) == {"iris-predictor": 100}
    assert up.get("Deployment", "iris-v2-predictor") is not None
    up.kserve.hold = False
    up.kserve.enqueue(NS, "iris", 0)
    split = rec.wait(lambda o: cond(o, "CanaryPredictorReady").get("status") == "True", mark)
    assert cond(split, "CanaryPredictorReady")["reason"] == "AllCanariesReady"
    assert split["status"]["canaryStatuses"][0]["ready"] is True
    assert _weights(up) == {"iris-predictor": 80, "iris-v2-predictor": 20}
    assert _pods(up, "iris-predictor") == stable_pods  # a traffic write changes no template
    canary_pods = _pods(up, "iris-v2-predictor")
    assert len(canary_pods) == 1  # ceil(1 stable replica * 20 %)

    # promotion: the stable predictor takes the canary's name and model; its Deployment and
    # pods carry on (no restart), the former stable Deployment goes
    mark = len(rec.seen)
    promoted_spec = _canary("v2", "s3://m/v2", 0)["predictor"]
    patch(up, "iris", {"spec": {"predictor": promoted_spec, "canary": None}})
    promoted = rec.wait(lambda o: "canaryStatuses" not in (o.get("status") or {}), mark)
    assert "CanaryPredictorReady" not in {c["type"] for c in promoted["status"]["conditions"]}
    assert up.wait_for(lambda: up.get("Deployment", "iris-predictor") is None, 10)
    assert _weights(up) == {"iris-v2-predictor": 100}
    assert _pods(up, "iris-v2-predictor") == canary_pods and not _pods(up, "iris-predictor")
    assert ready(rec.wait(ready, mark))

    # rollback: removing the entry deletes the canary's Deployment and pods
    patch(up, "iris", {"spec": {"canary": [_canary("v3", "s3://m/v3", 50)]}})
    assert up.wait_for(lambda: _weights(up) == {"iris-v2-predictor": 50, "iris-v3-predictor": 50})
    patch(up, "iris", {"spec": {"canary": None}})
    assert up.wait_for(lambda: up.get("Deployment", "iris-v3-predictor") is None, 10)
    assert _weights(up) == {"iris-v2-predictor": 100} and not _pods(up, "iris-v3-predictor")


def test_a_standard_canary_that_cannot_load_reports_it_per_canary(up: KubernetesEmulator) -> None:
    up.kserve.fail_when_uri_startswith = "s3://bad"
    rec = _standard(up)
    rec.wait(ready)
    patch(up, "iris", {"spec": {"canary": [_canary("v2", "s3://bad/v2", 30)]}})
    failed = rec.wait(
        lambda o: (
            bool((o.get("status") or {}).get("canaryStatuses"))
            and "lastFailureInfo" in o["status"]["canaryStatuses"][0]["modelStatus"]
        )
    )
    entry = failed["status"]["canaryStatuses"][0]
    assert entry["ready"] is False
    assert entry["modelStatus"]["transitionStatus"] == "BlockedByFailedLoad"
    assert "s3://bad/v2" in entry["modelStatus"]["lastFailureInfo"]["message"]
    assert ready(failed) and cond(failed, "CanaryPredictorReady")["status"] == "False"
    assert _weights(up) == {"iris-predictor": 100}  # the stable keeps every request
