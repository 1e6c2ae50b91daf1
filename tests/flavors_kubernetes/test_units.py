"""Pure pieces of the Kubernetes plumbing: names, labels, records, retries, error texts,
credential layouts and inference-protocol bodies. No cluster needed."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest
from kubernetes.client.exceptions import ApiException
from modeldeploy.deployer import ServerQuery
from modeldeploy.errors import (
    ConflictError,
    InvalidConfigError,
    ModelServerNotFoundError,
    PlatformError,
)
from modeldeploy.flavors.kserve.config import KServeConfig
from modeldeploy.flavors.kubernetes import protocols
from modeldeploy.flavors.kubernetes.credentials import (
    AzureCredentials,
    GCSCredentials,
    S3Credentials,
)
from modeldeploy.flavors.kubernetes.errors import translate
from modeldeploy.flavors.kubernetes.naming import (
    DNS1035_LABEL,
    LABEL_VALUE,
    MAX_SERVER_NAME,
    label_value,
    server_name,
)
from modeldeploy.flavors.kubernetes.records import (
    ANNOTATION_CONFIG,
    query_selector,
    read_record,
    record_annotations,
    record_labels,
)
from modeldeploy.flavors.kubernetes.retry import RetryPolicy, is_transient
from modeldeploy.flavors.kubernetes.settings import KubernetesDeployerSettings
from modeldeploy.flavors.seldon.config import SeldonConfig

SECRET = "s3cr3t-value-that-must-never-leak"


@pytest.mark.parametrize(
    "value",
    ["iris", "Iris_Model.v2", "a" * 63, "my pipeline", "dag:task/1", "x" * 80, "-lead", "é"],
)
def test_label_values_are_valid_and_deterministic(value: str) -> None:
    out = label_value(value)
    assert len(out) <= 63 and LABEL_VALUE.match(out)
    assert label_value(value) == out
    if len(value) <= 63 and LABEL_VALUE.match(value):
        assert out == value  # readable values are kept as they are


def test_different_inputs_do_not_collide_after_sanitizing() -> None:
    assert label_value("my pipeline") != label_value("my_pipeline")
    assert label_value("my pipeline") != label_value("my-pipeline")
    assert label_value("x" * 80) != label_value("x" * 81)


@pytest.mark.parametrize("model", ["iris", "9lives", "My.Model_v2", "---", "m" * 200])
def test_server_names_are_dns1035_and_short_enough_for_kserve(model: str) -> None:
    uuid = uuid4()
    name = server_name(model, uuid)
    assert DNS1035_LABEL.match(name) and len(name) <= MAX_SERVER_NAME
    assert name.endswith(uuid.hex[:8])


def test_records_round_trip_and_selectors_push_filters_down() -> None:
    config = SeldonConfig(
        model_name="iris",
        model_uri="s3://models/iris/1",
        model_type="sklearn",
        pipeline_name="my pipeline",
        run_id="manual__2025-01-01T00:00:00+00:00",
    )
    uuid = uuid4()
    created = datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    obj = {
        "metadata": {
            "name": "iris-1",
            "labels": record_labels(config, uuid, "seldon"),
            "annotations": record_annotations(config, created),
        }
    }
    record = read_record(obj, SeldonConfig)
    assert record is not None
    assert record.uuid == uuid and record.config == config and record.created_at == created
    assert all(LABEL_VALUE.match(v) for v in obj["metadata"]["labels"].values())

    selector = query_selector(
        ServerQuery(pipeline_name="my pipeline", model_name="iris", run_id=config.run_id),
        "seldon",
    )
    labels = obj["metadata"]["labels"]
    for term in selector.split(","):
        key, value = term.split("=")
        assert labels[key] == value


def test_damaged_or_foreign_records_are_skipped() -> None:
    assert read_record({"metadata": {"name": "x", "labels": {}}}, SeldonConfig) is None
    damaged = {
        "metadata": {
            "name": "x",
            "labels": {"app.kubernetes.io/managed-by": "modeldeploy", "modeldeploy.io/uuid": "1"},
            "annotations": {ANNOTATION_CONFIG: "{not json"},
        }
    }
    assert read_record(damaged, SeldonConfig) is None


def _api_error(status: int, reason: str = "", message: str = "", headers: Any = None) -> Any:
    exc = ApiException(status=status, reason="x")
    exc.body = json.dumps(
        {"kind": "Status", "status": "Failure", "reason": reason, "message": message}
    )
    exc.headers = headers or {}
    return exc


def test_only_throttling_server_errors_and_drops_are_transient() -> None:
    import urllib3

    for status in (429, 500, 502, 503, 504):
        assert is_transient(_api_error(status))
    for status in (400, 401, 403, 404, 409, 410, 422):
        assert not is_transient(_api_error(status))
    assert is_transient(urllib3.exceptions.ProtocolError("connection dropped"))
    assert is_transient(ConnectionResetError())
    assert not is_transient(ValueError("bad input"))


def test_retry_policy_backs_off_then_gives_up_and_never_retries_validation_errors() -> None:
    slept: list[float] = []
    policy = RetryPolicy(max_retries=3, sleep=slept.append)
    calls = {"n": 0}

    def flaky() -> str:
        calls["n"] += 1
        if calls["n"] < 3:
            raise _api_error(503)
        return "ok"

    assert policy.call(flaky) == "ok" and calls["n"] == 3 and len(slept) == 2

    def invalid() -> None:
        calls["n"] += 1
        raise _api_error(422, "Invalid", "spec.replicas: Invalid value")

    calls["n"] = 0
    with pytest.raises(ApiException):
        policy.call(invalid)
    assert calls["n"] == 1  # no retry on a validation error

    def always_down() -> None:
        raise _api_error(500)

    with pytest.raises(ApiException):
        policy.call(always_down)

    slept.clear()
    with pytest.raises(ApiException):
        RetryPolicy(max_retries=1, sleep=slept.append).call(
            lambda: (_ for _ in ()).throw(_api_error(429, headers={"Retry-After": "0.25"}))
        )
    assert slept == [0.25]  # Retry-After is honoured


def test_api_errors_become_typed_errors_with_the_servers_reason() -> None:
    cases = [
        (404, "NotFound", ModelServerNotFoundError),
        (409, "Conflict", ConflictError),
        (422, "Invalid", InvalidConfigError),
        (403, "Forbidden", PlatformError),
        (500, "InternalError", PlatformError),
    ]
    for status, reason, kind in cases:
        err = translate(_api_error(status, reason, f"the {reason} message"), "doing x")
        assert isinstance(err, kind)
        assert f"the {reason} message" in str(err) and "doing x" in str(err)


def test_settings_accept_plain_strings_and_hide_secrets() -> None:
    settings = KubernetesDeployerSettings.model_validate(
        {
            "kubeconfig": "apiVersion: v1\nclusters: []\ncontexts: []\nusers: []\n",
            "namespace": " team-a ",
            "in_cluster": "false",
            "ingress_base_url": "http://127.0.0.1:8080/",
            "storage_credentials": json.dumps(
                {"type": "s3", "access_key_id": "AK", "secret_access_key": SECRET}
            ),
            "secret_name": "",
            "request_timeout": "12.5",
        }
    )
    assert settings.kubeconfig == {"apiVersion": "v1", "clusters": [], "contexts": [], "users": []}
    assert settings.namespace == "team-a" and settings.in_cluster is False
    assert settings.ingress_base_url == "http://127.0.0.1:8080"
    assert settings.secret_name is None and settings.request_timeout == 12.5
    for text in (repr(settings), str(settings), settings.model_dump_json()):
        assert SECRET not in text
    assert "clusters" not in repr(settings)  # the kubeconfig (with its tokens) stays out


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("namespace", "Team_A"),
        ("ingress_base_url", "ftp://x"),
        ("secret_name", "Bad Name"),
        ("storage_credentials", {"type": "ftp"}),
    ],
)
def test_bad_settings_are_refused(field: str, value: Any) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        KubernetesDeployerSettings.model_validate({field: value})


def test_credential_errors_do_not_echo_secret_values() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as caught:
        AzureCredentials(account_key=SECRET)  # account_name missing
    assert SECRET not in str(caught.value)
    with pytest.raises(ValidationError) as caught:
        GCSCredentials(service_account_json=SECRET)  # not JSON
    assert SECRET not in str(caught.value)


def test_secret_layouts_use_the_names_the_platforms_read() -> None:
    from modeldeploy.flavors.kserve.storage import kserve_secret
    from modeldeploy.flavors.seldon.storage import rclone_env

    s3 = S3Credentials(
        access_key_id="AK", secret_access_key=SECRET, endpoint="http://minio:9000", region="eu"
    )
    env, _ = rclone_env(s3)
    assert env["RCLONE_CONFIG_S3_TYPE"] == "s3"
    assert env["RCLONE_CONFIG_S3_SECRET_ACCESS_KEY"] == SECRET
    assert env["RCLONE_CONFIG_S3_ENDPOINT"] == "http://minio:9000"
    assert env["RCLONE_CONFIG_S3_ENV_AUTH"] == "false"
    data, annotations = kserve_secret(s3)
    assert data == {"AWS_ACCESS_KEY_ID": "AK", "AWS_SECRET_ACCESS_KEY": SECRET}
    assert annotations["serving.kserve.io/s3-endpoint"] == "minio:9000"
    assert annotations["serving.kserve.io/s3-usehttps"] == "0"
    assert annotations["serving.kserve.io/s3-region"] == "eu"
    assert SECRET not in json.dumps(annotations)

    key = json.dumps({"type": "service_account", "private_key": SECRET})
    gcs = GCSCredentials(service_account_json=key)
    env, _ = rclone_env(gcs)
    # rclone's remote is the URI's scheme: gs:// reads GS, gcs:// reads GCS.
    for remote in ("GS", "GCS"):
        assert env[f"RCLONE_CONFIG_{remote}_SERVICE_ACCOUNT_CREDENTIALS"] == key
        assert env[f"RCLONE_CONFIG_{remote}_TYPE"] == "gcs"  # rclone's prefix for the backend
    assert kserve_secret(gcs) == ({"gcloud-application-credentials.json": key}, {})

    azure = AzureCredentials(client_id="c", client_secret=SECRET, tenant_id="t")
    assert kserve_secret(azure)[0]["AZURE_CLIENT_SECRET"] == SECRET
    assert rclone_env(azure)[0]["RCLONE_CONFIG_AZ_TYPE"] == "azureblob"
    account = AzureCredentials(account_name="acct", account_key=SECRET)
    assert kserve_secret(account)[0]["AZURE_STORAGE_ACCESS_KEY"] == SECRET
    assert rclone_env(account)[0]["RCLONE_CONFIG_AZ_KEY"] == SECRET


def test_flavor_configs_resolve_their_server_from_the_model_type() -> None:
    seldon = SeldonConfig(model_name="m", model_uri="s3://b/m", model_type="xgboost")
    assert seldon.resolved_implementation() == "XGBOOST_SERVER"
    kserve = KServeConfig(model_name="m", model_uri="s3://b/m", model_type="scikit-learn")
    assert kserve.resolved_format() == "sklearn"
    with pytest.raises(ValueError, match="implementation or container"):
        SeldonConfig(
            model_name="m",
            model_uri="s3://b/m",
            implementation="SKLEARN_SERVER",
            container={"image": "me/model:1"},
        )


def test_protocol_bodies_follow_the_documented_shapes() -> None:
    rows = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]
    assert protocols.seldon_request(rows) == {"data": {"ndarray": rows}}
    assert protocols.seldon_response({"data": {"names": ["t:0"], "ndarray": [0, 2]}}) == [0, 2]
    tensor = {"data": {"tensor": {"shape": [2, 1], "values": [0, 2]}}}
    assert protocols.seldon_response(tensor) == [[0], [2]]
    assert protocols.v1_request(rows) == {"instances": rows}
    assert protocols.v1_response({"predictions": [0, 2]}) == [0, 2]
    body = protocols.v2_request(rows)
    assert body == {
        "inputs": [
            {"name": "input-0", "shape": [2, 4], "datatype": "FP64", "data": [*rows[0], *rows[1]]}
        ]
    }
    assert protocols.v2_request([[1, 2], [3, 4]])["inputs"][0]["datatype"] == "INT64"
    out = {"outputs": [{"name": "predict", "shape": [2, 1], "datatype": "INT64", "data": [0, 2]}]}
    assert protocols.v2_response(out) == [[0], [2]]
    with pytest.raises(PlatformError):
        protocols.v2_response({"error": "boom"})


def test_settings_errors_do_not_echo_credentials_or_kubeconfigs() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as caught:
        KubernetesDeployerSettings.model_validate(
            {"storage_credentials": {"type": "gcs", "service_account_json": SECRET}}
        )
    assert SECRET not in str(caught.value)
    with pytest.raises(ValidationError) as caught:
        KubernetesDeployerSettings.model_validate({"kubeconfig": f"[{SECRET}"})
    assert SECRET not in str(caught.value)


def test_importing_the_flavors_and_building_deployers_does_not_import_kubernetes() -> None:
    import subprocess
    import sys

    code = (
        "import sys, modeldeploy\n"
        "from modeldeploy.flavors import create_deployer\n"
        "for f in ('seldon', 'kserve'):\n"
        "    d = create_deployer(f, {'namespace': 'models', 'kubeconfig_path': '/nowhere'})\n"
        "    cfg = {'model_name': 'm', 'model_uri': 's3://b/m', 'model_type': 'sklearn'}\n"
        "    d.parse_config(cfg)\n"
        "assert 'kubernetes' not in sys.modules, 'kubernetes imported too early'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_kserve_urls_keep_the_path_prefix_and_can_use_the_cluster_address() -> None:
    from modeldeploy.flavors.kserve.resource import prediction_path, request_target

    obj = {
        "status": {
            "url": "http://gateway.example.com/serving/models/iris/",  # pathTemplate routing
            "address": {"url": "http://iris.models.svc.cluster.local"},
        }
    }
    path = prediction_path("v2", "iris")
    assert request_target(obj, "http://10.0.0.5", path) == (
        "http://10.0.0.5/serving/models/iris/v2/models/iris/infer",
        "gateway.example.com",
    )
    assert request_target(obj, None, path) == (
        "http://gateway.example.com/serving/models/iris/v2/models/iris/infer",
        None,
    )
    assert request_target(obj, "http://10.0.0.5", path, cluster_local=True) == (
        "http://iris.models.svc.cluster.local/v2/models/iris/infer",
        None,
    )


@pytest.mark.parametrize(
    ("fields", "written", "resolved"),
    [
        ({"model_type": "sklearn"}, None, "v1"),
        ({"model_type": "mlflow"}, "v2", "v2"),
        ({"model_type": "triton"}, "v2", "v2"),
        ({"model_format": "onnx"}, "v2", "v2"),
        ({"model_type": "sklearn", "protocol_version": "v2"}, "v2", "v2"),
        ({"model_type": "mlflow", "runtime": "my-runtime"}, None, "v2"),
    ],
)
def test_kserve_protocol_is_written_only_where_kserve_would_find_no_runtime(
    fields: dict[str, str], written: str | None, resolved: str
) -> None:
    config = KServeConfig(model_name="m", model_uri="s3://b/m", **fields)
    assert config.written_protocol() == written
    assert config.resolved_protocol() == resolved
    assert config.resolved_protocol("v1") == fields.get("protocol_version", "v1")


def test_seldon_names_past_a_label_are_hashed_as_the_operator_hashes_them() -> None:
    """Seldon 1's operator names a Deployment `<sdep>-<predictor>-<i>-<containers>`, or
    `seldon-<md5>` past 63 characters; the flavor must look for the same names."""
    from modeldeploy.flavors.seldon import traffic

    from tests.k8s_emulator.controllers import seldon_operator_name

    short = {"name": "g1", "graph": {"name": "model"}}
    assert traffic.deployment_names("iris-1a2b3c4d5e", short) == ["iris-1a2b3c4d5e-g1-0-model"]
    sdep = "iris-rollout-" + "x" * 30 + "-1a2b3c4d5e"
    [name] = traffic.deployment_names(sdep, short)
    long = f"{sdep}-g1-0-model"
    assert name.startswith("seldon-") and len(name) <= 63 and name != long
    assert name == seldon_operator_name(long)  # what the emulator's operator creates
    assert traffic.deployment_names(sdep, short) == [name]  # deterministic
    assert traffic.predictor_key(sdep, short) == f"{sdep}-g1"
    assert traffic.predictor_key(sdep + "y" * 10, short).startswith("seldon-")


def test_seldon_1_reads_the_split_istio_routes_from_the_virtual_service() -> None:
    """Istio sends everything to a lone destination whatever its weight (protobuf JSON
    leaves a zero weight out), and mirrors every request when no percentage is set; the
    condition's reason tells whether the operator writes a VirtualService at all."""
    from modeldeploy.flavors.seldon import traffic
    from modeldeploy.traffic import CHALLENGER, CHAMPION

    from tests.k8s_emulator.istio import virtual_service_spec

    champion, challenger = {"name": "default"}, {"name": "g2"}

    def vs(routes: list[tuple[str, str, int, bool]]) -> dict[str, Any]:
        return {"spec": virtual_service_spec("ns", "iris", routes)}

    split = vs([("default", "iris-default", 70, False), ("g2", "iris-g2", 30, False)])
    assert traffic.routed_split(split, champion, challenger) == ({CHAMPION: 70, CHALLENGER: 30}, 0)
    lone = vs([("default", "iris-default", 0, False), ("g2", "iris-g2", 0, True)])
    assert traffic.routed_split(lone, champion, challenger) == ({CHAMPION: 100, CHALLENGER: 0}, 100)
    half = vs([("default", "iris-default", 100, False), ("g2", "iris-g2", 50, True)])
    assert traffic.routed_split(half, champion, None) == ({CHAMPION: 100, CHALLENGER: 0}, 0)
    assert traffic.routed_split(half, champion, challenger)[1] == 50

    def sdep(reason: str | None) -> dict[str, Any]:
        conds = [] if reason is None else [{"type": "istioVirtualServicesReady", "reason": reason}]
        return {"metadata": {"name": "iris"}, "status": {"conditions": conds}}

    assert traffic.istio_routes(sdep("All VirtualServices created"))
    assert not traffic.istio_routes(sdep("No VirtualServices defined"))
    assert not traffic.istio_routes(sdep(None))  # an operator that does not say: the spec


