"""CRUD, Status error bodies, status subresource and generation semantics, via the real client."""

from __future__ import annotations

import base64

import pytest
from kubernetes import client

from tests.k8s_emulator import KubernetesEmulator

from .conftest import (
    KSERVE,
    NS,
    SELDON,
    core_api,
    create_isvc,
    custom_api,
    isvc,
    raises,
    sdep,
    status_of,
)

PLURAL = "inferenceservices"


def test_create_get_list_replace_delete(bare: KubernetesEmulator) -> None:
    api = custom_api(bare)
    created = create_isvc(api, isvc("iris", labels={"team": "a"}))
    meta = created["metadata"]
    assert meta["generation"] == 1 and meta["uid"] and meta["creationTimestamp"].endswith("Z")
    assert int(meta["resourceVersion"]) > 0

    got = api.get_namespaced_custom_object(*KSERVE, NS, PLURAL, "iris")
    assert got == created
    listed = api.list_namespaced_custom_object(*KSERVE, NS, PLURAL)
    assert [o["metadata"]["name"] for o in listed["items"]] == ["iris"]
    assert listed["kind"] == "InferenceServiceList"
    assert int(listed["metadata"]["resourceVersion"]) >= int(meta["resourceVersion"])

    got["spec"]["predictor"]["model"]["storageUri"] = "s3://models/iris-v2"
    replaced = api.replace_namespaced_custom_object(*KSERVE, NS, PLURAL, "iris", got)
    assert replaced["metadata"]["generation"] == 2
    assert int(replaced["metadata"]["resourceVersion"]) > int(meta["resourceVersion"])

    out = api.delete_namespaced_custom_object(*KSERVE, NS, PLURAL, "iris")
    assert out["kind"] == "Status" and out["status"] == "Success"
    assert out["details"] == {
        "name": "iris",
        "group": "serving.kserve.io",
        "kind": PLURAL,
        "uid": meta["uid"],
    }
    assert bare.get("InferenceService", "iris") is None


def test_not_found_and_already_exists_bodies(bare: KubernetesEmulator) -> None:
    api = custom_api(bare)
    exc = raises(api.get_namespaced_custom_object, *KSERVE, NS, PLURAL, "missing")
    body = status_of(exc)
    assert exc.status == 404 and body["reason"] == "NotFound"
    assert body["message"] == 'inferenceservices.serving.kserve.io "missing" not found'
    assert body["details"] == {"name": "missing", "group": "serving.kserve.io", "kind": PLURAL}

    create_isvc(api, isvc("dup"))
    exc = raises(create_isvc, api, isvc("dup"))
    body = status_of(exc)
    assert exc.status == 409 and body["reason"] == "AlreadyExists"
    assert "already exists" in body["message"]

    exc = raises(core_api(bare).read_namespaced_secret, "nope", NS)
    assert status_of(exc)["message"] == 'secrets "nope" not found'
    assert "group" not in status_of(exc)["details"]


def test_conflict_on_stale_resource_version(bare: KubernetesEmulator) -> None:
    api = custom_api(bare)
    first = create_isvc(api, isvc("iris"))
    stale = dict(first)
    api.patch_namespaced_custom_object(
        *KSERVE, NS, PLURAL, "iris", {"metadata": {"labels": {"x": "1"}}}
    )
    exc = raises(api.replace_namespaced_custom_object, *KSERVE, NS, PLURAL, "iris", stale)
    body = status_of(exc)
    assert exc.status == 409 and body["reason"] == "Conflict"
    assert body["message"] == (
        'Operation cannot be fulfilled on inferenceservices.serving.kserve.io "iris": the '
        "object has "
        "been modified; please apply your changes to the latest version and try again"
    )
    # a merge patch that pins an old resourceVersion conflicts too
    exc = raises(
        api.patch_namespaced_custom_object,
        *KSERVE,
        NS,
        PLURAL,
        "iris",
        {"metadata": {"resourceVersion": first["metadata"]["resourceVersion"]}, "spec": {}},
    )
    assert exc.status == 409
    # custom resources cannot be updated unconditionally
    no_rv = api.get_namespaced_custom_object(*KSERVE, NS, PLURAL, "iris")
    del no_rv["metadata"]["resourceVersion"]
    exc = raises(api.replace_namespaced_custom_object, *KSERVE, NS, PLURAL, "iris", no_rv)
    assert exc.status == 422 and "must be specified for an update" in status_of(exc)["message"]


