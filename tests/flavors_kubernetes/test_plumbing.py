"""The shared Kubernetes plumbing against the emulator, over real HTTP (issue 3 items 1-5):
client configuration, optimistic concurrency, paginated selectors, managed-by filtering,
retries, watches (410, drops, deadlines) and the storage Secret's lifecycle."""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from modeldeploy.errors import ConflictError, InvalidConfigError
from modeldeploy.flavors import create_deployer
from modeldeploy.flavors.kubernetes.client import connect
from modeldeploy.flavors.kubernetes.settings import KubernetesDeployerSettings
from modeldeploy.flavors.kubernetes.watching import WatchTimeout, watch_until
from modeldeploy.waiting import Deadline

from tests.flavors_kubernetes.conftest import PLURAL, S3_CREDENTIALS, Cluster, controller_of
from tests.k8s_emulator import KubernetesEmulator

SECRET = S3_CREDENTIALS["secret_access_key"]


@pytest.fixture
def emu(cluster: Cluster) -> KubernetesEmulator:
    return cluster.requires_emulator()


# --- client configuration --------------------------------------------------------------


def _list_works(settings: dict[str, Any]) -> str:
    kube = connect(KubernetesDeployerSettings.model_validate(settings))
    try:
        kube.core.list_namespaced_pod(kube.namespace, _request_timeout=5)
        return kube.source
    finally:
        kube.close()


def test_client_from_a_kubeconfig_file_a_dict_or_a_context(
    emu: KubernetesEmulator, tmp_path: Path
) -> None:
    path = emu.write_kubeconfig(tmp_path / "config")
    assert _list_works({"kubeconfig_path": str(path)}) == f"kubeconfig {path}"
    assert _list_works({"kubeconfig_path": str(path), "context": "emulator"}).startswith(
        "kubeconfig"
    )
    assert _list_works({"kubeconfig": emu.kubeconfig_dict()}) == "kubeconfig dict"
    assert _list_works({"kubeconfig": path.read_text()}) == "kubeconfig dict"  # YAML text