@pytest.mark.parametrize(
    "creds",
    [
        S3Credentials(access_key_id="AK", secret_access_key=SECRET, endpoint="http://m:9000"),
        GCSCredentials(service_account_json=json.dumps({"type": "service_account"})),
        AzureCredentials(client_id="c", client_secret=SECRET, tenant_id="t"),
    ],
    ids=["s3", "gcs", "azure"],
)
def test_seldon_1_and_2_write_the_same_rclone_remote(creds: Any) -> None:
    """One mapping, two renderings: Seldon 1's environment and Seldon 2's JSON agree."""
    from modeldeploy.flavors.seldon.storage import rclone_env
    from modeldeploy.flavors.seldon2.storage import rclone_config

    env, _ = rclone_env(creds)
    [(name, raw)] = rclone_config(creds)[0].items()
    remote = json.loads(raw)
    prefix = f"RCLONE_CONFIG_{name.upper()}_"
    from_env = {k[len(prefix) :].lower(): v for k, v in env.items() if k.startswith(prefix)}
    as_text = {
        k: str(v).lower() if isinstance(v, bool) else v for k, v in remote["parameters"].items()
    }
    assert from_env == {"type": remote["type"], **as_text}
    assert remote["name"] == name


def test_a_seldon_deployment_still_running_old_resources_does_not_serve_the_new_spec() -> None:
    """Seldon 1 has no observedGeneration: the executor's copy of its predictor is the
    evidence that a write reached the pods, resources included, not only the model URI."""
    import base64

    from modeldeploy.flavors.seldon import traffic

    def predictor(memory: str) -> dict[str, Any]:
        container = {"name": "model", "resources": {"requests": {"memory": memory}}}
        return {
            "name": "g1",
            "graph": {"name": "model", "modelUri": "s3://b/m"},
            "componentSpecs": [{"spec": {"containers": [container]}}],
        }

    running = {**predictor("200Mi"), "traffic": 0, "replicas": 0}
    running["componentSpecs"][0]["spec"]["containers"][0]["ports"] = [{"containerPort": 9000}]
    env = [
        {
            "name": "ENGINE_PREDICTOR",
            "value": base64.b64encode(json.dumps(running).encode()).decode(),
        }
    ]
    engine = {"name": traffic.ENGINE_CONTAINER, "env": env}
    deployment = {"spec": {"template": {"spec": {"containers": [engine]}}}}
    assert traffic.engine_runs(deployment, predictor("200Mi"))  # defaults added: still ours
    assert not traffic.engine_runs(deployment, predictor("300Mi"))