def test_generation_and_status_subresource(bare: KubernetesEmulator) -> None:
    api = custom_api(bare)
    body = isvc("iris")
    body["status"] = {"url": "http://forged"}
    created = create_isvc(api, body)
    assert "status" not in created, "create must drop status when the status subresource exists"

    # status-only write through the main resource: ignored, no generation bump, no new revision
    obj = api.get_namespaced_custom_object(*KSERVE, NS, PLURAL, "iris")
    obj["status"] = {"url": "http://ignored"}
    same = api.replace_namespaced_custom_object(*KSERVE, NS, PLURAL, "iris", obj)
    assert "status" not in same
    assert same["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]

    # metadata-only change: new revision, same generation
    labelled = api.patch_namespaced_custom_object(
        *KSERVE, NS, PLURAL, "iris", {"metadata": {"labels": {"a": "b"}}}
    )
    assert labelled["metadata"]["generation"] == 1
    assert labelled["metadata"]["resourceVersion"] != created["metadata"]["resourceVersion"]

    # /status changes only status, even if the body carries spec changes
    st = api.patch_namespaced_custom_object_status(
        *KSERVE,
        NS,
        PLURAL,
        "iris",
        {"status": {"url": "http://iris.example"}, "spec": {"predictor": {"minReplicas": 3}}},
    )
    assert st["status"]["url"] == "http://iris.example"
    assert "minReplicas" not in st["spec"]["predictor"]
    assert st["metadata"]["generation"] == 1

    # spec change through the main resource: generation bumps, status is kept
    spec = api.patch_namespaced_custom_object(
        *KSERVE, NS, PLURAL, "iris", {"spec": {"predictor": {"minReplicas": 2}}}
    )
    assert spec["metadata"]["generation"] == 2
    assert spec["status"]["url"] == "http://iris.example"
    got = api.get_namespaced_custom_object_status(*KSERVE, NS, PLURAL, "iris")
    assert got["status"]["url"] == "http://iris.example"


def test_patch_types_and_errors(bare: KubernetesEmulator) -> None:
    api = custom_api(bare)
    create_isvc(api, isvc("iris", labels={"keep": "1", "drop": "1"}))
    merged = api.patch_namespaced_custom_object(
        *KSERVE, NS, PLURAL, "iris", {"metadata": {"labels": {"drop": None}}}
    )
    assert merged["metadata"]["labels"] == {"keep": "1"}

    ops = [
        {"op": "test", "path": "/metadata/labels/keep", "value": "1"},
        {"op": "replace", "path": "/spec/predictor/model/storageUri", "value": "s3://b/2"},
        {"op": "add", "path": "/metadata/labels/new", "value": "x"},
    ]
    patched = api.patch_namespaced_custom_object(
        *KSERVE, NS, PLURAL, "iris", ops, _content_type="application/json-patch+json"
    )
    assert patched["spec"]["predictor"]["model"]["storageUri"] == "s3://b/2"
    assert patched["metadata"]["labels"]["new"] == "x" and patched["metadata"]["generation"] == 2

    failing = [{"op": "test", "path": "/metadata/labels/keep", "value": "2"}]
    exc = raises(
        api.patch_namespaced_custom_object,
        *KSERVE,
        NS,
        PLURAL,
        "iris",
        failing,
        _content_type="application/json-patch+json",
    )
    assert exc.status == 422 and status_of(exc)["reason"] == "Invalid"
    missing = [{"op": "remove", "path": "/spec/nothing"}]
    exc = raises(
        api.patch_namespaced_custom_object,
        *KSERVE,
        NS,
        PLURAL,
        "iris",
        missing,
        _content_type="application/json-patch+json",
    )
    assert exc.status == 422

    exc = raises(
        api.patch_namespaced_custom_object,
        *KSERVE,
        NS,
        PLURAL,
        "iris",
        {"spec": {}},
        _content_type="application/strategic-merge-patch+json",
    )
    assert exc.status == 415 and status_of(exc)["reason"] == "UnsupportedMediaType"
    exc = raises(api.patch_namespaced_custom_object, *KSERVE, NS, PLURAL, "missing", {"spec": {}})
    assert exc.status == 404


def test_malformed_json_is_bad_request(bare: KubernetesEmulator) -> None:
    import urllib3

    http = urllib3.PoolManager()
    resp = http.request(
        "POST",
        f"{bare.url}/apis/serving.kserve.io/v1beta1/namespaces/default/inferenceservices",
        body=b"{not json",
        headers={"Authorization": f"Bearer {bare.token}", "Content-Type": "application/json"},
    )
    assert resp.status == 400 and resp.json()["reason"] == "BadRequest"
    resp = http.request(
        "PATCH",
        f"{bare.url}/apis/serving.kserve.io/v1beta1/namespaces/default/inferenceservices/x",
        body=b"[1,",
        headers={
            "Authorization": f"Bearer {bare.token}",
            "Content-Type": "application/merge-patch+json",
        },
    )
    assert resp.status == 400


def test_unsupported_verbs_and_paths(bare: KubernetesEmulator) -> None:
    api = custom_api(bare)
    exc = raises(api.delete_collection_namespaced_custom_object, *KSERVE, NS, PLURAL)
    assert exc.status == 405 and status_of(exc)["reason"] == "MethodNotAllowed"
    exc = raises(api.list_namespaced_custom_object, "example.com", "v1", NS, "widgets")
    assert exc.status == 404


def test_names_generate_name_and_namespaces(bare: KubernetesEmulator) -> None:
    api = custom_api(bare)
    exc = raises(create_isvc, api, isvc("Bad_Name"))
    body = status_of(exc)
    assert exc.status == 422 and body["details"]["causes"][0]["field"] == "metadata.name"
    assert "RFC 1123 subdomain" in body["message"]

    # a valid DNS-1123 subdomain that KServe's webhook rejects (must start with a letter)
    exc = raises(create_isvc, api, isvc("1iris"))
    assert exc.status == 403
    assert (
        'admission webhook "inferenceservice.kserve-webhook-server.validator" denied'
        in status_of(exc)["message"]
    )
    # ...while Seldon accepts it (only the subdomain rule applies)
    api.create_namespaced_custom_object(*SELDON, NS, "seldondeployments", sdep("1iris"))

    gen = isvc("")
    gen["metadata"] = {"generateName": "iris-"}
    made = create_isvc(api, gen)
    assert made["metadata"]["name"].startswith("iris-") and len(made["metadata"]["name"]) == 10

    exc = raises(api.create_namespaced_custom_object, *KSERVE, "nowhere", PLURAL, isvc("x"))
    body = status_of(exc)
    assert exc.status == 404 and body["message"] == 'namespaces "nowhere" not found'
    assert body["details"] == {"name": "nowhere", "kind": "namespaces"}

    wrong = isvc("x")
    wrong["metadata"]["namespace"] = "other"
    exc = raises(create_isvc, api, wrong)
    assert exc.status == 400

    exc = raises(create_isvc, api, isvc("x", labels={"bad key!": "v"}))
    assert (
        exc.status == 422 and status_of(exc)["details"]["causes"][0]["field"] == "metadata.labels"
    )


def test_finalizers_delay_deletion(bare: KubernetesEmulator) -> None:
    api = custom_api(bare)
    body = isvc("iris")
    body["metadata"]["finalizers"] = ["example.com/hold"]
    create_isvc(api, body)
    out = api.delete_namespaced_custom_object(*KSERVE, NS, PLURAL, "iris")
    assert out["metadata"]["deletionTimestamp"], "with finalizers DELETE returns the object"
    still = api.get_namespaced_custom_object(*KSERVE, NS, PLURAL, "iris")
    assert still["metadata"]["finalizers"] == ["example.com/hold"]
    api.patch_namespaced_custom_object(
        *KSERVE, NS, PLURAL, "iris", {"metadata": {"finalizers": None}}
    )
    exc = raises(api.get_namespaced_custom_object, *KSERVE, NS, PLURAL, "iris")
    assert exc.status == 404


def test_owner_references_are_garbage_collected(bare: KubernetesEmulator) -> None:
    api, core = custom_api(bare), core_api(bare)
    owner = api.create_namespaced_custom_object(*SELDON, NS, "seldondeployments", sdep("owner"))
    ref = client.V1OwnerReference(
        api_version="machinelearning.seldon.io/v1",
        kind="SeldonDeployment",
        name="owner",
        uid=owner["metadata"]["uid"],
        controller=True,
    )
    core.create_namespaced_secret(
        NS,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="dep", owner_references=[ref]), string_data={"k": "v"}
        ),
    )
    core.create_namespaced_secret(
        NS, client.V1Secret(metadata=client.V1ObjectMeta(name="free"), string_data={"k": "v"})
    )
    api.delete_namespaced_custom_object(*SELDON, NS, "seldondeployments", "owner")
    assert bare.wait_for(lambda: bare.get("Secret", "dep") is None, 5), "dependent not collected"
    assert bare.get("Secret", "free") is not None

    owner = api.create_namespaced_custom_object(*SELDON, NS, "seldondeployments", sdep("owner2"))
    ref.name, ref.uid = "owner2", owner["metadata"]["uid"]
    core.create_namespaced_secret(
        NS,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="kept", owner_references=[ref]),
            string_data={"k": "v"},
        ),
    )
    api.delete_namespaced_custom_object(
        *SELDON, NS, "seldondeployments", "owner2", propagation_policy="Orphan"
    )
    assert bare.wait_for(lambda: bare.get("SeldonDeployment", "owner2") is None, 5)
    kept = bare.get("Secret", "kept")
    assert kept is not None and "ownerReferences" not in kept["metadata"]

    # an owner that is gone when its dependent is written: the dependent is collected
    ref.name = "owner-gone"
    core.create_namespaced_secret(
        NS,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="dangling", owner_references=[ref]),
            string_data={"k": "v"},
        ),
    )
    assert bare.wait_for(lambda: bare.get("Secret", "dangling") is None, 5), "not collected"


