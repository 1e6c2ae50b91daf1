"""The kserve flavor against the statuses KServe v0.20.0 writes, replayed step by step.

The controller simulator is stopped; each test writes, through the status subresource, the
statuses (and, in Standard mode, the predictor Deployment) that the upstream controller
writes, and checks what the flavor concludes after every step. Every step cites the
upstream code (kserve@v0.20.0 unless said otherwise). The flavor's judgement is read by a
fresh `get_model_server` each time, as another process would make it.

Facts replayed:
- `status.observedGeneration` is the child's: the Knative Service's in Knative mode
  (pkg/apis/serving/v1beta1/inference_service_status.go:635), the predictor Deployment's in
  Standard mode (:455-457); never the InferenceService's generation.
- The InferenceService's labels and annotations are copied into the child's template
  (pkg/controller/v1beta1/inferenceservice/components/predictor.go, buildObjectMeta), so a
  metadata-only write rolls a new revision / pod template.
- Stop deletes the child and clears the status; resume re-creates it at generation 1 with a
  transient Ready=False (components/predictor.go:247-268, ksvc_reconciler.go:273-311,
  reconcilers/ingress/ingress_reconciler.go:93-101,487-497, controller.go:307-339).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from modeldeploy.errors import ModelDeployError
from modeldeploy.status import ServiceState

from tests.flavors_kubernetes.conftest import Cluster
from tests.k8s_emulator.replay import Replay

GROUP, VERSION, PLURAL = "serving.kserve.io", "v1beta1", "inferenceservices"
DOMAIN = "example.com"


@pytest.fixture
def replay(cluster: Cluster) -> Iterator[Replay]:
    emu = cluster.requires_emulator()
    emu.kserve.stop()  # the test is the controller now
    r = Replay(emu, cluster.namespace)
    yield r
    r.close()


def cond(ctype: str, status: str, reason: str = "", message: str = "") -> dict[str, Any]:
    c = {"type": ctype, "status": status, "lastTransitionTime": "2026-12-01T00:00:00Z"}
    if reason:
        c["reason"] = reason
    if message:
        c["message"] = message
    return c


def urls(name: str, ns: str) -> dict[str, Any]:
    # ingress_reconciler.go:110-118 (address) and :129-175 (url from the predictor host)
    return {
        "url": f"http://{name}.{ns}.{DOMAIN}",
        "address": {"url": f"http://{name}.{ns}.svc.cluster.local"},
    }


# --- Knative mode ------------------------------------------------------------------------


def kn_progress(name: str, ns: str, created: str, ready: str | None, observed: int) -> dict:
    """The ksvc rolls `created` while `ready` (if any) still serves: PropagateStatus copies
    the ksvc's revisions, traffic and conditions (inference_service_status.go:575-640)."""
    predictor: dict[str, Any] = {"latestCreatedRevision": created}
    status: dict[str, Any] = {
        "observedGeneration": observed,
        "deploymentMode": "Knative",
        "conditions": [
            cond("PredictorConfigurationReady", "Unknown"),
            cond("PredictorReady", "Unknown", "RevisionMissing"),
            cond("Ready", "Unknown", "RevisionMissing"),
            cond("Stopped", "False"),
        ],
        "components": {"predictor": predictor},
        "modelStatus": {
            "transitionStatus": "InProgress",
            "states": {"targetModelState": "Loading"},
        },
    }
    if ready:
        predictor["latestReadyRevision"] = ready
        predictor["traffic"] = [{"revisionName": ready, "percent": 100, "latestRevision": False}]
        status.update(urls(name, ns))
    return status


def kn_ready(name: str, ns: str, revision: str, observed: int) -> dict:
    """Ready: latest created == latest ready, which takes all traffic (:575-606, :784-794)."""
    return {
        "observedGeneration": observed,
        "deploymentMode": "Knative",
        **urls(name, ns),
        "conditions": [
            cond("IngressReady", "True"),
            cond("LatestDeploymentReady", "True"),
            cond("PredictorConfigurationReady", "True"),
            cond("PredictorReady", "True"),
            cond("PredictorRouteReady", "True"),
            cond("Ready", "True"),
            cond("RoutesReady", "True"),
            cond("Stopped", "False"),
        ],
        "components": {
            "predictor": {
                "latestCreatedRevision": revision,
                "latestReadyRevision": revision,
                "latestRolledoutRevision": revision,
                "traffic": [{"revisionName": revision, "percent": 100, "latestRevision": True}],
                "url": f"http://{name}-predictor.{ns}.{DOMAIN}",
            }
        },
        "modelStatus": {
            "transitionStatus": "UpToDate",
            "states": {"activeModelState": "Loaded", "targetModelState": "Loaded"},
            "copies": {"failedCopies": 0, "totalCopies": 1},
        },
        "clusterServingRuntimeName": "kserve-sklearnserver",
    }


