"""Contract of the `seldon` and `kserve` flavors (issue 3, items 11 and 12).

Each test runs for both flavors against the emulator, or against a real cluster when
MODELDEPLOY_TEST_KUBECONFIG is set (tests that need the emulator's controls skip there).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from modeldeploy.errors import DeploymentTimeoutError, InvalidConfigError, PlatformError
from modeldeploy.status import ServiceState
from modeldeploy.version import __version__
from modeldeploy.waiting import Deadline

from tests.flavors_kubernetes.conftest import PLURAL, Cluster, controller_of


def _transitions() -> tuple[list[ServiceState], Any]:
    seen: list[ServiceState] = []
    return seen, lambda _server, status: seen.append(status.state)


def test_deploy_creates_a_ready_server_with_its_record_on_the_cluster(
    cluster: Cluster, deployer: Any, flavor: str
) -> None:
    seen, on_transition = _transitions()
    config = cluster.config(flavor)

    server = deployer.deploy_model(config, timeout=cluster.timeout, on_transition=on_transition)

    assert server.is_running
    assert seen[0] == ServiceState.PENDING_STARTUP and seen[-1] == ServiceState.ACTIVE
    assert server.status.observed_generation == server.status.generation == 1
    [obj] = cluster.managed(PLURAL[flavor])
    labels, annotations = obj["metadata"]["labels"], obj["metadata"]["annotations"]
    assert labels["modeldeploy.io/uuid"] == str(server.uuid)
    assert labels["modeldeploy.io/pipeline"] == config["pipeline_name"]
    assert labels["modeldeploy.io/model"] == config["model_name"]
    assert labels["modeldeploy.io/flavor"] == flavor
    assert annotations["modeldeploy.io/engine-version"] == __version__
    record = json.loads(annotations["modeldeploy.io/config"])
    assert record["model_uri"] == config["model_uri"] and record["flavor"] == flavor
    assert server.prediction_url and server.name in server.prediction_url
    json.dumps(server.info().model_dump(mode="json"))  # JSON-ready for XCom / task results


def test_update_in_place_keeps_the_url_and_waits_for_the_new_generation(
    cluster: Cluster, deployer: Any, flavor: str
) -> None:
    first = deployer.deploy_model(cluster.config(flavor, version=1), timeout=cluster.timeout)
    url = first.prediction_url
    seen, on_transition = _transitions()

    # A new model and new resources: the spec changes even where both URIs are the same
    # public model (real clusters).
    update = cluster.config(flavor, version=2, resources={"requests": {"memory": "300Mi"}})
    result = deployer.deploy(update, timeout=cluster.timeout, on_transition=on_transition)

    second = result.server
    assert result.action == "updated"
    assert second.uuid == first.uuid and second.name == first.name
    assert second.prediction_url == url
    assert second.config.model_uri == cluster.good_uri(flavor, 2)
    assert second.status.generation == 2 and second.status.observed_generation == 2
    # The previous model's Ready was not taken for the new one: we saw it go pending first.
    assert seen[0] == ServiceState.PENDING_STARTUP and seen[-1] == ServiceState.ACTIVE
    assert len(cluster.managed(PLURAL[flavor])) == 1
    if cluster.emulator is not None:
        obj = cluster.emulator.get(PLURAL[flavor], second.name)
        if flavor == "kserve":
            assert obj["status"]["observedGeneration"] == 2
            predictor = obj["status"]["components"]["predictor"]
            assert predictor["latestReadyRevision"].endswith("-00002")
        elif flavor == "seldon2":
            model = cluster.emulator.seldon2.models[("default", second.name)]
            assert (model.generation, model.phase) == (2, "available")
            [ready] = [c for c in obj["status"]["conditions"] if c["type"] == "ModelReady"]
            assert (ready["status"], ready["message"]) == ("True", "ModelAvailable")
        else:
            state = cluster.emulator.seldon.state[("default", second.name)]
            assert (state.generation, state.phase) == (2, "ready")
            assert obj["status"]["state"] == "Available"


def test_a_stale_ready_is_never_taken_for_the_generation_we_wrote(
    cluster: Cluster, deployer: Any, flavor: str
) -> None:
    """With the controller down, the old generation's Ready stays in place; waiting for the
    new generation must time out at the deadline, even though no event ever arrives."""
    emu = cluster.requires_emulator()
    controller = controller_of(emu, flavor)
    server = deployer.deploy_model(cluster.config(flavor, version=1), timeout=cluster.timeout)
    controller.stop()
    try:
        server.update(deployer.parse_config(cluster.config(flavor, version=2)))
        started = time.monotonic()
        with pytest.raises(DeploymentTimeoutError) as caught:
            server.wait_until_ready(Deadline(0.8))
        elapsed = time.monotonic() - started
    finally:
        controller.start()
    assert 0.8 <= elapsed < 1.8, elapsed  # the deadline, not the next event, ended it
    assert server.status.state == ServiceState.PENDING_STARTUP
    assert "generation 2" in str(caught.value)
    # The controller catches up: now the new generation really is ready.
    server.wait_until_ready(Deadline(cluster.timeout))
    assert server.status.observed_generation == 2


def test_waiting_in_another_process_replays_the_write_for_seldon(
    cluster: Cluster, make_deployer: Any
) -> None:
    """Seldon Core 1 reports no observedGeneration; a fresh deployer waiting for a server
    another process updated must still not accept the previous generation's Available."""
    emu = cluster.requires_emulator()
    writer = make_deployer("seldon")
    server = writer.deploy_model(cluster.config("seldon", version=1), timeout=cluster.timeout)
    emu.seldon.stop()
    server.update(writer.parse_config(cluster.config("seldon", version=2)))
    waiter = make_deployer("seldon").get_model_server(server.uuid)
    try:
        with pytest.raises(DeploymentTimeoutError):
            waiter.wait_until_ready(Deadline(0.5))
    finally:
        emu.seldon.start()
    waiter.wait_until_ready(Deadline(cluster.timeout))
    assert waiter.is_running and waiter.status.generation == 2


