"""The Seldon Core 2 simulator's upstream behaviours (FIDELITY.md rows S2-*), through the
real client."""

from __future__ import annotations

from typing import Any

import pytest

from tests.k8s_emulator import KubernetesEmulator
from tests.k8s_emulator.seldon2 import NO_REPLICAS, NO_SERVER

from .conftest import NS, custom_api
from .test_upstream_kserve import Recorder, cond

GROUP, VERSION = "mlops.seldon.io", "v1alpha1"


@pytest.fixture
def emu(k8s_emulator: KubernetesEmulator) -> KubernetesEmulator:
    k8s_emulator.seldon2.install_runtime(NS)
    k8s_emulator.seldon2.fail_when_uri_startswith = "s3://bad"
    return k8s_emulator


def create(emu: KubernetesEmulator, plural: str, name: str, spec: dict[str, Any]) -> None:
    kind = {"models": "Model", "experiments": "Experiment", "servers": "Server"}[plural]
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": kind,
        "metadata": {"name": name},
        "spec": spec,
    }
    custom_api(emu).create_namespaced_custom_object(GROUP, VERSION, NS, plural, body)


def model_ready(o: dict[str, Any]) -> tuple[str, str, str]:
    c = cond(o, "ModelReady")
    return c.get("status", ""), c.get("message", ""), c.get("reason", "")


def test_a_model_goes_progressing_then_available_for_its_generation_only(
    emu: KubernetesEmulator,
) -> None:
    rec = Recorder(emu, "mlops.seldon.io/models", "iris")
    create(emu, "models", "iris", {"storageUri": "s3://models/iris/1", "modelType": "sklearn"})
    ready = rec.wait(lambda o: model_ready(o)[0] == "True")
    assert model_ready(ready)[1] == "ModelAvailable" and cond(ready, "Ready")["status"] == "True"
    assert ("False", "ModelProgressing", "") in [model_ready(o) for o in rec.seen]
    assert ready["status"]["replicas"] == 1 and "observedGeneration" not in ready["status"]
    assert ready["metadata"]["finalizers"] == ["seldon.model.finalizer"]

    # an update: the old version keeps serving until the new one is available
    since = len(rec.seen)
    api = custom_api(emu)
    api.patch_namespaced_custom_object(
        GROUP, VERSION, NS, "models", "iris", {"spec": {"storageUri": "s3://models/iris/2"}}
    )
    progressing = rec.wait(lambda o: model_ready(o)[1] == "ModelProgressing", since)
    assert progressing["metadata"]["generation"] == 2
    rec.wait(lambda o: model_ready(o)[0] == "True", rec.seen.index(progressing) + 1)
    [route] = emu.seldon2.routes(NS)["iris"]
    assert (route.model_uri, route.version) == ("s3://models/iris/2", 2)


def test_scheduling_matches_requirements_and_replicas_to_servers(
    emu: KubernetesEmulator,
) -> None:
    create(emu, "models", "gpu", {"storageUri": "s3://m/a", "requirements": ["cuda"]})
    create(emu, "models", "many", {"storageUri": "s3://m/b", "modelType": "sklearn", "replicas": 3})
    create(emu, "models", "onnx", {"storageUri": "s3://m/c", "modelType": "onnx"})
    create(
        emu,
        "models",
        "pinned",
        {"storageUri": "s3://m/d", "modelType": "onnx", "server": "mlserver"},
    )
    create(emu, "models", "bad", {"storageUri": "s3://bad/e", "modelType": "xgboost"})

    def settled() -> bool:
        return all(
            model_ready(emu.get("models", n) or {})[1]
            in ("ModelAvailable", "ScheduleFailed", "ModelFailed")
            for n in ("gpu", "many", "onnx", "pinned", "bad")
        )

    assert emu.wait_for(settled, 10)
    assert model_ready(emu.get("models", "gpu")) == ("False", "ScheduleFailed", NO_SERVER)
    assert model_ready(emu.get("models", "many")) == ("False", "ScheduleFailed", NO_REPLICAS)
    assert model_ready(emu.get("models", "onnx"))[1] == "ModelAvailable"
    assert emu.seldon2.models[(NS, "onnx")].server == "triton"  # modelType is a requirement
    assert model_ready(emu.get("models", "pinned")) == ("False", "ScheduleFailed", NO_SERVER)
    status, state, reason = model_ready(emu.get("models", "bad"))
    assert (status, state) == ("False", "ModelFailed") and "s3://bad/e" in reason

    # a Server that fits makes the scheduler retry the failed model
    create(
        emu, "servers", "gpu-server", {"serverConfig": "mlserver", "extraCapabilities": ["cuda"]}
    )
    assert emu.wait_for(lambda: model_ready(emu.get("models", "gpu"))[0] == "True", 10)
    server = emu.get("servers", "gpu-server")
    assert cond(server, "StatefulSetReady")["status"] == "True"
    assert server["status"]["loadedModels"] == 1
    pods = [p["metadata"]["name"] for p in emu.list_objects("Pod", NS)]
    assert "gpu-server-0" in pods