def stopped() -> dict:
    """Stopped: status cleared, PredictorReady and IngressReady False/Stopped, Stopped True
    (components/predictor.go:247-268, ingress_reconciler.go:93-101, controller.go:307-339)."""
    return {
        "conditions": [
            cond("IngressReady", "False", "Stopped", "The inference service is stopped"),
            cond("PredictorReady", "False", "Stopped", "The inference service is stopped"),
            cond("Ready", "False", "Stopped", "The inference service is stopped"),
            cond("Stopped", "True"),
        ]
    }


def resumed() -> dict:
    """First status after resume: the new ksvc's empty status changes nothing, so
    PredictorReady stays False/Stopped and IngressReady says the ingress is not created;
    Stopped flips to False; no observedGeneration (ksvc_reconciler.go:305-311,
    components/predictor.go:880-881, ingress_reconciler.go:487-497, controller.go:329-338)."""
    return {
        "conditions": [
            cond("IngressReady", "False", "", "Predictor ingress not created"),
            cond("PredictorReady", "False", "Stopped", "The inference service is stopped"),
            cond("Ready", "False", "", "Predictor ingress not created"),
            cond("Stopped", "False"),
        ]
    }


def failed_load(revision: str, observed: int) -> dict:
    """The storage initializer of `revision` terminated: FailedToLoad, BlockedByFailedLoad,
    lastFailureInfo with the container's termination message (the log tail)
    (inference_service_status.go:748-782, pkg/utils/storage.go:322)."""
    status = kn_progress("", "", revision, None, observed)
    status.update(
        {
            "modelStatus": {
                "transitionStatus": "BlockedByFailedLoad",
                "states": {"activeModelState": "", "targetModelState": "FailedToLoad"},
                "lastFailureInfo": {
                    "reason": "ModelLoadFailed",
                    "message": "botocore.exceptions.EndpointConnectionError: Could not connect",
                    "exitCode": 1,
                },
            }
        }
    )
    return status


def no_runtime() -> dict:
    """Runtime resolution fails before any child is made (components/predictor.go:325-405)."""
    return {
        "modelStatus": {
            "transitionStatus": "InvalidSpec",
            "states": {"activeModelState": "", "targetModelState": "FailedToLoad"},
            "lastFailureInfo": {
                "reason": "NoSupportingRuntime",
                "message": "No runtime found to support specified framework/version",
            },
        }
    }


class Steps:
    """One deploy driven by hand: write with the flavor, answer as KServe, judge each step."""

    def __init__(self, cluster: Cluster, deployer: Any, replay: Replay) -> None:
        self.cluster, self.deployer, self.replay = cluster, deployer, replay
        self.uuid = ""
        self.name = ""

    def begin(self, version: int, **extra: Any) -> Any:
        pending = self.deployer.begin_deploy(
            self.cluster.config("kserve", version=version, **extra)
        )
        self.uuid = pending.server_uuid
        self.name = self.deployer.get_model_server(self.uuid).name
        return pending

    def write(self, status: dict[str, Any]) -> None:
        self.replay.status(GROUP, VERSION, PLURAL, self.name, status)

    def state(self) -> ServiceState:
        return self.deployer.get_model_server(self.uuid).status.state

    def expect(self, status: dict[str, Any], state: ServiceState) -> None:
        self.write(status)
        assert self.state() == state, status

    def isvc(self) -> dict[str, Any]:
        return self.replay.get(GROUP, VERSION, PLURAL, self.name)

    def rev(self, n: int) -> str:
        return f"{self.name}-predictor-{n:05d}"  # Knative: <configuration>-<generation %05d>


@pytest.fixture
def steps(cluster: Cluster, make_deployer: Callable[..., Any], replay: Replay) -> Steps:
    return Steps(cluster, make_deployer("kserve"), replay)


