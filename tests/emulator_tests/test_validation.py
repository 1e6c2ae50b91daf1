"""CRD schema validation, structural pruning and fieldValidation, against the real CRDs."""

from __future__ import annotations

import json

from tests.k8s_emulator import KubernetesEmulator

from .conftest import KSERVE, NS, SELDON, create_isvc, custom_api, isvc, raises, sdep, status_of

PLURAL = "inferenceservices"


def test_wrong_type_is_422_with_field_path(bare: KubernetesEmulator) -> None:
    body = isvc("iris")
    body["spec"]["predictor"]["minReplicas"] = "two"
    exc = raises(create_isvc, custom_api(bare), body)
    st = status_of(exc)
    assert exc.status == 422 and st["reason"] == "Invalid"
    assert (
        st["details"]["kind"] == "InferenceService"
        and st["details"]["group"] == "serving.kserve.io"
    )
    assert st["details"]["causes"] == [
        {
            "reason": "FieldValueTypeInvalid",
            "message": 'Invalid value: "string": spec.predictor.minReplicas in body must be of '
            'type integer: "string"',
            "field": "spec.predictor.minReplicas",
        }
    ]
    assert st["message"].startswith('InferenceService.serving.kserve.io "iris" is invalid: ')


def test_missing_required_and_enum(bare: KubernetesEmulator) -> None:
    body = isvc("iris")
    body["spec"]["predictor"]["model"]["modelFormat"] = {"version": "1"}
    body["spec"]["predictor"]["scaleMetric"] = "gpu"
    exc = raises(create_isvc, custom_api(bare), body)
    causes = {c["field"]: c for c in status_of(exc)["details"]["causes"]}
    assert causes["spec.predictor.model.modelFormat.name"]["reason"] == "FieldValueRequired"
    enum = causes["spec.predictor.scaleMetric"]
    assert enum["reason"] == "FieldValueNotSupported"
    assert (
        enum["message"]
        == 'Unsupported value: "gpu": supported values: "cpu", "memory", "concurrency", "rps"'
    )
    assert status_of(exc)["message"].count(",") >= 1 and "[" in status_of(exc)["message"]

    exc = raises(
        custom_api(bare).create_namespaced_custom_object,
        *SELDON,
        NS,
        "seldondeployments",
        {
            "apiVersion": "machinelearning.seldon.io/v1",
            "kind": "SeldonDeployment",
            "metadata": {"name": "s"},
            "spec": {},
        },
    )
    assert status_of(exc)["details"]["causes"][0]["field"] == "spec.predictors"
    bad = sdep("s")
    del bad["spec"]["predictors"][0]["graph"]["name"]
    exc = raises(
        custom_api(bare).create_namespaced_custom_object, *SELDON, NS, "seldondeployments", bad
    )
    assert status_of(exc)["details"]["causes"][0]["field"] == "spec.predictors[0].graph.name"


def test_int_or_string_pattern_and_list_map_keys(bare: KubernetesEmulator) -> None:
    api = custom_api(bare)
    body = isvc("iris")
    body["spec"]["predictor"]["model"]["resources"] = {
        "limits": {"cpu": "500m", "memory": 1073741824}
    }
    create_isvc(api, body)
    bad = isvc("iris2")
    bad["spec"]["predictor"]["model"]["resources"] = {"limits": {"cpu": "lots"}}
    exc = raises(create_isvc, api, bad)
    cause = status_of(exc)["details"]["causes"][0]
    assert (
        cause["field"] == "spec.predictor.model.resources.limits.cpu"
        and "should match" in cause["message"]
    )
    bad["spec"]["predictor"]["model"]["resources"] = {"limits": {"cpu": True}}
    exc = raises(create_isvc, api, bad)
    assert "must be of type integer,string" in status_of(exc)["details"]["causes"][0]["message"]

    dup = isvc("iris3")
    dup["spec"]["predictor"]["containers"] = [
        {
            "name": "kserve-container",
            "image": "a",
            "ports": [{"containerPort": 8080}, {"containerPort": 8080}],
        }
    ]
    exc = raises(create_isvc, api, dup)
    assert status_of(exc)["details"]["causes"][0]["reason"] == "FieldValueDuplicate"