_FIND_SCRIPT = """
import json, sys
from modeldeploy.flavors import create_deployer
settings, flavor, pipeline = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3]
deployer = create_deployer(flavor, settings)
found = deployer.find_model_server(pipeline_name=pipeline)
running = deployer.find_model_server(pipeline_name=pipeline, running=True)
print(json.dumps({
    "all": [s.info().model_dump(mode="json") for s in found],
    "running": [str(s.uuid) for s in running],
}))
"""


def test_a_fresh_process_finds_every_server_from_the_cluster_alone(
    cluster: Cluster, deployer: Any, flavor: str, tmp_path: Path
) -> None:
    iris = deployer.deploy_model(cluster.config(flavor, model="iris"), timeout=cluster.timeout)
    wine = deployer.deploy_model(cluster.config(flavor, model="wine"), timeout=cluster.timeout)
    deployer.stop_model_server(wine.uuid, timeout=cluster.timeout)
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps(cluster.settings()))

    out = subprocess.run(
        [sys.executable, "-c", _FIND_SCRIPT, str(settings), flavor, cluster.pipeline],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )

    found = json.loads(out.stdout)
    by_uuid = {s["uuid"]: s for s in found["all"]}
    assert set(by_uuid) == {str(iris.uuid), str(wine.uuid)}
    assert [s["uuid"] for s in found["all"]] == [str(wine.uuid), str(iris.uuid)]  # newest first
    assert found["running"] == [str(iris.uuid)]
    again = by_uuid[str(iris.uuid)]
    assert again["config"] == iris.config.to_record()
    assert again["prediction_url"] == iris.prediction_url
    assert again["state"] == "active" and by_uuid[str(wine.uuid)]["state"] == "inactive"


def test_stop_and_start_keep_the_server_and_its_url(
    cluster: Cluster, deployer: Any, flavor: str
) -> None:
    server = deployer.deploy_model(cluster.config(flavor), timeout=cluster.timeout)
    url = server.prediction_url

    stopped = deployer.stop_model_server(server.uuid, timeout=cluster.timeout)

    assert stopped.status.state == ServiceState.INACTIVE
    assert deployer.find_model_server(pipeline_name=cluster.pipeline, running=True) == []
    if cluster.emulator is not None:
        obj = cluster.emulator.get(PLURAL[flavor], server.name)
        if flavor == "kserve":
            assert obj["metadata"]["annotations"]["serving.kserve.io/stop"] == "true"
        elif flavor == "seldon2":
            assert obj["spec"]["replicas"] == 0
        else:
            assert obj["spec"]["predictors"][0]["replicas"] == 0

    started = deployer.start_model_server(server.uuid, timeout=cluster.timeout)

    assert started.is_running and started.uuid == server.uuid
    assert started.prediction_url == url
    assert len(cluster.managed(PLURAL[flavor])) == 1