def test_secrets_and_service_accounts(bare: KubernetesEmulator) -> None:
    core = core_api(bare)
    s = core.create_namespaced_secret(
        NS,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="creds"),
            string_data={"AWS_ACCESS_KEY_ID": "abc"},
            data={"other": base64.b64encode(b"x").decode()},
        ),
    )
    assert s.type == "Opaque" and s.string_data is None
    assert base64.b64decode(s.data["AWS_ACCESS_KEY_ID"]) == b"abc" and "other" in s.data
    # strategic merge patch on a built-in is accepted (treated as merge)
    p = core.patch_namespaced_secret("creds", NS, {"metadata": {"labels": {"a": "b"}}})
    assert p.metadata.labels == {"a": "b"}
    # unconditional update is allowed for built-ins
    p.metadata.resource_version = None
    core.replace_namespaced_secret("creds", NS, p)

    bad = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "bad"},
        "data": {"k": "not base64!"},
    }
    exc = raises(core.create_namespaced_secret, NS, bad)
    assert exc.status == 400 and "cannot be handled as a Secret" in status_of(exc)["message"]
    badkey = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "bad"},
        "stringData": {"a/b": "v"},
    }
    exc = raises(core.create_namespaced_secret, NS, badkey)
    assert exc.status == 422 and status_of(exc)["details"]["causes"][0]["field"] == "data[a/b]"
    tls = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "tls"},
        "type": "kubernetes.io/tls",
        "data": {},
    }
    exc = raises(core.create_namespaced_secret, NS, tls)
    assert exc.status == 422

    out = core.delete_namespaced_secret("creds", NS)
    assert out["status"] == "Success" and out["details"]["kind"] == "secrets"

    sa = core.create_namespaced_service_account(
        NS, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="runner"))
    )
    assert core.read_namespaced_service_account("runner", NS).metadata.uid == sa.metadata.uid
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c"}]},
    }
    exc = raises(core.create_namespaced_pod, NS, pod)
    assert (
        exc.status == 422
        and status_of(exc)["details"]["causes"][0]["field"] == "spec.containers[0].image"
    )


