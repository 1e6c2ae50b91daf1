"""The tasks with the Seldon and KServe deployer blocks, against the Kubernetes API emulator
(the real `kubernetes` client over HTTP, CRD-validated objects, controller simulators).

Predictions go through a small ingress on loopback that answers in each platform's protocol,
so the `predict` task is exercised end to end as well.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from prefect import flow
from prefect_modeldeploy.blocks import (
    KubernetesCredentials,
    S3StorageCredentials,
    deployer_block,
)
from prefect_modeldeploy.tasks import (
    delete_model_server,
    deploy_model,
    find_model_servers,
    follow_rollout,
    predict,
    rollback_model,
    start_model_server,
    start_rollout,
    stop_model_server,
)

from tests.prefect import samples
from tests.prefect.helpers import artifacts_of, flow_run_id, model_events, run_logs

pytestmark = pytest.mark.usefixtures("prefect_harness")

TIMEOUT = 90.0  # generous: on a loaded machine the registry alone can take 30 s
GOOD = "s3://models/iris/{}"
BAD = "s3://unreachable-bucket/iris/{}"


class _Ingress(BaseHTTPRequestHandler):
    """Answers every POST in the protocol its path names; remembers what it was sent."""

    seen: list[tuple[str, str | None, Any]]

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
        self.seen.append((self.path, self.headers.get("Host"), body))
        if "/seldon/" in self.path:
            answer: dict[str, Any] = {"data": {"names": [], "ndarray": [1, 1]}}
        else:
            answer = {"predictions": [1, 1]}
        raw = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def ingress() -> Iterator[tuple[str, list[Any]]]:
    seen: list[Any] = []
    handler = type("Ingress", (_Ingress,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def kubernetes_block(flavor: str, emu: Any, ingress_url: str, tmp_path: Any) -> Any:
    """A deployer block of `flavor` on the emulator, its storage credentials a block too."""
    for controller in (emu.seldon, emu.kserve, emu.seldon2):
        controller.fail_when_uri_startswith = BAD.format("")
    # The kubeconfig carries the emulator's bearer token: it must stay secret too.
    return deployer_block(flavor)(
        kubernetes_credentials=KubernetesCredentials(
            kubeconfig=emu.kubeconfig_dict(), namespace="default"
        ),
        ingress_base_url=ingress_url,
        storage_credentials=S3StorageCredentials(
            aws_access_key_id=samples.AWS_KEY_ID,
            aws_secret_access_key=samples.AWS_SECRET,
            endpoint_url="http://minio.minio:9000",
        ),
        tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
    )


def _delete_all(block: Any) -> None:
    with block.deployer() as deployer:
        for server in deployer.find_model_server():
            server.delete(force=True)


@pytest.fixture(params=["seldon", "kserve"])
def k8s_block(
    request: pytest.FixtureRequest, k8s_emulator: Any, ingress: Any, tmp_path: Any
) -> Iterator[Any]:
    block = kubernetes_block(request.param, k8s_emulator, ingress[0], tmp_path)
    yield block
    _delete_all(block)


@flow(name="kubernetes tasks")
def kubernetes_tasks(block: Any, model: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    common = {"gate_rules": ["accuracy>=0.9"], "config": {"model_type": "sklearn"}}
    out["created"] = deploy_model(
        block, model, GOOD.format(1), metrics={"accuracy": 0.95}, timeout=TIMEOUT, **common
    )
    # A candidate whose files cannot be fetched: the platform's failure is reported and the
    # previous model keeps serving.
    try:
        deploy_model(
            block, model, BAD.format(2), metrics={"accuracy": 0.99}, timeout=TIMEOUT, **common
        )
    except Exception as exc:
        out["failed"] = f"{type(exc).__name__}: {exc}"
    out["after_failure"] = find_model_servers(block, model_name=model)
    out["updated"] = deploy_model(
        block, model, GOOD.format(3), metrics={"accuracy": 0.96}, timeout=TIMEOUT, **common
    )
    out["answer"] = predict(block, out["updated"], [[5.1, 3.5, 1.4, 0.2], [6.2, 3.4, 5.4, 2.3]])
    out["rolled_back"] = rollback_model(block, model, timeout=TIMEOUT)
    out["stopped"] = stop_model_server(block, out["created"], timeout=TIMEOUT)
    out["started"] = start_model_server(block, out["created"], timeout=TIMEOUT)
    out["deleted"] = delete_model_server(block, out["created"], timeout=TIMEOUT)
    out["deleted_again"] = delete_model_server(block, out["created"], timeout=TIMEOUT)
    out["left"] = find_model_servers(block)
    return out


def test_tasks_drive_kubernetes_flavors(k8s_block: Any, k8s_emulator: Any, ingress: Any) -> None:
    flavor = k8s_block.flavor
    plural = {"seldon": "seldondeployments", "kserve": "inferenceservices"}[flavor]
    model = f"iris-{flavor}"
    state = kubernetes_tasks(k8s_block, model, return_state=True)
    assert state.is_completed(), state.message
    out = state.result()

    created = out["created"]
    assert (created.action, created.server.flavor, created.server.state) == (
        "created",
        flavor,
        "active",
    )
    assert created.server.pipeline_name == "kubernetes tasks"
    assert created.server.step_name == "deploy_model"
    assert "unreachable-bucket" in out["failed"]
    assert [(s.uuid, s.model_uri) for s in out["after_failure"]] == [
        (created.server.uuid, GOOD.format(1))
    ]

    updated = out["updated"]
    assert updated.action == "updated"
    assert updated.server.uuid == created.server.uuid
    assert updated.server.prediction_url == created.server.prediction_url
    assert updated.server.model_uri == GOOD.format(3)

    assert out["answer"] == [1, 1]
    path, _host, body = ingress[1][-1]
    if flavor == "seldon":
        assert path.startswith("/seldon/default/") and path.endswith("/api/v1.0/predictions")
        assert body["data"]["ndarray"][0] == [5.1, 3.5, 1.4, 0.2]
    else:
        assert path.endswith(":predict") and body["instances"][0] == [5.1, 3.5, 1.4, 0.2]

    rolled = out["rolled_back"]
    assert rolled.action == "rolled_back"
    assert rolled.server.model_uri == GOOD.format(1)
    assert rolled.champion_version == created.champion_version

    assert out["stopped"].state == "inactive"
    assert out["started"].state == "active"
    assert out["started"].prediction_url == created.server.prediction_url
    assert out["deleted"].deleted and not out["deleted_again"].deleted
    assert out["left"] == []
    assert [o for o in k8s_emulator.list_objects(plural, "default")] == []
    assert k8s_emulator.list_objects("secrets", "default") == []  # removed with its last user

    # Each rollout and rollback, the failed one the engine undid included (its task is red):
    # an event about the model, an artifact on the run page.
    events = model_events(f"modeldeploy.model.{flavor}.{model}", 4)
    assert [(e.event, e.payload["version"], e.payload.get("serving_version")) for e in events] == [
        ("modeldeploy.model.deployed", "1", "1"),
        ("modeldeploy.model.rolled_back", "2", "1"),
        ("modeldeploy.model.deployed", "3", "3"),
        ("modeldeploy.model.rolled_back", "3", "1"),
    ]
    failed = events[1]
    assert "its rollout failed" in failed.payload["reason"]
    assert "unreachable-bucket" in failed.payload["reason"]
    assert failed.payload["url"] == created.server.prediction_url
    assert failed.resource["modeldeploy.serving-version"] == "1"
    assert f"modeldeploy.model-server.{created.server.uuid}" in {r.id for r in failed.related}
    assert events[3].payload["url"] == created.server.prediction_url
    for event in (failed, events[3]):
        assert str(flow_run_id(state)) in {r.id.rsplit(".", 1)[-1] for r in event.related}
    artifacts = artifacts_of(f"modeldeploy-{model}", flow_run_id(state))
    assert [a.data.splitlines()[0] for a in artifacts] == [
        f"# Deployed: {model}",
        f"# Rolled back: {model}",
        f"# Deployed: {model}",
        f"# Rolled back: {model}",
    ]
    assert "| Serving now | 1 |" in artifacts[1].data and "unreachable-bucket" in artifacts[1].data
    assert "| Serving now | 1 |" in artifacts[3].data and "## Gate: passed" in artifacts[2].data
    assert rolled.record.action == "rolled_back"

    # Secrets never reach the run logs or the task results.
    logs = "\n".join(run_logs(flow_run_id(state)))
    assert f"{flavor} model server {created.server.uuid} ({model}) is active" in logs
    assert "gate passed: accuracy 0.95 >= 0.9" in logs
    results = json.dumps(
        {k: v.model_dump(mode="json") if hasattr(v, "model_dump") else v for k, v in out.items()}
        | {"left": [], "after_failure": [s.model_dump(mode="json") for s in out["after_failure"]]}
    )
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        stored = client.read_flow_run(flow_run_id(state))
        task_runs = client.read_task_runs()
    api_view = json.dumps(stored.parameters, default=str) + "".join(
        t.model_dump_json() for t in task_runs
    )
    assert "kubeconfig" in api_view  # the block is among the stored parameters
    api_view += json.dumps([e.model_dump(mode="json") for e in events])
    api_view += "".join(a.data for a in artifacts)
    token = k8s_emulator.kubeconfig_dict()["users"][0]["user"]["token"]
    for secret in (*samples.SECRETS, token):
        assert secret not in logs
        assert secret not in results
        assert secret not in api_view


def test_storage_credentials_reach_the_cluster_as_a_secret(
    k8s_block: Any, k8s_emulator: Any
) -> None:
    @flow
    def deploy_one() -> Any:
        return deploy_model(
            k8s_block,
            "iris-secret",
            GOOD.format(1),
            config={"model_type": "sklearn"},
            register=False,
            timeout=TIMEOUT,
        )

    outcome = deploy_one()
    assert outcome.action == "created" and outcome.candidate_version is None
    (secret,) = k8s_emulator.list_objects("secrets", "default")
    assert secret["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "modeldeploy"
    values = json.dumps(secret.get("stringData") or {}) + json.dumps(secret.get("data") or {})
    import base64

    decoded = values + "".join(
        base64.b64decode(v).decode() for v in (secret.get("data") or {}).values()
    )
    assert samples.AWS_SECRET in decoded


def test_ready_made_flow_verifies_and_rolls_back(k8s_block: Any) -> None:
    """`prefect_modeldeploy.flows.continuous_deployment`: deploy + live check in one
    transaction; a failed check puts the previous champion back."""
    from prefect_modeldeploy.flows import continuous_deployment

    common = {
        "gate_rules": ["accuracy>=0.9"],
        "config": {"model_type": "sklearn"},
        "verification_data": [[5.1, 3.5, 1.4, 0.2], [6.2, 3.4, 5.4, 2.3]],
        "timeout": TIMEOUT,
    }
    first = continuous_deployment(
        k8s_block, "iris-flow", GOOD.format(1), {"accuracy": 0.95},
        expected_predictions=[1, 1], **common,
    )  # fmt: skip
    assert (first.action, first.champion_version) == ("created", "1")

    # The ingress answers [1, 1]; expecting [0, 0] fails the check after the update.
    state = continuous_deployment(
        k8s_block, "iris-flow", GOOD.format(2), {"accuracy": 0.96},
        expected_predictions=[0, 0], return_state=True, **common,
    )  # fmt: skip
    assert state.is_failed() and "VerificationError" in state.message
    with k8s_block.deployer() as deployer:
        (server,) = deployer.find_model_server(model_name="iris-flow")
        assert str(server.uuid) == first.server.uuid
        assert server.config.model_uri == GOOD.format(1)
        assert server.is_running
    registry = k8s_block.get_registry()
    assert registry.get_champion("iris-flow").version == "1"
    logs = "\n".join(run_logs(flow_run_id(state)))
    assert "rolled iris-flow back to version 1" in logs


@flow(name="kubernetes rollouts")
def kubernetes_rollouts(block: Any, model: str) -> dict[str, Any]:
    """A first deploy, a canary that is promoted, then a shadow (refused where the flavor
    cannot mirror requests)."""
    common: dict[str, Any] = {"config": {"model_type": "sklearn"}, "timeout": TIMEOUT}
    no_metrics = {"rules": [], "min_requests": 0}
    out: dict[str, Any] = {}
    out["first"] = start_rollout(block, model, GOOD.format(1), "canary", no_metrics, **common)
    canary = {"kind": "canary", "percents": [30], "bake_seconds": 0}
    out["canary"] = start_rollout(block, model, GOOD.format(2), canary, no_metrics, **common)
    out["promoted"] = follow_rollout(block, model, timeout=TIMEOUT)
    shadow = {"kind": "shadow", "bake_seconds": 0}
    try:
        start_rollout(block, model, GOOD.format(3), shadow, no_metrics, **common)
        out["shadow"] = follow_rollout(block, model, timeout=TIMEOUT)
    except Exception as exc:
        out["refused"] = f"{type(exc).__name__}: {exc}"
    return out


@pytest.mark.parametrize("flavor", ["kserve", "seldon", "seldon2"])
def test_rollout_tasks_run_a_canary_and_a_shadow(
    flavor: str, k8s_emulator: Any, ingress: Any, tmp_path: Any
) -> None:
    """`start_rollout` and `follow_rollout` behave the same on every Kubernetes flavor."""
    k8s_emulator.seldon2.install_runtime("default", replicas=2)  # room for two models
    block = kubernetes_block(flavor, k8s_emulator, ingress[0], tmp_path)
    model = f"iris-rollout-{flavor}"
    try:
        state = kubernetes_rollouts(block, model, return_state=True)
        assert state.is_completed(), state.message
        out = state.result()
        with block.deployer() as deployer:
            [server] = deployer.find_model_server(model_name=model)
            served = server.config.model_uri
            variants = [(v.name, v.weight) for v in server.traffic_status().variants]
    finally:
        _delete_all(block)

    assert out["first"].action == "created"
    assert out["canary"].rollout.phase == "starting"
    promoted = out["promoted"]
    assert promoted.phase == "succeeded", promoted.message
    assert [r.step.challenger_percent for r in promoted.history] == [30, 100]
    assert block.get_registry().get_champion(model).version == "2"
    assert served == GOOD.format(2) and variants == [("champion", 100)]
    if flavor == "kserve":
        assert "KServe cannot mirror requests" in out["refused"], out
        assert "canary, linear or blue_green" in out["refused"]
    else:
        assert out["shadow"].phase == "reported", out["shadow"].message
        assert out["shadow"].history[0].step.mirror_percent == 100
    logs = "\n".join(run_logs(flow_run_id(state)))
    assert "succeeded" in logs
    for secret in samples.SECRETS:
        assert secret not in logs