def test_knative_create_then_in_place_update(steps: Steps) -> None:
    pending = steps.begin(1)
    ns = steps.cluster.namespace
    assert steps.state() == ServiceState.PENDING_STARTUP
    steps.expect(kn_progress(steps.name, ns, steps.rev(1), None, 1), ServiceState.PENDING_STARTUP)
    steps.expect(kn_ready(steps.name, ns, steps.rev(1), 1), ServiceState.ACTIVE)
    assert steps.deployer.finish_deploy(pending, timeout=5).server.is_running

    pending = steps.begin(2)
    assert pending.action == "updated"
    # Right after our write the status is the old one: Ready, observedGeneration 1 while the
    # InferenceService is at generation 2 — and after the ksvc update it would read 2.
    assert steps.state() == ServiceState.PENDING_STARTUP
    steps.expect(kn_ready(steps.name, ns, steps.rev(1), 2), ServiceState.PENDING_STARTUP)
    steps.expect(
        kn_progress(steps.name, ns, steps.rev(2), steps.rev(1), 2), ServiceState.PENDING_STARTUP
    )
    steps.expect(kn_ready(steps.name, ns, steps.rev(2), 2), ServiceState.ACTIVE)
    result = steps.deployer.finish_deploy(pending, timeout=5)
    assert result.action == "updated" and result.server.status.revision == steps.rev(2)


def test_knative_metadata_only_write_cannot_fool_the_next_update(steps: Steps) -> None:
    ns = steps.cluster.namespace
    pending = steps.begin(1)
    steps.write(kn_ready(steps.name, ns, steps.rev(1), 1))
    steps.deployer.finish_deploy(pending, timeout=5)
    # `kubectl label`: the InferenceService's generation stays 1, the ksvc's goes to 2 and a
    # revision rolls (the label is copied into the template).
    steps.replay.metadata(GROUP, VERSION, PLURAL, steps.name, {"team": "fraud"})
    assert steps.isvc()["metadata"]["generation"] == 1
    steps.write(kn_ready(steps.name, ns, steps.rev(2), 2))

    pending = steps.begin(2)
    assert steps.isvc()["metadata"]["generation"] == 2
    # observedGeneration (2, the ksvc's) equals the InferenceService's generation, Ready is
    # True: a stale status that looks current by generation.
    assert steps.state() == ServiceState.PENDING_STARTUP
    steps.expect(
        kn_progress(steps.name, ns, steps.rev(3), steps.rev(2), 2), ServiceState.PENDING_STARTUP
    )
    steps.expect(kn_ready(steps.name, ns, steps.rev(3), 3), ServiceState.ACTIVE)
    steps.deployer.finish_deploy(pending, timeout=5)


def test_knative_stop_then_start_after_an_update(steps: Steps) -> None:
    ns = steps.cluster.namespace
    pending = steps.begin(1)
    steps.write(kn_ready(steps.name, ns, steps.rev(1), 1))
    steps.deployer.finish_deploy(pending, timeout=5)
    pending = steps.begin(2)
    steps.write(kn_ready(steps.name, ns, steps.rev(2), 2))
    steps.deployer.finish_deploy(pending, timeout=5)

    steps.deployer.stop_model_server(steps.uuid, wait=False)
    assert steps.state() == ServiceState.PENDING_SHUTDOWN
    steps.expect(stopped(), ServiceState.INACTIVE)

    steps.deployer.start_model_server(steps.uuid, wait=False)
    assert steps.state() == ServiceState.PENDING_STARTUP
    # The transient Ready=False after resume is not a failure.
    steps.expect(resumed(), ServiceState.PENDING_STARTUP)
    # The re-created ksvc starts again at generation 1 and revision 00001.
    steps.expect(kn_progress(steps.name, ns, steps.rev(1), None, 1), ServiceState.PENDING_STARTUP)
    steps.expect(kn_ready(steps.name, ns, steps.rev(1), 1), ServiceState.ACTIVE)
    server = steps.deployer.start_model_server(steps.uuid, timeout=5)
    assert server.is_running