def test_dry_run_does_not_persist(bare: KubernetesEmulator) -> None:
    api = custom_api(bare)
    out = create_isvc(api, isvc("dry"), dry_run="All")
    assert out["metadata"]["name"] == "dry"
    assert bare.get("InferenceService", "dry") is None


def test_unauthorized_without_token(bare: KubernetesEmulator) -> None:
    cfg = client.Configuration()
    cfg.host = bare.url
    api = client.CustomObjectsApi(client.ApiClient(cfg))
    exc = raises(api.list_namespaced_custom_object, *KSERVE, NS, PLURAL)
    assert exc.status == 401 and status_of(exc)["reason"] == "Unauthorized"
    cfg.api_key = {"authorization": "Bearer wrong"}
    exc = raises(api.list_namespaced_custom_object, *KSERVE, NS, PLURAL)
    assert exc.status == 401
    assert bare.requests.count(status=401) == 2


def test_kubeconfig_file_and_discovery(
    bare: KubernetesEmulator, tmp_path: pytest.TempPathFactory
) -> None:
    from kubernetes import config

    path = bare.write_kubeconfig(tmp_path / "kubeconfig")  # type: ignore[operator]
    api_client = config.new_client_from_config(str(path), context="emulator")
    assert client.VersionApi(api_client).get_code().git_version.startswith("v1.")
    groups = {g.name for g in client.ApisApi(api_client).get_api_versions().groups}
    assert {"serving.kserve.io", "machinelearning.seldon.io", "mlops.seldon.io"} <= groups
    resources = client.CoreV1Api(api_client).get_api_resources().resources
    assert {"pods", "pods/log", "secrets", "serviceaccounts", "namespaces"} <= {
        r.name for r in resources
    }