def test_experiments_follow_their_candidates_and_are_refused_like_the_scheduler_does(
    emu: KubernetesEmulator,
) -> None:
    for name in ("a", "b"):
        create(emu, "models", name, {"storageUri": f"s3://m/{name}", "modelType": "sklearn"})
    rec = Recorder(emu, "mlops.seldon.io/experiments", "ab")
    create(
        emu,
        "experiments",
        "ab",
        {
            "default": "a",
            "candidates": [{"name": "a", "weight": 70}, {"name": "b", "weight": 30}],
            "mirror": {"name": "b", "percent": 50},
        },
    )
    ready = rec.wait(lambda o: cond(o, "ExperimentReady").get("status") == "True")
    assert cond(ready, "CandidatesReady")["reason"] == "Candidates ready"
    assert cond(ready, "MirrorReady")["reason"] == "Mirror ready"
    assert cond(ready, "Ready")["status"] == "True"
    routes = emu.seldon2.routes(NS)
    assert [(r.model, r.weight, r.mirror, r.mirror_percent) for r in routes["a"]] == [
        ("a", 70, False, 0),
        ("b", 30, False, 0),
        ("b", 0, True, 50),
    ]
    assert routes["ab.experiment"] == routes["a"]

    # a new spec restarts the experiment: inactive first, then active again
    since = len(rec.seen)
    custom_api(emu).patch_namespaced_custom_object(
        GROUP, VERSION, NS, "experiments", "ab", {"spec": {"mirror": None}}
    )
    rec.wait(lambda o: cond(o, "ExperimentReady").get("status") == "False", since)
    rec.wait(lambda o: cond(o, "ExperimentReady").get("status") == "True", since)

    # refused by the scheduler: a second experiment on the same default, none without candidates
    create(
        emu, "experiments", "again", {"default": "a", "candidates": [{"name": "b", "weight": 1}]}
    )
    create(emu, "experiments", "empty", {"candidates": []})
    assert emu.seldon2.wait_idle()
    for name in ("again", "empty"):
        assert not (emu.get("experiments", name).get("status") or {}).get("conditions")
    events = {e["involvedObject"]["name"]: e["message"] for e in emu.list_objects("Event", NS)}
    assert "already in experiment ab as a baseline" in events["again"]
    assert events["empty"] == "experiment empty has no candidates"


def test_deletion_waits_for_the_finalizer(emu: KubernetesEmulator) -> None:
    create(emu, "models", "gone", {"storageUri": "s3://m/g", "modelType": "sklearn"})
    assert emu.wait_for(lambda: model_ready(emu.get("models", "gone") or {})[0] == "True", 10)
    custom_api(emu).delete_namespaced_custom_object(GROUP, VERSION, NS, "models", "gone")
    assert emu.wait_for(lambda: emu.get("models", "gone") is None, 10)
    assert "gone" not in emu.seldon2.routes(NS)
