"""The KServe and Seldon controller simulators move status as the real operators do."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kubernetes import watch

from tests.k8s_emulator import KubernetesEmulator

from .conftest import KSERVE, NS, SELDON, core_api, create_isvc, custom_api, isvc, sdep

ISVC = "inferenceservices"
SDEP = "seldondeployments"


def _cond(obj: dict[str, Any], ctype: str) -> dict[str, Any] | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c["type"] == ctype:
            return c
    return None


def _watch_until(
    emu: KubernetesEmulator,
    gv: tuple[str, str],
    plural: str,
    name: str,
    rv: str,
    done: Callable[[dict[str, Any]], bool],
    timeout: int = 5,
) -> list[dict[str, Any]]:
    """Collect the object's versions from a watch (name field selector) until ``done``."""
    api = custom_api(emu)
    seen: list[dict[str, Any]] = []
    w = watch.Watch()
    for ev in w.stream(
        api.list_namespaced_custom_object,
        *gv,
        NS,
        plural,
        field_selector=f"metadata.name={name}",
        resource_version=rv,
        timeout_seconds=timeout,
    ):
        seen.append(ev["object"])
        if done(ev["object"]):
            w.stop()
            return seen
    raise AssertionError(
        f"condition not reached; last status: {seen[-1].get('status') if seen else None}"
    )


def _ready_for_generation(obj: dict[str, Any]) -> bool:
    ready = _cond(obj, "Ready")
    st = obj.get("status") or {}
    return bool(
        ready
        and ready["status"] == "True"
        and st.get("observedGeneration") == obj["metadata"]["generation"]
    )


def test_kserve_becomes_ready(emu: KubernetesEmulator) -> None:
    api = custom_api(emu)
    created = create_isvc(api, isvc("iris"))
    seen = _watch_until(
        emu, KSERVE, ISVC, "iris", created["metadata"]["resourceVersion"], _ready_for_generation
    )
    final = seen[-1]
    st = final["status"]
    assert any(_cond(o, "Ready") and _cond(o, "Ready")["status"] == "Unknown" for o in seen), (
        "Ready went through Unknown"
    )
    assert st["url"] == "http://iris.default.example.com"
    assert st["address"]["url"] == "http://iris.default.svc.cluster.local"
    pred = st["components"]["predictor"]
    assert pred["latestCreatedRevision"] == pred["latestReadyRevision"] == "iris-predictor-00001"
    assert pred["traffic"] == [
        {"revisionName": "iris-predictor-00001", "percent": 100, "latestRevision": True}
    ]
    assert st["modelStatus"]["states"] == {
        "activeModelState": "Loaded",
        "targetModelState": "Loaded",
    }
    assert st["modelStatus"]["transitionStatus"] == "UpToDate"
    for c in st["conditions"]:
        assert c["lastTransitionTime"].endswith("Z")
    assert [c["type"] for c in st["conditions"]] == sorted(c["type"] for c in st["conditions"])
    assert final["metadata"]["finalizers"] == ["inferenceservice.finalizers"]
    pods = core_api(emu).list_namespaced_pod(
        NS, label_selector="serving.kserve.io/inferenceservice=iris,component=predictor"
    )
    assert len(pods.items) == 1 and pods.items[0].status.phase == "Running"
    assert pods.items[0].metadata.owner_references[0].uid == final["metadata"]["uid"]


def test_kserve_spec_change_is_not_ready_until_new_revision(emu: KubernetesEmulator) -> None:
    api = custom_api(emu)
    created = create_isvc(api, isvc("iris"))
    _watch_until(
        emu, KSERVE, ISVC, "iris", created["metadata"]["resourceVersion"], _ready_for_generation
    )
    updated = api.patch_namespaced_custom_object(
        *KSERVE,
        NS,
        ISVC,
        "iris",
        {"spec": {"predictor": {"model": {"storageUri": "s3://models/v2"}}}},
    )
    assert updated["metadata"]["generation"] == 2
    # right after the write, the status still says Ready for generation 1: a stale Ready
    assert (
        _cond(updated, "Ready")["status"] == "True" and updated["status"]["observedGeneration"] == 1
    )
    seen = _watch_until(
        emu, KSERVE, ISVC, "iris", updated["metadata"]["resourceVersion"], _ready_for_generation
    )
    gen2 = [o for o in seen if (o.get("status") or {}).get("observedGeneration") == 2]
    assert _cond(gen2[0], "Ready")["status"] == "Unknown", (
        "Ready must drop for the new generation first"
    )
    assert (
        gen2[0]["status"]["components"]["predictor"]["latestCreatedRevision"]
        == "iris-predictor-00002"
    )
    assert (
        gen2[0]["status"]["components"]["predictor"]["latestReadyRevision"]
        == "iris-predictor-00001"
    )
    pred = seen[-1]["status"]["components"]["predictor"]
    assert pred["latestReadyRevision"] == "iris-predictor-00002"
    assert pred["previousRolledoutRevision"] == "iris-predictor-00001"
    assert emu.wait_for(lambda: len(emu.list_objects("Pod", NS)) == 1, 3), (
        "old revision pods are removed"
    )