def test_deploying_onto_a_stopped_server_starts_it(
    cluster: Cluster, deployer: Any, flavor: str
) -> None:
    server = deployer.deploy_model(cluster.config(flavor, version=1), timeout=cluster.timeout)
    deployer.stop_model_server(server.uuid, timeout=cluster.timeout)

    again = deployer.deploy_model(cluster.config(flavor, version=2), timeout=cluster.timeout)

    assert again.uuid == server.uuid and again.is_running
    assert again.config.model_uri == cluster.good_uri(flavor, 2)


def test_delete_removes_the_server_and_the_secret_with_its_last_user(
    cluster: Cluster, deployer: Any, flavor: str
) -> None:
    iris = deployer.deploy_model(cluster.config(flavor, model="iris"), timeout=cluster.timeout)
    wine = deployer.deploy_model(cluster.config(flavor, model="wine"), timeout=cluster.timeout)
    if not cluster.real:
        assert [s["metadata"]["name"] for s in cluster.managed("secrets")] == [
            deployer.secrets.name
        ]

    deployer.delete_model_server(iris.uuid, timeout=cluster.timeout)

    remaining = deployer.find_model_server(pipeline_name=cluster.pipeline)
    assert [s.uuid for s in remaining] == [wine.uuid]
    if not cluster.real:
        assert len(cluster.managed("secrets")) == 1  # still used by wine

    deployer.delete_model_server(wine.uuid, timeout=cluster.timeout)

    assert deployer.find_model_server(pipeline_name=cluster.pipeline) == []
    assert cluster.managed(PLURAL[flavor]) == []
    if not cluster.real:
        assert cluster.managed("secrets") == []
        assert cluster.managed("serviceaccounts") == []


def test_a_failing_rollout_leaves_the_previous_model_serving(
    cluster: Cluster, deployer: Any, flavor: str
) -> None:
    server = deployer.deploy_model(cluster.config(flavor, version=1), timeout=cluster.timeout)
    url = server.prediction_url
    bad = cluster.config(flavor, version=2, model_uri=cluster.bad_uri())

    started = time.monotonic()
    with pytest.raises(PlatformError) as caught:
        deployer.deploy_model(bad, timeout=cluster.timeout)
    elapsed = time.monotonic() - started

    message = str(caught.value)
    assert cluster.bad_uri() in message or cluster.real  # the platform's own reason
    # Seldon's own word comes only at the progress deadline: the cause was read on the pods
    assert "no longer progressing" not in message
    assert elapsed < cluster.timeout / 2  # reported at once, not after the timeout
    [current] = deployer.find_model_server(pipeline_name=cluster.pipeline)
    assert current.uuid == server.uuid
    assert current.config.model_uri == cluster.good_uri(flavor, 1)  # previous spec restored
    assert current.is_running and current.prediction_url == url
    if cluster.emulator is not None and flavor == "kserve":
        obj = cluster.emulator.get("inferenceservices", server.name)
        assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"] == 3
        assert obj["spec"]["predictor"]["model"]["storageUri"] == cluster.good_uri(flavor, 1)


def test_a_server_that_never_comes_up_is_removed_with_its_secret(
    cluster: Cluster, deployer: Any, flavor: str
) -> None:
    with pytest.raises(PlatformError):
        deployer.deploy_model(
            cluster.config(flavor, model_uri=cluster.bad_uri()), timeout=cluster.timeout
        )

    assert deployer.find_model_server(pipeline_name=cluster.pipeline) == []
    assert cluster.managed(PLURAL[flavor]) == []
    if not cluster.real:
        assert cluster.managed("secrets") == []