def test_knative_failed_model_load_is_reported_with_kserve_words(steps: Steps) -> None:
    ns = steps.cluster.namespace
    pending = steps.begin(1)
    steps.write(kn_ready(steps.name, ns, steps.rev(1), 1))
    steps.deployer.finish_deploy(pending, timeout=5)

    pending = steps.begin(2)
    steps.expect(failed_load(steps.rev(2), 2), ServiceState.ERROR)
    # The engine restores the previous config; answer that write too.
    restored: list[bool] = []

    def restore_when_written() -> None:
        steps.replay.emu.wait_for(
            lambda: steps.isvc()["spec"]["predictor"]["model"]["storageUri"].endswith("/1")
        )
        steps.write(kn_ready(steps.name, ns, steps.rev(3), 3))
        restored.append(True)

    import threading

    helper = threading.Thread(target=restore_when_written)
    helper.start()
    with pytest.raises(ModelDeployError, match="ModelLoadFailed: botocore"):
        steps.deployer.finish_deploy(pending, timeout=5)
    helper.join(10)
    assert restored and steps.isvc()["spec"]["predictor"]["model"]["storageUri"].endswith("/1")
    assert steps.state() == ServiceState.ACTIVE


def test_no_supporting_runtime_fails_at_once(steps: Steps) -> None:
    pending = steps.begin(1, model_type=None, model_format="mlflow")
    model = steps.isvc()["spec"]["predictor"]["model"]
    assert model["protocolVersion"] == "v2"  # mlserver, the only mlflow runtime, is v2 only
    steps.expect(no_runtime(), ServiceState.ERROR)
    with pytest.raises(ModelDeployError, match="NoSupportingRuntime: No runtime found"):
        steps.deployer.finish_deploy(pending, timeout=5)
    assert steps.deployer.find_model_server(pipeline_name=steps.cluster.pipeline) == []


def test_protocol_is_left_to_kserve_unless_set(steps: Steps) -> None:
    steps.begin(1)
    model = steps.isvc()["spec"]["predictor"]["model"]
    assert "protocolVersion" not in model
    server = steps.deployer.get_model_server(steps.uuid)
    assert server.prediction_url is None  # no status.url yet
    steps.write(kn_ready(steps.name, steps.cluster.namespace, steps.rev(1), 1))
    server = steps.deployer.get_model_server(steps.uuid)
    assert server.prediction_url == (
        f"http://{steps.name}.{steps.cluster.namespace}.{DOMAIN}/v1/models/{steps.name}:predict"
    )


# --- Standard (RawDeployment) mode ------------------------------------------------------


def predictor_deployment(isvc: dict[str, Any], replicas: int) -> dict[str, Any]:
    """`<isvc>-predictor`, whose pod template carries the InferenceService's labels and
    annotations (components/predictor.go buildObjectMeta; reconcilers/deployment)."""
    meta = isvc["metadata"]
    name = meta["name"]
    labels = {"app": f"isvc.{name}-predictor", "component": "predictor", POD_LABEL: name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": f"{name}-predictor", "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": labels["app"]}},
            "template": {
                "metadata": {
                    "labels": {**(meta.get("labels") or {}), **labels},
                    "annotations": dict(meta.get("annotations") or {}),
                },
                "spec": {"containers": [{"name": "kserve-container", "image": "kserve/sklearn"}]},
            },
        },
    }


POD_LABEL = "serving.kserve.io/inferenceservice"


def dep_status(observed: int, replicas: int, updated: int, available: int) -> dict[str, Any]:
    ok = available > 0
    return {
        "observedGeneration": observed,
        "replicas": replicas,
        "updatedReplicas": updated,
        "readyReplicas": available,
        "availableReplicas": available,
        "conditions": [
            cond("Available", "True" if ok else "False", "MinimumReplicasAvailable"),
            cond("Progressing", "True", "ReplicaSetUpdated"),
        ],
    }


def std_status(name: str, ns: str, observed: int, available: bool) -> dict[str, Any]:
    """PropagateRawStatus: PredictorReady from the Deployment's Available, observedGeneration
    from the Deployment (inference_service_status.go:360-458); IngressReady mirrors it."""
    flag = "True" if available else "False"
    return {
        "observedGeneration": observed,
        "deploymentMode": "Standard",
        **urls(name, ns),
        "conditions": [
            cond("IngressReady", flag),
            cond("PredictorReady", flag),
            cond("Ready", flag),
            cond("Stopped", "False"),
        ],
        "components": {"predictor": {"url": f"http://{name}-predictor.{ns}.{DOMAIN}"}},
        "modelStatus": {"transitionStatus": "UpToDate" if available else "InProgress"},
    }


