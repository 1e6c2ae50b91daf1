"""The seldon flavor against what Seldon Core 1.17.1 and the kubelet write, replayed.

The Seldon controller simulator is stopped; the test writes the SeldonDeployment status the
operator writes and the pod the Deployment controller and kubelet make, citing upstream
(seldon-core@v1.17.1 unless said otherwise).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from modeldeploy.errors import InvalidConfigError, ModelDeployError

from tests.flavors_kubernetes.conftest import Cluster
from tests.k8s_emulator.replay import Replay

GROUP, VERSION, PLURAL = "machinelearning.seldon.io", "v1", "seldondeployments"


@pytest.fixture
def replay(cluster: Cluster) -> Iterator[Replay]:
    emu = cluster.requires_emulator()
    emu.seldon.stop()  # the test is the operator now
    r = Replay(emu, cluster.namespace)
    yield r
    r.close()


def creating() -> dict[str, Any]:
    """While any Deployment is not available the operator writes state Creating and keeps
    it until the Deployment's progress deadline (operator/controllers/
    seldondeployment_controller.go:1800-1829, 2137-2150)."""
    return {
        "state": "Creating",
        "replicas": 1,
        "conditions": [
            {"type": "DeploymentsReady", "status": "False", "reason": "DeploymentsNotReady"},
            {"type": "Ready", "status": "False", "reason": "DeploymentsNotReady"},
        ],
    }


def failing_pod(sdep: str, container: str, model_uri: str) -> dict[str, Any]:
    """The predictor pod: the rclone init container `<container>-model-initializer`
    (operator/controllers/model_initializer_injector.go:219-228, 265-285) keeps failing to
    copy the model; the kubelet reports CrashLoopBackOff with the last termination message."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{sdep}-default-0-{container}-5d9c7b-x2k4q",
            "labels": {"seldon-deployment-id": sdep, "app": f"{sdep}-default-0-{container}"},
        },
        "spec": {
            "initContainers": [
                {
                    "name": f"{container}-model-initializer",
                    "image": "seldonio/rclone-storage-initializer:1.17.1",
                    "args": [model_uri, "/mnt/models"],
                }
            ],
            "containers": [{"name": container, "image": "seldonio/sklearnserver:1.17.1"}],
        },
    }


POD_STATUS = {
    "phase": "Pending",
    "initContainerStatuses": [
        {
            "name": "",  # filled in
            "image": "seldonio/rclone-storage-initializer:1.17.1",
            "imageID": "",
            "ready": False,
            "restartCount": 3,
            "state": {
                "waiting": {
                    "reason": "CrashLoopBackOff",
                    "message": "back-off 40s restarting failed container",
                }
            },
            "lastState": {
                "terminated": {
                    "exitCode": 1,
                    "reason": "Error",
                    "message": "ERROR : s3://models/iris/1: error reading source root "
                    "directory: directory not found",
                }
            },
        }
    ],
}


def test_download_failure_is_reported_from_the_pods_while_seldon_says_creating(
    cluster: Cluster, make_deployer: Callable[..., Any], replay: Replay
) -> None:
    from kubernetes import client

    deployer = make_deployer("seldon")
    pending = deployer.begin_deploy(cluster.config("seldon"))
    name = deployer.get_model_server(pending.server_uuid).name
    replay.status(GROUP, VERSION, PLURAL, name, creating())
    core = client.CoreV1Api(replay.api_client)
    pod = core.create_namespaced_pod(
        cluster.namespace,
        failing_pod(name, name, cluster.good_uri("seldon")),
        _preload_content=False,
    )
    body = json.loads(pod.data)
    status = json.loads(json.dumps(POD_STATUS))
    status["initContainerStatuses"][0]["name"] = f"{name}-model-initializer"
    body["status"] = status
    core.replace_namespaced_pod_status(
        body["metadata"]["name"], cluster.namespace, body, _preload_content=False
    )

    with pytest.raises(ModelDeployError) as caught:
        deployer.finish_deploy(pending, timeout=30)
    text = str(caught.value)
    assert "model-initializer" in text and "CrashLoopBackOff" in text
    assert "directory not found" in text
    # Seldon itself still says Creating: the cause came from the pod.
    assert cluster.emulator is not None
    assert cluster.emulator.get(PLURAL, name, cluster.namespace) is None  # discarded


