"""Fixtures for the Seldon and KServe flavor tests: a cluster (emulated or real) and deployers.

By default every test gets its own Kubernetes API emulator on 127.0.0.1 (fresh port, store
and controller simulators), so tests are independent under `pytest -n auto`. With
`MODELDEPLOY_TEST_KUBECONFIG` set, the contract tests run against that cluster instead
(namespace `MODELDEPLOY_TEST_NAMESPACE`, default `modeldeploy-test`); tests that need the
emulator's controls (fault injection, request log, controller failures on demand) skip.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.k8s_emulator import KubernetesEmulator
from tests.k8s_emulator.fixtures import k8s_emulator  # noqa: F401 - re-exported fixture

REAL_KUBECONFIG = os.environ.get("MODELDEPLOY_TEST_KUBECONFIG")
REAL_NAMESPACE = os.environ.get("MODELDEPLOY_TEST_NAMESPACE", "modeldeploy-test")
FLAVORS = ("seldon", "kserve", "seldon2")
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}

# Model URIs the emulator's controllers accept or fail (like an unreachable bucket).
GOOD_URI = "s3://models/iris/{version}"
BAD_URI = "s3://unreachable-bucket/iris/{version}"
# Public models for a real cluster (override with MODELDEPLOY_TEST_<FLAVOR>_URI).
REAL_URIS = {
    "seldon": "gs://seldon-models/v1.17.0/sklearn/iris",
    "kserve": "gs://kfserving-examples/models/sklearn/1.0/model",
    "seldon2": "gs://seldon-models/scv2/samples/mlserver_1.3.5/iris-sklearn",
}

S3_CREDENTIALS = {
    "type": "s3",
    "access_key_id": "AKIA-TEST-ACCESS-KEY",
    "secret_access_key": "s3cr3t-value-that-must-never-leak",
    "endpoint": "http://minio.minio:9000",
    "region": "us-east-1",
}


@dataclass
class Cluster:
    """Where the tests deploy: an emulator (with its controls) or a real cluster."""

    emulator: KubernetesEmulator | None
    namespace: str
    timeout: float
    kubeconfig: dict[str, Any] | None = None
    kubeconfig_path: str | None = None
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    @property
    def pipeline(self) -> str:
        return f"pipeline-{self.run}"

    @property
    def real(self) -> bool:
        return self.emulator is None

    def settings(self, **extra: Any) -> dict[str, Any]:
        base: dict[str, Any] = {"namespace": self.namespace}
        if self.kubeconfig is not None:
            base["kubeconfig"] = self.kubeconfig
        if self.kubeconfig_path is not None:
            base["kubeconfig_path"] = self.kubeconfig_path
        if self.real and os.environ.get("MODELDEPLOY_TEST_STORAGE_CREDENTIALS"):
            base["storage_credentials"] = os.environ["MODELDEPLOY_TEST_STORAGE_CREDENTIALS"]
        elif not self.real:
            base["storage_credentials"] = S3_CREDENTIALS
        base.update(extra)
        return base

    def good_uri(self, flavor: str, version: int = 1) -> str:
        if self.real:
            return os.environ.get(f"MODELDEPLOY_TEST_{flavor.upper()}_URI", REAL_URIS[flavor])
        return GOOD_URI.format(version=version)

    def bad_uri(self, version: int = 1) -> str:
        if self.real:
            return "gs://modeldeploy-test-bucket-that-does-not-exist/model"
        return BAD_URI.format(version=version)

    def config(self, flavor: str, model: str = "iris", version: int = 1, **extra: Any) -> dict:
        """A config for `flavor`; pipeline and model names are unique to this test run."""
        return {
            "model_name": f"{model}-{self.run}",
            "model_uri": self.good_uri(flavor, version),
            "model_version": str(version),
            "model_type": "sklearn",
            "pipeline_name": self.pipeline,
            "step_name": "deploy",
            **extra,
        }

    def requires_emulator(self) -> KubernetesEmulator:
        if self.emulator is None:
            pytest.skip("needs the emulator's controls (faults, request log, failures)")
        return self.emulator

    def write_count(self) -> int:
        emu = self.requires_emulator()
        return sum(1 for r in emu.requests.entries if r.method in WRITE_METHODS)

    def managed(self, plural: str) -> list[dict[str, Any]]:
        """Objects of `plural` in the namespace labelled as managed by modeldeploy (model
        servers: only this test's, by their pipeline label)."""
        if self.emulator is not None:
            objects = self.emulator.list_objects(plural, self.namespace)
        else:  # pragma: no cover - real clusters only
            from kubernetes import client, config

            api = config.new_client_from_config(self.kubeconfig_path)
            if plural in ("secrets", "serviceaccounts"):
                fn = getattr(
                    client.CoreV1Api(api),
                    "list_namespaced_secret"
                    if plural == "secrets"
                    else "list_namespaced_service_account",
                )
                resp = fn(self.namespace, _preload_content=False)
                objects = json.loads(resp.data)["items"]
            else:
                group, version = {
                    "seldondeployments": ("machinelearning.seldon.io", "v1"),
                    "inferenceservices": ("serving.kserve.io", "v1beta1"),
                    "models": ("mlops.seldon.io", "v1alpha1"),
                    "experiments": ("mlops.seldon.io", "v1alpha1"),
                }[plural]
                objects = client.CustomObjectsApi(api).list_namespaced_custom_object(
                    group, version, self.namespace, plural
                )["items"]
        out = []
        for o in objects:
            labels = (o.get("metadata") or {}).get("labels") or {}
            if labels.get("app.kubernetes.io/managed-by") != "modeldeploy":
                continue
            if plural in PLURAL.values() and labels.get("modeldeploy.io/pipeline") != self.pipeline:
                continue
            out.append(o)
        return out


PLURAL = {"seldon": "seldondeployments", "kserve": "inferenceservices", "seldon2": "models"}


@pytest.fixture
def cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    if REAL_KUBECONFIG:  # pragma: no cover - real clusters only
        yield Cluster(
            emulator=None,
            namespace=REAL_NAMESPACE,
            timeout=float(os.environ.get("MODELDEPLOY_TEST_TIMEOUT", "600")),
            kubeconfig_path=REAL_KUBECONFIG,
        )
        return
    emu: KubernetesEmulator = request.getfixturevalue("k8s_emulator")
    # Seldon keeps a failing model `Creating` until the progress deadline (3 s here, 600 s
    # upstream): the flavor must find the cause on the pods before then.
    emu.seldon.fail_when_uri_startswith = "s3://unreachable-bucket"
    emu.kserve.fail_when_uri_startswith = "s3://unreachable-bucket"
    emu.seldon2.fail_when_uri_startswith = "s3://unreachable-bucket"
    # the Servers a Seldon Core 2 runtime installs (mlserver, triton)
    emu.seldon2.install_runtime("default")
    yield Cluster(emulator=emu, namespace="default", timeout=20.0, kubeconfig=emu.kubeconfig_dict())


@pytest.fixture(params=FLAVORS)
def flavor(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_deployer(cluster: Cluster) -> Iterator[Callable[..., Any]]:
    """Build deployers for the cluster; teardown deletes what this test created."""
    from modeldeploy.flavors import create_deployer

    made: list[Any] = []

    def make(flavor: str, **settings: Any) -> Any:
        deployer = create_deployer(flavor, cluster.settings(**settings))
        made.append(deployer)
        return deployer

    yield make
    if cluster.emulator is not None:
        cluster.emulator.faults.reset()
        emu = cluster.emulator
        emu.kserve.hold = emu.seldon.hold = emu.seldon2.hold = False
    for deployer in made:
        try:
            for server in deployer.find_model_server(pipeline_name=cluster.pipeline):
                server.delete(force=True)
        except Exception:  # best-effort cleanup (e.g. the test broke the cluster)
            pass
        deployer.close()


@pytest.fixture
def deployer(make_deployer: Callable[..., Any], flavor: str) -> Any:
    return make_deployer(flavor)


def controller_of(emu: KubernetesEmulator, flavor: str) -> Any:
    """The emulator's controller simulator behind `flavor`."""
    return {"seldon": emu.seldon, "kserve": emu.kserve, "seldon2": emu.seldon2}[flavor]