BAD_CONFIGS: list[tuple[str, dict[str, Any], str]] = [
    ("name", {"name": "Bad_Name"}, "not valid"),
    ("mlflow uri", {"model_uri": "runs:/0123abcd/model"}, "MLflow URI"),
    ("local path", {"model_uri": "/tmp/model"}, "local path"),
    ("scheme", {"model_uri": "ftp://host/model"}, "scheme 'ftp'"),
    ("no bucket", {"model_uri": "s3:///model"}, "no bucket"),
    ("resources", {"resources": {"limits": {"cpu": "lots"}}}, "quantity"),
    ("unknown field", {"replcas": 2}, "replcas"),
    ("model type", {"model_type": "cobol"}, "cobol"),
]
FLAVOR_BAD: dict[str, list[tuple[str, dict[str, Any], str]]] = {
    "seldon": [
        ("implementation", {"implementation": "PYTORCH_SERVER"}, "prepackaged"),
        ("replicas", {"replicas": 0}, "replicas"),
        ("protocol", {"protocol": "grpc"}, "protocol"),
    ],
    "kserve": [
        ("replicas", {"min_replicas": 3, "max_replicas": 1}, "below min_replicas"),
        ("protocol", {"protocol_version": "v3"}, "protocol_version"),
    ],
}


BAD_CASES = [
    pytest.param(flavor, change, words, id=f"{flavor}-{what}")
    for flavor in ("seldon", "kserve")
    for what, change, words in BAD_CONFIGS + FLAVOR_BAD[flavor]
]


@pytest.mark.parametrize(("flavor_name", "change", "words"), BAD_CASES)
def test_bad_input_is_refused_before_anything_is_written(
    cluster: Cluster, make_deployer: Any, flavor_name: str, change: dict, words: str
) -> None:
    deployer = make_deployer(flavor_name)
    before = cluster.write_count() if cluster.emulator is not None else None

    with pytest.raises(InvalidConfigError) as caught:
        deployer.deploy_model(cluster.config(flavor_name, **change), timeout=cluster.timeout)

    assert words in str(caught.value), str(caught.value)
    if before is not None:
        assert cluster.write_count() == before == 0
    assert cluster.managed(PLURAL[flavor_name]) == []


def test_a_negative_timeout_and_bad_settings_are_refused_before_any_request(
    cluster: Cluster, make_deployer: Any, flavor: str
) -> None:
    emu = cluster.requires_emulator()
    deployer = make_deployer(flavor)
    with pytest.raises(InvalidConfigError, match="timeout"):
        deployer.deploy_model(cluster.config(flavor), timeout=-1)
    with pytest.raises(InvalidConfigError, match="namespace"):
        make_deployer(flavor, namespace="Not_A_Namespace")
    with pytest.raises(InvalidConfigError, match="ingress_base_url"):
        make_deployer(flavor, ingress_base_url="not a url")
    assert len(emu.requests) == 0


def test_injected_faults_still_converge_to_one_server_and_no_orphaned_secret(
    cluster: Cluster, make_deployer: Any, flavor: str
) -> None:
    emu = cluster.requires_emulator()
    deployer = make_deployer(flavor)
    emu.faults.seed = 20251122
    emu.faults.error_rate = 0.2
    emu.faults.error_codes = (500, 503)
    emu.faults.include_watch = True
    emu.faults.drop_watch_after_events = 1

    first = deployer.deploy_model(cluster.config(flavor, version=1), timeout=cluster.timeout)
    second = deployer.deploy_model(cluster.config(flavor, version=2), timeout=cluster.timeout)
    third = deployer.deploy_model(cluster.config(flavor, version=2), timeout=cluster.timeout)
    deployer.stop_model_server(first.uuid, timeout=cluster.timeout)
    deployer.start_model_server(first.uuid, timeout=cluster.timeout)

    assert first.uuid == second.uuid == third.uuid
    [only] = deployer.find_model_server(pipeline_name=cluster.pipeline)
    assert only.is_running and only.config.model_uri == cluster.good_uri(flavor, 2)
    assert len(cluster.managed(PLURAL[flavor])) == 1
    assert len(cluster.managed("secrets")) == 1
    statuses = emu.requests.by_status()
    assert statuses[500] + statuses[503] >= 5, statuses  # the faults really happened
    assert emu.requests.count(verb="watch") >= 4  # and watches were dropped and resumed

    deployer.delete_model_server(only.uuid, timeout=cluster.timeout)

    emu.faults.reset()
    assert cluster.managed(PLURAL[flavor]) == []
    assert cluster.managed("secrets") == []
    assert cluster.managed("serviceaccounts") == []