def test_kserve_failure_on_unreachable_storage(emu: KubernetesEmulator) -> None:
    emu.kserve.fail_when_uri_startswith = "s3://unreachable/"
    api = custom_api(emu)
    created = create_isvc(api, isvc("broken", uri="s3://unreachable/model"))

    def failed(o: dict[str, Any]) -> bool:
        r = _cond(o, "Ready")
        return bool(r and r["status"] == "False")

    final = _watch_until(
        emu, KSERVE, ISVC, "broken", created["metadata"]["resourceVersion"], failed
    )[-1]
    ready = _cond(final, "Ready")
    assert ready["reason"] == "RevisionFailed" and "s3://unreachable/model" in ready["message"]
    ms = final["status"]["modelStatus"]
    assert (
        ms["states"]["targetModelState"] == "FailedToLoad"
        and ms["transitionStatus"] == "BlockedByFailedLoad"
    )
    assert (
        ms["lastFailureInfo"]["reason"] == "ModelLoadFailed"
        and "unreachable" in ms["lastFailureInfo"]["message"]
    )
    pod = core_api(emu).list_namespaced_pod(NS).items[0]
    assert pod.status.init_container_statuses[0].last_state.terminated.exit_code == 1
    logs = core_api(emu).read_namespaced_pod_log(
        pod.metadata.name, NS, container="storage-initializer"
    )
    assert "ERROR" in logs and "s3://unreachable/model" in logs


def test_kserve_stop_annotation_and_resume(emu: KubernetesEmulator) -> None:
    api = custom_api(emu)
    created = create_isvc(api, isvc("iris"))
    ready = _watch_until(
        emu, KSERVE, ISVC, "iris", created["metadata"]["resourceVersion"], _ready_for_generation
    )[-1]
    stopped = api.patch_namespaced_custom_object(
        *KSERVE, NS, ISVC, "iris", {"metadata": {"annotations": {"serving.kserve.io/stop": "true"}}}
    )
    assert stopped["metadata"]["generation"] == ready["metadata"]["generation"], (
        "annotations do not bump generation"
    )

    def is_stopped(o: dict[str, Any]) -> bool:
        r = _cond(o, "Ready")
        return bool(r and r["status"] == "False" and r.get("reason") == "Stopped")

    final = _watch_until(
        emu, KSERVE, ISVC, "iris", stopped["metadata"]["resourceVersion"], is_stopped
    )[-1]
    assert _cond(final, "Stopped")["status"] == "True"
    assert "url" not in final["status"]
    assert emu.wait_for(lambda: not emu.list_objects("Pod", NS), 3), (
        "predictor pods deleted when stopped"
    )

    resumed = api.patch_namespaced_custom_object(
        *KSERVE, NS, ISVC, "iris", {"metadata": {"annotations": {"serving.kserve.io/stop": None}}}
    )
    final = _watch_until(
        emu, KSERVE, ISVC, "iris", resumed["metadata"]["resourceVersion"], _ready_for_generation
    )[-1]
    assert _cond(final, "Stopped")["status"] == "False"


def test_kserve_delete_removes_finalizer_and_pods(emu: KubernetesEmulator) -> None:
    api = custom_api(emu)
    created = create_isvc(api, isvc("iris"))
    _watch_until(
        emu, KSERVE, ISVC, "iris", created["metadata"]["resourceVersion"], _ready_for_generation
    )
    out = api.delete_namespaced_custom_object(*KSERVE, NS, ISVC, "iris")
    assert out["metadata"]["deletionTimestamp"]
    assert emu.wait_for(lambda: emu.get("InferenceService", "iris") is None, 3)
    assert emu.wait_for(lambda: not emu.list_objects("Pod", NS), 3)