def test_defaults_are_applied(bare: KubernetesEmulator) -> None:
    body = isvc("iris")
    body["spec"]["predictor"]["containers"] = [
        {"name": "kserve-container", "image": "a", "ports": [{"containerPort": 8080}]}
    ]
    out = create_isvc(custom_api(bare), body)
    assert out["spec"]["predictor"]["containers"][0]["ports"][0]["protocol"] == "TCP"


def test_unknown_fields_warn_prune_by_default(bare: KubernetesEmulator) -> None:
    api = custom_api(bare)
    body = isvc("iris")
    body["spec"]["predictor"]["model"]["storageURI"] = "typo"
    body["spec"]["bogus"] = 1
    body["metadata"]["labelz"] = {"x": "y"}
    _, code, headers = api.create_namespaced_custom_object_with_http_info(*KSERVE, NS, PLURAL, body)
    assert code == 201
    warning = headers.get("Warning", "")
    assert 'unknown field \\"spec.predictor.model.storageURI\\"' in warning
    assert (
        'unknown field \\"spec.bogus\\"' in warning
        and 'unknown field \\"metadata.labelz\\"' in warning
    )
    stored = bare.get("InferenceService", "iris")
    assert (
        "storageURI" not in stored["spec"]["predictor"]["model"] and "bogus" not in stored["spec"]
    )
    assert "labelz" not in stored["metadata"]


def test_unknown_fields_strict_and_ignore(bare: KubernetesEmulator) -> None:
    api = custom_api(bare)
    body = isvc("iris")
    body["spec"]["predictor"]["model"]["storageURI"] = "typo"
    exc = raises(
        api.create_namespaced_custom_object, *KSERVE, NS, PLURAL, body, field_validation="Strict"
    )
    st = status_of(exc)
    assert exc.status == 400 and st["reason"] == "BadRequest"
    assert st["message"] == (
        'InferenceService in version "v1beta1" cannot be handled as a InferenceService: strict '
        "decoding "
        'error: unknown field "spec.predictor.model.storageURI"'
    )
    _, _, headers = api.create_namespaced_custom_object_with_http_info(
        *KSERVE, NS, PLURAL, body, field_validation="Ignore"
    )
    assert "Warning" not in headers
    assert "storageURI" not in bare.get("InferenceService", "iris")["spec"]["predictor"]["model"]

    # patches are checked the same way
    exc = raises(
        api.patch_namespaced_custom_object,
        *KSERVE,
        NS,
        PLURAL,
        "iris",
        {"spec": {"nope": 1}},
        field_validation="Strict",
    )
    assert exc.status == 400 and 'unknown field "spec.nope"' in status_of(exc)["message"]


def test_preserve_unknown_fields_keeps_data(bare: KubernetesEmulator) -> None:
    api = custom_api(bare)
    create_isvc(api, isvc("iris"))
    out = api.patch_namespaced_custom_object_status(
        *KSERVE, NS, PLURAL, "iris", {"status": {"customThing": {"a": 1}, "url": "http://x"}}
    )
    assert out["status"]["customThing"] == {"a": 1}, (
        "status has x-kubernetes-preserve-unknown-fields"
    )


def test_status_is_validated_too(bare: KubernetesEmulator) -> None:
    api = custom_api(bare)
    create_isvc(api, isvc("iris"))
    exc = raises(
        api.patch_namespaced_custom_object_status,
        *KSERVE,
        NS,
        PLURAL,
        "iris",
        {"status": {"modelStatus": {"transitionStatus": "Exploded"}}},
    )
    cause = status_of(exc)["details"]["causes"][0]
    assert (
        cause["field"] == "status.modelStatus.transitionStatus"
        and cause["reason"] == "FieldValueNotSupported"
    )


def test_duplicate_json_fields_strict(bare: KubernetesEmulator) -> None:
    import urllib3

    raw = (
        '{"apiVersion":"serving.kserve.io/v1beta1","kind":"InferenceService","metadata":{"name":"d"},'
        '"spec":{"predictor":{"minReplicas":1,"minReplicas":2}}}'
    )
    resp = urllib3.PoolManager().request(
        "POST",
        f"{bare.url}/apis/serving.kserve.io/v1beta1/namespaces/default/inferenceservices?fieldValidation=Strict",
        body=raw.encode(),
        headers={"Authorization": f"Bearer {bare.token}", "Content-Type": "application/json"},
    )
    assert resp.status == 400
    assert 'duplicate field \\"spec.predictor.minReplicas\\"' in json.dumps(resp.json()["message"])