def test_seldon_core_2_model_and_experiment(bare: KubernetesEmulator) -> None:
    api = custom_api(bare)
    model = {
        "apiVersion": "mlops.seldon.io/v1alpha1",
        "kind": "Model",
        "metadata": {"name": "iris"},
        "spec": {"storageUri": "gs://m/iris", "requirements": ["sklearn"]},
    }
    made = api.create_namespaced_custom_object("mlops.seldon.io", "v1alpha1", NS, "models", model)
    assert made["metadata"]["generation"] == 1
    exp = {
        "apiVersion": "mlops.seldon.io/v1alpha1",
        "kind": "Experiment",
        "metadata": {"name": "ab"},
        "spec": {"candidates": [{"name": "iris"}]},
    }
    exc = raises(
        api.create_namespaced_custom_object, "mlops.seldon.io", "v1alpha1", NS, "experiments", exp
    )
    assert status_of(exc)["details"]["causes"][0] == {
        "reason": "FieldValueRequired",
        "message": "Required value",
        "field": "spec.candidates[0].weight",
    }


def test_tls_serves_the_token_holder_and_refuses_plain_http() -> None:
    import urllib.request

    with KubernetesEmulator(namespaces=["default"], controllers=False, tls=True) as emu:
        names = [n.metadata.name for n in client.CoreV1Api(emu.api_client()).list_namespace().items]
        assert names == ["default"]
        cluster = emu.kubeconfig_dict()["clusters"][0]["cluster"]
        assert cluster["server"].startswith("https://") and cluster["certificate-authority-data"]
        plain = emu.url.replace("https://", "http://")
        with pytest.raises(OSError):
            urllib.request.urlopen(plain + "/version", timeout=5)