@pytest.mark.parametrize(
    ("implementation", "protocol"),
    [
        ("TRITON_SERVER", "v2"),
        ("HUGGINGFACE_SERVER", "v2"),
        ("TEMPO_SERVER", "v2"),
        ("SKLEARN_SERVER", "seldon"),
        ("MLFLOW_SERVER", "seldon"),
    ],
)
def test_every_prepackaged_server_gets_a_protocol_seldon_has_an_image_for(
    implementation: str, protocol: str
) -> None:
    """helm-charts/seldon-core-operator/values.yaml `predictor_servers`: TRITON_SERVER,
    HUGGINGFACE_SERVER and TEMPO_SERVER exist for protocol v2 only."""
    from modeldeploy.flavors.seldon.config import SeldonConfig
    from modeldeploy.flavors.seldon.resource import build_spec, prediction_path

    config = SeldonConfig(
        model_name="m", model_uri="s3://b/m", implementation=implementation, model_type=None
    )
    spec = build_spec(config, "m", None)
    assert spec["protocol"] == protocol
    expected = "/v2/models/m/infer" if protocol == "v2" else "/api/v1.0/predictions"
    assert prediction_path(config, "m") == expected


def test_seldon_protocol_for_a_v2_only_server_is_refused() -> None:
    from modeldeploy.config import parse_config
    from modeldeploy.flavors.seldon.config import SeldonConfig

    with pytest.raises(InvalidConfigError, match="TRITON_SERVER for protocol v2 only"):
        parse_config(
            SeldonConfig,
            {
                "model_name": "m",
                "model_uri": "s3://b/m",
                "model_type": "triton",
                "protocol": "seldon",
            },
        )


def available(name: str, namespace: str) -> dict[str, Any]:
    """Available: every Deployment has ReadyReplicas > 0 and UnavailableReplicas == 0, as
    read by the operator (seldondeployment_controller.go:1714-1822, 2137-2150)."""
    return {
        "state": "Available",
        "replicas": 1,
        "address": {"url": f"http://{name}-default.{namespace}.svc.cluster.local:8000/"},
        "conditions": [
            {"type": "DeploymentsReady", "status": "True"},
            {"type": "Ready", "status": "True"},
        ],
    }


def seldon_deployment(sdep: str, model_uri: str) -> dict[str, Any]:
    """The operator's Deployment for the predictor (createDeployments): labelled with the
    SeldonDeployment's name, the model initializer fetching `model_uri`."""
    name = f"{sdep}-default-0-{sdep}"
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"seldon-deployment-id": sdep, "app": name}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"seldon-deployment-id": sdep, "app": name}},
                "spec": {
                    "initContainers": [
                        {
                            "name": f"{sdep}-model-initializer",
                            "image": "seldonio/rclone-storage-initializer:1.17.1",
                            "args": [model_uri, "/mnt/models"],
                        }
                    ],
                    "containers": [{"name": sdep, "image": "seldonio/sklearnserver:1.17.1"}],
                },
            },
        },
    }


def rolled(observed: int, replicas: int, updated: int) -> dict[str, Any]:
    return {
        "observedGeneration": observed,
        "replicas": replicas,
        "updatedReplicas": updated,
        "readyReplicas": replicas,
        "availableReplicas": replicas,
    }


def test_an_available_for_old_pods_is_not_taken_for_the_update(
    cluster: Cluster, make_deployer: Callable[..., Any], replay: Replay
) -> None:
    import threading

    deployer = make_deployer("seldon")
    ns = cluster.namespace
    pending = deployer.begin_deploy(cluster.config("seldon", version=1))
    name = deployer.get_model_server(pending.server_uuid).name
    dep = replay.put_deployment(seldon_deployment(name, cluster.good_uri("seldon", 1)))
    dep_name = dep["metadata"]["name"]
    replay.deployment_status(dep_name, rolled(1, 1, 1))
    replay.status(GROUP, VERSION, PLURAL, name, creating())
    replay.status(GROUP, VERSION, PLURAL, name, available(name, ns))
    deployer.finish_deploy(pending, timeout=10)

    pending = deployer.begin_deploy(cluster.config("seldon", version=2))
    # The operator updates the Deployment's template and, reading a Deployment the
    # Deployment controller has not processed yet, reports Available for the old pods.
    replay.put_deployment(seldon_deployment(name, cluster.good_uri("seldon", 2)))
    replay.status(GROUP, VERSION, PLURAL, name, creating())
    replay.status(GROUP, VERSION, PLURAL, name, available(name, ns))
    server = deployer.get_model_server(pending.server_uuid)
    assert server.rollout_pending() == (
        f"Deployment {dep_name}: waiting for the Deployment spec update to be observed"
    )
    results: list[Any] = []
    waiter = threading.Thread(target=lambda: results.append(deployer.finish_deploy(pending, 20)))
    waiter.start()
    replay.deployment_status(dep_name, rolled(2, 2, 1))  # one old pod left
    assert "1 old replicas" in str(deployer.get_model_server(pending.server_uuid).rollout_pending())
    replay.deployment_status(dep_name, rolled(2, 1, 1))
    waiter.join(30)
    assert results and results[0].server.is_running