def test_an_operator_restart_after_a_timed_out_rollout_restores_the_previous_model(
    cluster: Cluster, deployer: Any, flavor: str
) -> None:
    emu = cluster.requires_emulator()
    controller = controller_of(emu, flavor)
    server = deployer.deploy_model(cluster.config(flavor, version=1), timeout=cluster.timeout)
    controller.stop()
    # The operator comes back while the engine restores the previous spec.
    restart = threading.Timer(1.0, controller.start)
    restart.start()
    try:
        with pytest.raises(DeploymentTimeoutError):
            deployer.deploy_model(cluster.config(flavor, version=2), timeout=0.5)
    finally:
        restart.join()
    [current] = deployer.find_model_server(pipeline_name=cluster.pipeline)
    assert current.uuid == server.uuid
    assert current.config.model_uri == cluster.good_uri(flavor, 1)
    current.wait_until_ready(Deadline(cluster.timeout))
    assert current.is_running


RICH = {
    "seldon": {
        "container": {
            "image": "registry.example.com/iris-model:1.2",
            "command": ["seldon-core-microservice"],
            "args": ["Model", "--service-type", "MODEL"],
            "env": {"LOG_LEVEL": "INFO"},
        },
        "model_type": None,
        "replicas": 2,
        "protocol": "v2",
        "resources": {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"cpu": 1}},
        "service_account_name": "model-runner",
    },
    "kserve": {
        "model_format": "xgboost",
        "model_format_version": "2",
        "runtime": "kserve-xgbserver",
        "protocol_version": "v2",
        "min_replicas": 0,
        "max_replicas": 4,
        "resources": {
            "requests": {"cpu": "250m", "memory": "512Mi"},
            "limits": {"nvidia.com/gpu": 1},
        },
    },
    "seldon2": {
        "model_type": "xgboost",
        "requirements": ["mlserver"],
        "replicas": 1,
        "server": "mlserver",
        "memory": "200Mi",
    },
}


def test_every_config_field_is_accepted_by_the_platforms_crd_schema(
    cluster: Cluster, make_deployer: Any, flavor: str
) -> None:
    """The emulator validates every object against the real CRD (a 422 otherwise)."""
    deployer = make_deployer(flavor, storage_credentials=None)
    server = deployer.deploy_model(cluster.config(flavor, **RICH[flavor]), timeout=cluster.timeout)

    assert server.is_running
    [obj] = cluster.managed(PLURAL[flavor])
    if flavor == "seldon2":
        assert obj["spec"] == {
            "storageUri": cluster.good_uri(flavor),
            "modelType": "xgboost",
            "requirements": ["mlserver"],
            "replicas": 1,
            "server": "mlserver",
            "memory": "200Mi",
        }
    elif flavor == "seldon":
        predictor = obj["spec"]["predictors"][0]
        assert predictor["replicas"] == 2 and "implementation" not in predictor["graph"]
        [container] = predictor["componentSpecs"][0]["spec"]["containers"]
        assert container["image"] == "registry.example.com/iris-model:1.2"
        assert container["env"] == [{"name": "LOG_LEVEL", "value": "INFO"}]
        assert container["resources"]["limits"] == {"cpu": "1"}
        assert predictor["componentSpecs"][0]["spec"]["serviceAccountName"] == "model-runner"
        assert obj["spec"]["protocol"] == "v2"
    else:
        predictor = obj["spec"]["predictor"]
        assert (predictor["minReplicas"], predictor["maxReplicas"]) == (0, 4)
        model = predictor["model"]
        assert model["modelFormat"] == {"name": "xgboost", "version": "2"}
        assert model["runtime"] == "kserve-xgbserver" and model["protocolVersion"] == "v2"
        assert model["resources"]["limits"] == {"nvidia.com/gpu": "1"}
        assert "serviceAccountName" not in predictor
