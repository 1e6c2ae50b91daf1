"""Fixtures for the emulator's own tests: every test talks to it through the real client."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.k8s_emulator import KubernetesEmulator
from tests.k8s_emulator.fixtures import k8s_emulator  # noqa: F401 - re-exported fixture

KSERVE = ("serving.kserve.io", "v1beta1")
SELDON = ("machinelearning.seldon.io", "v1")
NS = "default"


@pytest.fixture
def bare() -> Iterator[KubernetesEmulator]:
    """An emulator without controller simulators, for pure API-server semantics."""
    with KubernetesEmulator(namespaces=["default", "other"], controllers=False) as emu:
        yield emu
    assert not emu.internal_errors, emu.internal_errors


@pytest.fixture
def emu(k8s_emulator: KubernetesEmulator) -> KubernetesEmulator:  # noqa: F811
    return k8s_emulator


def custom_api(e: KubernetesEmulator) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(e.api_client())


def core_api(e: KubernetesEmulator) -> client.CoreV1Api:
    return client.CoreV1Api(e.api_client())


def isvc(
    name: str, uri: str = "s3://models/iris", labels: dict[str, str] | None = None, **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"predictor": {"model": {"modelFormat": {"name": "sklearn"}, "storageUri": uri}}},
    }
    body.update(extra)
    return body


def sdep(
    name: str, uri: str = "gs://models/iris", labels: dict[str, str] | None = None
) -> dict[str, Any]:
    return {
        "apiVersion": "machinelearning.seldon.io/v1",
        "kind": "SeldonDeployment",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {
            "predictors": [
                {
                    "name": "default",
                    "replicas": 1,
                    "graph": {
                        "name": "classifier",
                        "implementation": "SKLEARN_SERVER",
                        "modelUri": uri,
                    },
                }
            ]
        },
    }


def create_isvc(api: client.CustomObjectsApi, body: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return api.create_namespaced_custom_object(*KSERVE, NS, "inferenceservices", body, **kw)


def raises(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> ApiException:
    """Call ``fn`` and return the ApiException it must raise (with ``.status`` and ``.body``)."""
    with pytest.raises(ApiException) as info:
        fn(*args, **kwargs)
    return info.value


def status_of(exc: ApiException) -> dict[str, Any]:
    import json

    body = json.loads(exc.body)
    assert body["kind"] == "Status" and body["apiVersion"] == "v1" and body["status"] == "Failure"
    assert body["code"] == exc.status
    return body