def test_client_from_kubeconfig_env_and_a_clear_error_when_nothing_works(
    emu: KubernetesEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = emu.write_kubeconfig(tmp_path / "config")
    monkeypatch.setenv("KUBECONFIG", str(path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert _list_works({}) == f"kubeconfig {path}"

    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(InvalidConfigError) as caught:
        _list_works({})
    message = str(caught.value)
    assert "no Kubernetes configuration works" in message
    assert str(tmp_path / "missing") in message and "in-cluster" in message


def test_bad_client_settings_fail_clearly_without_leaking_the_token(
    emu: KubernetesEmulator, tmp_path: Path
) -> None:
    with pytest.raises(InvalidConfigError, match="does not exist"):
        _list_works({"kubeconfig_path": str(tmp_path / "nope")})
    with pytest.raises(InvalidConfigError) as caught:
        _list_works({"kubeconfig": emu.kubeconfig_dict(), "context": "production"})
    assert "production" in str(caught.value) and emu.token not in str(caught.value)
    with pytest.raises(InvalidConfigError, match="not running in a Kubernetes pod"):
        _list_works({"in_cluster": True})


# --- lists, records, managed-by ----------------------------------------------------------


def _bulk_servers(emu: KubernetesEmulator, deployer: Any, count: int) -> None:
    """Load `count` managed SeldonDeployments straight into the store (no HTTP)."""
    from uuid import uuid4

    from modeldeploy.flavors.seldon.server import SeldonModelServer
    from modeldeploy.status import ServiceStatus, utcnow

    objects = []
    for i in range(count):
        config = deployer.parse_config(
            {
                "model_name": f"model-{i % 50}",
                "model_uri": f"s3://models/m{i}",
                "model_type": "sklearn",
                "pipeline_name": f"pipeline-{i % 10}",
            }
        )
        uuid = uuid4()
        server = SeldonModelServer(
            uuid, config, ServiceStatus(), deployer=deployer, name=f"m-{i}-{uuid.hex[:6]}"
        )
        objects.append(server.build_object(config, None, utcnow()))
    emu.bulk_load("SeldonDeployment", objects)


def test_lists_are_paginated_and_filters_are_pushed_down(emu: KubernetesEmulator) -> None:
    deployer = create_deployer("seldon", {"kubeconfig": emu.kubeconfig_dict()})
    _bulk_servers(emu, deployer, 1234)
    emu.requests.reset()

    everything = deployer.find_model_server()

    assert len(everything) == 1234
    lists = [r for r in emu.requests.entries if r.verb == "list"]
    assert len(lists) == 3 and all(r.query["limit"] == "500" for r in lists)
    assert "continue" in lists[1].query and "continue" in lists[2].query

    emu.requests.reset()
    some = deployer.find_model_server(model_name="model-7", pipeline_name="pipeline-7")
    assert len(some) == 25 and {s.config.model_name for s in some} == {"model-7"}
    [request] = emu.requests.entries
    assert "modeldeploy.io/model=model-7" in request.query["labelSelector"]
    created = [s.status.created_at for s in some]
    assert created == sorted(created, reverse=True)  # newest first


def test_objects_not_managed_by_modeldeploy_are_never_listed_or_changed(
    cluster: Cluster, emu: KubernetesEmulator, deployer: Any, flavor: str
) -> None:
    server = deployer.deploy_model(cluster.config(flavor), timeout=cluster.timeout)
    plural = PLURAL[flavor]
    foreign = emu.get(plural, server.name)
    foreign["metadata"] = {
        "name": "someone-elses",
        "labels": {k: v for k, v in foreign["metadata"]["labels"].items() if "managed" not in k},
        "annotations": foreign["metadata"]["annotations"],
    }
    foreign.pop("status", None)
    emu.bulk_load(plural, [foreign])

    assert [s.uuid for s in deployer.find_model_server()] == [server.uuid]
    taken = cluster.config(flavor, model="other", name="someone-elses")
    with pytest.raises(ConflictError, match="already exists"):
        deployer.deploy_model(taken, timeout=cluster.timeout)
    with pytest.raises(ConflictError, match="not managed by modeldeploy"):
        deployer.resources.delete("someone-elses")
    assert emu.get(plural, "someone-elses") is not None


# --- writes: optimistic concurrency and retries ------------------------------------------


def test_a_conflicting_write_is_re_read_and_re_applied(
    cluster: Cluster, emu: KubernetesEmulator, deployer: Any, flavor: str
) -> None:
    server = deployer.deploy_model(cluster.config(flavor, version=1), timeout=cluster.timeout)
    plural = PLURAL[flavor]
    # Someone else labels the object between our read and our write: our write conflicts.
    original = deployer.resources.get

    def get_then_race(name: str, deadline: Any = None) -> Any:
        obj = original(name, deadline)
        if obj is not None and "team" not in obj["metadata"].get("labels", {}):
            meta = {**obj["metadata"], "labels": {**obj["metadata"]["labels"], "team": "a"}}
            emu.store.update(emu.rt(plural), "default", name, {**obj, "metadata": meta})
        return obj

    deployer.resources.get = get_then_race  # type: ignore[method-assign]
    emu.requests.reset()
    deployer.deploy_model(cluster.config(flavor, version=2), timeout=cluster.timeout)

    puts = [r.status for r in emu.requests.entries if r.method == "PUT"]
    # Then 200, unless the controller's own status write (the label rolls a new revision or
    # pod template upstream) raced us once more.
    assert puts[0] == 409 and 200 in puts and set(puts) <= {409, 200}
    obj = emu.get(plural, server.name)
    assert obj["metadata"]["labels"]["team"] == "a"  # their change survived
    assert json.loads(obj["metadata"]["annotations"]["modeldeploy.io/config"])["model_uri"] == (
        cluster.good_uri(flavor, 2)
    )


def test_transient_errors_are_retried_and_validation_errors_are_not(
    cluster: Cluster, emu: KubernetesEmulator, deployer: Any, flavor: str
) -> None:
    emu.faults.inject(503, times=3, method="GET")
    emu.faults.inject(429, times=1, method="POST")
    server = deployer.deploy_model(cluster.config(flavor), timeout=cluster.timeout)
    assert server.is_running
    assert emu.requests.by_status()[503] == 3 and emu.requests.by_status()[429] == 1

    emu.requests.reset()
    emu.faults.inject(422, times=1, method="PUT")
    with pytest.raises(InvalidConfigError, match="refused"):
        deployer.deploy_model(cluster.config(flavor, version=2), timeout=cluster.timeout)
    assert [r.status for r in emu.requests.entries if r.method == "PUT"] == [422]


def test_a_create_whose_answer_was_lost_is_not_repeated(
    cluster: Cluster, emu: KubernetesEmulator, deployer: Any, flavor: str
) -> None:
    """The API server applied our POST but the answer never came back (a 504 from a proxy):
    the retry meets AlreadyExists for an object with our uuid, and carries on with it."""
    from kubernetes.client.exceptions import ApiException

    custom = deployer.kube.custom
    real_create = custom.create_namespaced_custom_object
    lost: list[bool] = []

    def create_then_lose_the_answer(*args: Any, **kwargs: Any) -> Any:
        result = real_create(*args, **kwargs)
        if not lost:
            lost.append(True)
            raise ApiException(status=504, reason="Gateway Timeout")
        return result

    custom.create_namespaced_custom_object = create_then_lose_the_answer
    server = deployer.deploy_model(cluster.config(flavor), timeout=cluster.timeout)

    assert lost == [True] and server.is_running
    assert len(cluster.managed(PLURAL[flavor])) == 1
    posts = [
        r.status
        for r in emu.requests.entries
        if r.method == "POST" and r.resource == server.deployer.kind.plural
    ]
    assert posts == [201, 409]


# --- watches -----------------------------------------------------------------------------


def test_watch_re_reads_after_410_gone(
    cluster: Cluster, emu: KubernetesEmulator, deployer: Any, flavor: str
) -> None:
    server = deployer.deploy_model(cluster.config(flavor), timeout=cluster.timeout)
    old = deployer.resources.get(server.name)
    deployer.stop_model_server(server.uuid, timeout=cluster.timeout)
    emu.compact(keep_last=0)
    reads: list[bool] = []
    gone: list[bool] = []

    def judge(obj: Any, from_event: bool) -> Any:
        reads.append(from_event)
        return obj if len(reads) > 1 else None  # ignore the first read: watch from `old`

    obj = watch_until(
        deployer.resources,
        server.name,
        judge,
        Deadline(5),
        start_from=lambda _obj: old["metadata"]["resourceVersion"],
        on_gone=lambda: gone.append(True),
    )

    assert gone == [True] and reads == [False, False]  # 410, then a fresh read
    assert server.stop_requested(obj)  # the stopped version, read after the 410


def test_the_deadline_holds_when_no_event_arrives(
    cluster: Cluster, emu: KubernetesEmulator, deployer: Any, flavor: str
) -> None:
    server = deployer.deploy_model(cluster.config(flavor), timeout=cluster.timeout)
    started = time.monotonic()
    with pytest.raises(WatchTimeout):
        watch_until(deployer.resources, server.name, lambda o, e: None, Deadline(0.7))
    assert 0.7 <= time.monotonic() - started < 1.7


def test_dropped_watches_resume_without_missing_the_change(
    cluster: Cluster, emu: KubernetesEmulator, deployer: Any, flavor: str
) -> None:
    emu.faults.drop_watch_after_events = 1
    server = deployer.deploy_model(cluster.config(flavor, version=1), timeout=cluster.timeout)
    server = deployer.deploy_model(cluster.config(flavor, version=2), timeout=cluster.timeout)
    assert server.is_running and server.status.observed_generation == 2
    watches = [r for r in emu.requests.entries if r.verb == "watch"]
    assert len(watches) >= 3
    versions = [r.query.get("resourceVersion") for r in watches]
    assert len(set(versions)) == len(versions)  # each resumed from the last version seen


# --- the storage Secret ------------------------------------------------------------------


def test_the_secret_is_what_each_platform_reads(
    cluster: Cluster, emu: KubernetesEmulator, deployer: Any, flavor: str
) -> None:
    server = deployer.deploy_model(cluster.config(flavor), timeout=cluster.timeout)
    name = deployer.secrets.name
    assert name.startswith(f"modeldeploy-{flavor}-storage-")
    secret = emu.get("secrets", name)
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    if flavor == "seldon":
        assert data["RCLONE_CONFIG_S3_SECRET_ACCESS_KEY"] == SECRET
        assert data["RCLONE_CONFIG_S3_ENDPOINT"] == "http://minio.minio:9000"
        graph = emu.get("seldondeployments", server.name)["spec"]["predictors"][0]["graph"]
        assert graph["envSecretRefName"] == name
    elif flavor == "seldon2":
        # one key holding one rclone remote named like the storageUri's prefix
        [(key, remote)] = data.items()
        assert key == "s3" and json.loads(remote) == {
            "type": "s3",
            "name": "s3",
            "parameters": {
                "provider": "Minio",
                "env_auth": False,
                "access_key_id": "AKIA-TEST-ACCESS-KEY",
                "secret_access_key": SECRET,
                "endpoint": "http://minio.minio:9000",
                "region": "us-east-1",
            },
        }
        assert emu.get("models", server.name)["spec"]["secretName"] == name
    else:
        assert data == {
            "AWS_ACCESS_KEY_ID": "AKIA-TEST-ACCESS-KEY",
            "AWS_SECRET_ACCESS_KEY": SECRET,
        }
        annotations = secret["metadata"]["annotations"]
        assert annotations["serving.kserve.io/s3-endpoint"] == "minio.minio:9000"
        assert annotations["serving.kserve.io/s3-usehttps"] == "0"
        account = emu.get("serviceaccounts", name)
        assert {"name": name} in account["secrets"]
        predictor = emu.get("inferenceservices", server.name)["spec"]["predictor"]
        assert predictor["serviceAccountName"] == name


def test_new_credentials_get_their_own_secret_and_the_old_one_goes_with_its_last_user(
    cluster: Cluster, emu: KubernetesEmulator, make_deployer: Any, flavor: str
) -> None:
    first = make_deployer(flavor)
    first.deploy_model(cluster.config(flavor, version=1), timeout=cluster.timeout)
    old = first.secrets.name
    rotated = {**S3_CREDENTIALS, "secret_access_key": "rotated-value"}

    second = make_deployer(flavor, storage_credentials=rotated)
    second.deploy_model(cluster.config(flavor, version=2), timeout=cluster.timeout)

    new = second.secrets.name
    assert new != old
    assert emu.get("secrets", old) is None  # its only user moved to the new Secret
    values = {base64.b64decode(v).decode() for v in emu.get("secrets", new)["data"].values()}
    assert any("rotated-value" in v for v in values)
    assert not any(SECRET in v for v in values)
    assert len(cluster.managed("secrets")) == 1


def test_servers_with_different_credentials_never_share_or_overwrite_a_secret(
    cluster: Cluster, emu: KubernetesEmulator, make_deployer: Any, flavor: str
) -> None:
    rotated = {**S3_CREDENTIALS, "secret_access_key": "other-value"}
    a = make_deployer(flavor)
    b = make_deployer(flavor, storage_credentials=rotated)
    iris = a.deploy_model(cluster.config(flavor, model="iris"), timeout=cluster.timeout)
    wine = b.deploy_model(cluster.config(flavor, model="wine"), timeout=cluster.timeout)

    assert {iris.secret_name, wine.secret_name} == {a.secrets.name, b.secrets.name}
    assert a.secrets.name != b.secrets.name
    for deployer, value in ((a, SECRET), (b, "other-value")):
        data = emu.get("secrets", deployer.secrets.name)["data"]
        assert any(value in base64.b64decode(v).decode() for v in data.values())

    # A chosen secret_name that another server uses is not rewritten with other credentials.
    shared = make_deployer(flavor, secret_name="team-storage")
    shared.deploy_model(cluster.config(flavor, model="ash"), timeout=cluster.timeout)
    clash = make_deployer(flavor, secret_name="team-storage", storage_credentials=rotated)
    with pytest.raises(ConflictError, match="other model server"):
        clash.deploy_model(cluster.config(flavor, model="elm"), timeout=cluster.timeout)
    data = emu.get("secrets", "team-storage")["data"]
    assert any(SECRET in base64.b64decode(v).decode() for v in data.values())


def test_an_existing_secret_is_referenced_and_never_written_or_deleted(
    cluster: Cluster, emu: KubernetesEmulator, make_deployer: Any, flavor: str
) -> None:
    emu.store.create(
        emu.rt("secrets"),
        "default",
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "team-creds"}, "data": {}},
    )
    deployer = make_deployer(flavor, storage_credentials=None, secret_name="team-creds")
    server = deployer.deploy_model(cluster.config(flavor), timeout=cluster.timeout)
    deployer.delete_model_server(server.uuid, timeout=cluster.timeout)
    assert emu.get("secrets", "team-creds") is not None
    writes = [r for r in emu.requests.entries if r.resource == "secrets" and r.method != "GET"]
    assert writes == []

    managing = make_deployer(flavor, secret_name="team-creds")
    with pytest.raises(ConflictError, match="not managed by modeldeploy"):
        managing.deploy_model(cluster.config(flavor, model="other"), timeout=cluster.timeout)


def test_secret_values_never_reach_annotations_labels_logs_exceptions_or_repr(
    cluster: Cluster,
    emu: KubernetesEmulator,
    deployer: Any,
    flavor: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    server = deployer.deploy_model(cluster.config(flavor), timeout=cluster.timeout)
    deployer.stop_model_server(server.uuid, timeout=cluster.timeout)
    emu.faults.inject(422, times=1, method="POST", path_contains="/secrets")
    credentials = {**S3_CREDENTIALS, "secret_access_key": "v2-" + SECRET}
    rotated = create_deployer(flavor, cluster.settings(storage_credentials=credentials))
    with pytest.raises(InvalidConfigError) as caught:
        rotated.deploy_model(cluster.config(flavor, version=2), timeout=cluster.timeout)

    plural = PLURAL[flavor]
    texts = [
        json.dumps(emu.list_objects(plural)),
        json.dumps(emu.list_objects("serviceaccounts")),
        caplog.text,
        str(caught.value),
        repr(deployer),
        repr(deployer.settings),
        repr(server),
        json.dumps(server.info().model_dump(mode="json")),
    ]
    for text in texts:
        assert SECRET not in text


def test_logs_come_from_the_servers_pods(
    cluster: Cluster, emu: KubernetesEmulator, deployer: Any, flavor: str
) -> None:
    server = deployer.deploy_model(cluster.config(flavor), timeout=cluster.timeout)
    controller = controller_of(emu, flavor)
    container = server.container_name
    for i in range(3):
        assert controller.append_log(server.name, f"request {i} served", container=container)

    lines = list(deployer.get_model_server_logs(server.uuid))
    assert lines[-3:] == ["request 0 served", "request 1 served", "request 2 served"]
    assert list(deployer.get_model_server_logs(server.uuid, tail=1)) == ["request 2 served"]

    follow = server.logs(follow=True)
    got: list[str] = []
    streaming = threading.Event()

    def read() -> None:
        for line in follow:
            got.append(line)
            if line == "request 2 served":
                streaming.set()
            if line == "live line":
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert streaming.wait(10)  # the stream is open and has delivered the old lines
    controller.append_log(server.name, "live line", container=container)
    reader.join(timeout=10)
    follow.close()
    assert got[-1] == "live line"


def test_a_kubeconfig_path_may_list_several_files_like_kubeconfig_env(
    emu: KubernetesEmulator, tmp_path: Path
) -> None:
    import os

    import yaml

    full = emu.kubeconfig_dict()
    users = {"apiVersion": "v1", "kind": "Config", "users": full["users"]}
    rest = {k: v for k, v in full.items() if k != "users"}
    (tmp_path / "a").write_text(yaml.safe_dump(rest))
    (tmp_path / "b").write_text(yaml.safe_dump(users))
    joined = os.pathsep.join([str(tmp_path / "a"), str(tmp_path / "missing"), str(tmp_path / "b")])
    assert _list_works({"kubeconfig_path": joined}).startswith("kubeconfig")


def test_an_unreachable_api_server_is_retried_then_named_in_the_error() -> None:
    import socket

    from modeldeploy.errors import PlatformError

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again below: connections are refused
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
        "users": [{"name": "u", "user": {"token": "not-a-real-token"}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }
    deployer = create_deployer("kserve", {"kubeconfig": config, "max_retries": 2})
    slept: list[float] = []
    deployer.kube.retry._sleep = slept.append

    with pytest.raises(PlatformError) as caught:
        deployer.find_model_server()

    assert f"http://127.0.0.1:{port} could not be reached" in str(caught.value)
    assert "not-a-real-token" not in str(caught.value)
    assert len(slept) == 2  # retried with backoff before giving up