def test_kserve_set_ready_and_hold(emu: KubernetesEmulator) -> None:
    emu.kserve.hold = True
    api = custom_api(emu)
    created = create_isvc(api, isvc("iris"))

    def progressing(o: dict[str, Any]) -> bool:
        r = _cond(o, "Ready")
        return bool(r and r["status"] == "Unknown")

    _watch_until(emu, KSERVE, ISVC, "iris", created["metadata"]["resourceVersion"], progressing)
    assert emu.kserve.wait_idle(2)
    assert _cond(emu.get("InferenceService", "iris"), "Ready")["status"] == "Unknown", (
        "held: never ready"
    )
    out = emu.kserve.set_ready("iris", False, reason="RevisionFailed", message="OOMKilled")
    assert _cond(out, "Ready") == {
        **_cond(out, "Ready"),
        "status": "False",
        "reason": "RevisionFailed",
        "message": "OOMKilled",
    }


def test_seldon_creating_then_available(emu: KubernetesEmulator) -> None:
    api = custom_api(emu)
    created = api.create_namespaced_custom_object(*SELDON, NS, SDEP, sdep("iris"))
    seen = _watch_until(
        emu,
        SELDON,
        SDEP,
        "iris",
        created["metadata"]["resourceVersion"],
        lambda o: (o.get("status") or {}).get("state") == "Available",
    )
    states = [(o.get("status") or {}).get("state") for o in seen]
    assert "Creating" in states and states[-1] == "Available"
    st = seen[-1]["status"]
    assert (
        st["address"]["url"]
        == "http://iris-default.default.svc.cluster.local:8000/api/v1.0/predictions"
    )
    assert st["deploymentStatus"] == {
        "iris-default-0-classifier": {"replicas": 1, "availableReplicas": 1}
    }
    assert st["replicas"] == 1 and "observedGeneration" not in st, (
        "Seldon 1.17 does not set observedGeneration"
    )
    pods = core_api(emu).list_namespaced_pod(NS, label_selector="seldon-deployment-id=iris")
    assert len(pods.items) == 1 and pods.items[0].metadata.labels["seldon-app"] == "iris-default"

    upd = api.patch_namespaced_custom_object(
        *SELDON,
        NS,
        SDEP,
        "iris",
        {
            "spec": {
                "predictors": [
                    {
                        "name": "default",
                        "replicas": 2,
                        "graph": {
                            "name": "classifier",
                            "implementation": "SKLEARN_SERVER",
                            "modelUri": "gs://m/v2",
                        },
                    }
                ]
            }
        },
    )
    seen = _watch_until(
        emu,
        SELDON,
        SDEP,
        "iris",
        upd["metadata"]["resourceVersion"],
        lambda o: (o.get("status") or {}).get("state") == "Available",
    )
    assert (seen[0].get("status") or {}).get("state") == "Creating", (
        "a new generation goes back to Creating"
    )
    assert seen[-1]["status"]["replicas"] == 2
    api.delete_namespaced_custom_object(*SELDON, NS, SDEP, "iris")
    assert emu.wait_for(lambda: not emu.list_objects("Pod", NS), 3), (
        "pods garbage-collected with their owner"
    )


def test_seldon_failure(emu: KubernetesEmulator) -> None:
    """The cause is on the pod, made from its Deployment's template (initializer args
    included); the state says only that the progress deadline passed."""
    emu.progress_deadline(0.3)
    emu.seldon.fail_when_uri_startswith = ("s3://unreachable/", "gs://unreachable/")
    api = custom_api(emu)
    created = api.create_namespaced_custom_object(
        *SELDON, NS, SDEP, sdep("bad", uri="gs://unreachable/m")
    )
    final = _watch_until(
        emu,
        SELDON,
        SDEP,
        "bad",
        created["metadata"]["resourceVersion"],
        lambda o: (o.get("status") or {}).get("state") == "Failed",
    )[-1]
    assert final["status"]["description"] == (
        "Deployment is no longer progressing and not available."
    )
    [pod] = emu.list_objects("Pod", NS)
    [dep] = emu.list_objects("Deployment", NS)
    assert pod["spec"]["initContainers"] == dep["spec"]["template"]["spec"]["initContainers"]
    assert pod["spec"]["containers"] == dep["spec"]["template"]["spec"]["containers"]
    [init] = pod["spec"]["initContainers"]
    assert init["name"] == "classifier-model-initializer"
    assert init["args"][0] == "gs://unreachable/m"  # model_initializer_injector.go:219-228
    [status] = pod["status"]["initContainerStatuses"]
    assert status["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert "gs://unreachable/m" in status["lastState"]["terminated"]["message"]
    assert status["image"] == init["image"]