def roll(steps: Steps, replicas: int) -> str:
    """The controller writes the Deployment from the current InferenceService."""
    dep = steps.replay.put_deployment(predictor_deployment(steps.isvc(), replicas))
    return str(dep["metadata"]["name"])


def test_standard_create_and_rolling_update_wait_for_the_new_pods(steps: Steps) -> None:
    ns = steps.cluster.namespace
    pending = steps.begin(1)
    dep = roll(steps, 2)
    steps.replay.deployment_status(dep, dep_status(1, 2, 2, 0))
    steps.expect(std_status(steps.name, ns, 1, False), ServiceState.PENDING_STARTUP)
    steps.replay.deployment_status(dep, dep_status(1, 2, 2, 2))
    steps.expect(std_status(steps.name, ns, 1, True), ServiceState.ACTIVE)
    steps.deployer.finish_deploy(pending, timeout=5)

    pending = steps.begin(2)
    # Old status and old template: PredictorReady True, observedGeneration 1.
    assert steps.state() == ServiceState.PENDING_STARTUP
    roll(steps, 2)  # new template, Deployment generation 2
    steps.replay.deployment_status(dep, dep_status(2, 3, 1, 2))  # 2 old pods still serve
    steps.expect(std_status(steps.name, ns, 2, True), ServiceState.PENDING_STARTUP)
    steps.replay.deployment_status(dep, dep_status(2, 2, 2, 2))
    assert steps.state() == ServiceState.ACTIVE
    assert steps.deployer.finish_deploy(pending, timeout=5).action == "updated"


def test_standard_scale_event_cannot_fool_the_next_update(steps: Steps) -> None:
    ns = steps.cluster.namespace
    pending = steps.begin(1)
    dep = roll(steps, 1)
    steps.replay.deployment_status(dep, dep_status(1, 1, 1, 1))
    steps.write(std_status(steps.name, ns, 1, True))
    steps.deployer.finish_deploy(pending, timeout=5)
    # The HPA scales the Deployment: its generation (and so observedGeneration) moves to 2.
    current = steps.replay.deployment(dep)
    assert current is not None
    current["spec"]["replicas"] = 2
    steps.replay.put_deployment(current)
    steps.replay.deployment_status(dep, dep_status(2, 2, 2, 2))
    steps.write(std_status(steps.name, ns, 2, True))

    pending = steps.begin(2)
    assert steps.isvc()["metadata"]["generation"] == 2
    # observedGeneration 2 == the InferenceService's generation, PredictorReady True: stale.
    assert steps.state() == ServiceState.PENDING_STARTUP
    roll(steps, 2)
    steps.replay.deployment_status(dep, dep_status(3, 3, 1, 2))
    steps.expect(std_status(steps.name, ns, 3, True), ServiceState.PENDING_STARTUP)
    steps.replay.deployment_status(dep, dep_status(3, 2, 2, 2))
    assert steps.state() == ServiceState.ACTIVE
    steps.deployer.finish_deploy(pending, timeout=5)


def test_standard_progress_deadline_is_a_failure(steps: Steps) -> None:
    ns = steps.cluster.namespace
    steps.begin(1)
    dep = roll(steps, 1)
    status = dep_status(1, 1, 1, 0)
    status["conditions"][1] = cond(
        "Progressing", "False", "ProgressDeadlineExceeded", "ReplicaSet has timed out progressing."
    )
    steps.replay.deployment_status(dep, status)
    st = std_status(steps.name, ns, 1, False)
    st["conditions"][1] = cond("PredictorReady", "False", "ProgressDeadlineExceeded", "timed out")
    steps.expect(st, ServiceState.ERROR)


def test_triton_predictions_use_v2_and_the_served_model_name(steps: Steps) -> None:
    steps.begin(1, model_type="triton", served_model_name="densenet_onnx")
    # The webhook defaults triton to v2 (inference_service_defaults.go, SetTritonDefaults);
    # the flavor writes it too, since runtime selection would otherwise ask for v1.
    assert steps.isvc()["spec"]["predictor"]["model"]["protocolVersion"] == "v2"
    steps.write(kn_ready(steps.name, steps.cluster.namespace, steps.rev(1), 1))
    server = steps.deployer.get_model_server(steps.uuid)
    assert server.prediction_url == (
        f"http://{steps.name}.{steps.cluster.namespace}.{DOMAIN}/v2/models/densenet_onnx/infer"
    )
