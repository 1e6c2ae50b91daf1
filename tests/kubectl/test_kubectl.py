"""The real kubectl against the emulator (issue 9, item 5): TLS with the emulator's own CA,
discovery, server-side printing, OpenAPI v3 (apply validation, explain), events, scale and
watches, with KServe's and Seldon's own samples.

kubectl is found on PATH (/usr/bin/kubectl on these machines, possibly a gcloud dispatcher);
without it the module skips and says so.
"""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.k8s_emulator import KubernetesEmulator

DATA = Path(__file__).parent / "data"
KUBECTL = shutil.which("kubectl")


def _kubectl_works() -> str | None:
    if KUBECTL is None:
        return "kubectl is not on PATH (install kubectl to run the kubectl suite)"
    try:
        out = subprocess.run(
            [KUBECTL, "version", "--client", "-o", "json"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"kubectl at {KUBECTL} does not run: {exc}"
    if out.returncode != 0:
        return f"kubectl at {KUBECTL} does not run: {out.stderr.strip()[:200]}"
    return None


_WHY_NOT = _kubectl_works()
pytestmark = pytest.mark.skipif(_WHY_NOT is not None, reason=_WHY_NOT or "")


class Kubectl:
    def __init__(self, kubeconfig: Path, cache: Path) -> None:
        self.base = [str(KUBECTL), f"--kubeconfig={kubeconfig}", f"--cache-dir={cache}"]

    def __call__(self, *args: str, stdin: str | None = None, check: bool = True) -> str:
        proc = subprocess.run(
            [*self.base, *args], input=stdin, capture_output=True, text=True, timeout=60
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {proc.stderr}")
        return proc.stdout if check else proc.stdout + proc.stderr

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "-o", "json"))


@pytest.fixture(scope="module")
def emu() -> Iterator[KubernetesEmulator]:
    with KubernetesEmulator(namespaces=["default"], tls=True) as emu:
        emu.kserve.delay = emu.seldon.delay = 0.02
        yield emu
    assert not emu.internal_errors, "\n".join(emu.internal_errors)


@pytest.fixture(scope="module")
def kubectl(emu: KubernetesEmulator, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    folder = tmp_path_factory.mktemp("kubectl")
    return Kubectl(emu.write_kubeconfig(folder / "kubeconfig"), folder / "cache")


def _isvc(name: str) -> str:
    return json.dumps(
        {
            "apiVersion": "serving.kserve.io/v1beta1",
            "kind": "InferenceService",
            "metadata": {"name": name},
            "spec": {
                "predictor": {
                    "model": {"modelFormat": {"name": "sklearn"}, "storageUri": "s3://m/iris"}
                }
            },
        }
    )


def test_the_token_goes_over_tls_and_discovery_lists_the_platform_resources(
    kubectl: Kubectl, emu: KubernetesEmulator
) -> None:
    assert emu.url.startswith("https://127.0.0.1:")
    assert "Server Version: v1.33.0-emulator" in kubectl("version")
    out = kubectl("api-resources")
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:]}
    assert rows["inferenceservices"][1:3] == ["isvc", "serving.kserve.io/v1beta1"]
    assert rows["seldondeployments"][1:3] == ["sdep", "machinelearning.seldon.io/v1"]
    assert "events" in rows and "deployments" in rows
    versions = kubectl("api-versions").split()
    for v in ("v1alpha2", "v1alpha3", "v1"):
        assert f"machinelearning.seldon.io/{v}" in versions


def test_kserve_sample_applies_becomes_ready_and_prints_its_columns(
    kubectl: Kubectl, emu: KubernetesEmulator
) -> None:
    out = kubectl("apply", "-f", str(DATA / "sklearn-iris.yaml"))
    assert out.strip() == "inferenceservice.serving.kserve.io/sklearn-iris created"

    waited = kubectl("wait", "--for=condition=Ready", "isvc/sklearn-iris", "--timeout=30s")
    assert "condition met" in waited

    table = kubectl("get", "isvc", "sklearn-iris").splitlines()
    assert table[0].split() == [
        "NAME",
        "URL",
        "READY",
        "PREV",
        "LATEST",
        "PREVROLLEDOUTREVISION",
        "LATESTREADYREVISION",
        "AGE",
    ]
    cells = table[1].split()
    assert cells[:3] == ["sklearn-iris", "http://sklearn-iris.default.example.com", "True"]
    assert "sklearn-iris-predictor-00001" in cells
    # the webhook's defaults and the runtime the controller chose
    obj = kubectl.json("get", "isvc", "sklearn-iris")
    assert obj["status"]["clusterServingRuntimeName"] == "kserve-sklearnserver"
    assert obj["status"]["deploymentMode"] == "Knative"
    # a second apply of the same file changes nothing
    assert "unchanged" in kubectl("apply", "-f", str(DATA / "sklearn-iris.yaml"))


def test_apply_validates_on_the_server_from_the_openapi_documents(kubectl: Kubectl) -> None:
    bad = json.loads(_isvc("typo"))
    bad["spec"]["predictor"]["model"]["storageUrl"] = "s3://m/iris"
    out = kubectl("apply", "-f", "-", stdin=json.dumps(bad), check=False)
    assert 'unknown field "spec.predictor.model.storageUrl"' in out
    assert "typo" not in kubectl("get", "isvc", "-o", "name")


def test_seldon_v1alpha2_sample_applies_is_served_as_v1_and_scales(
    kubectl: Kubectl, emu: KubernetesEmulator
) -> None:
    out = kubectl("apply", "-f", str(DATA / "seldon-iris-v1alpha2.yaml"))
    assert out.strip() == "seldondeployment.machinelearning.seldon.io/sklearn created"
    assert "condition met" in kubectl(
        "wait", "--for=condition=Ready", "sdep/sklearn", "--timeout=30s"
    )
    v1 = kubectl.json("get", "seldondeployments.v1.machinelearning.seldon.io", "sklearn")
    assert v1["apiVersion"] == "machinelearning.seldon.io/v1"
    assert v1["status"]["state"] == "Available"
    # the operator's Istio VirtualService, with Istio's own columns
    table = kubectl("get", "virtualservices", "sklearn").splitlines()
    assert table[0].split() == ["NAME", "GATEWAYS", "HOSTS", "AGE"]
    assert table[1].split()[:3] == ["sklearn", '["seldon-gateway"]', '["*"]']
    vs = kubectl.json("get", "vs", "sklearn")
    assert vs["apiVersion"] == "networking.istio.io/v1alpha3"

    assert "scaled" in kubectl("scale", "sdep/sklearn", "--replicas=3")
    obj = emu.get("seldondeployments", "sklearn")
    assert obj is not None and obj["spec"]["replicas"] == 3
    # the validating webhook: a lone predictor's traffic is 0 or 100
    out = kubectl(
        "patch",
        "sdep",
        "sklearn",
        "--type=json",
        "-p",
        '[{"op":"add","path":"/spec/predictors/0/traffic","value":50}]',
        check=False,
    )
    assert 'admission webhook "v1.vseldondeployment.kb.io" denied the request' in out


def test_describe_shows_the_controllers_events(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", stdin=_isvc("described"))
    kubectl("wait", "--for=condition=Ready", "isvc/described", "--timeout=30s")
    out = kubectl("describe", "isvc", "described")
    events = out[out.index("Events:") :]
    assert "InferenceServiceReady" in events
    assert "InferenceService [described] is Ready" in events
    listed = kubectl(
        "get", "events", "--field-selector", "involvedObject.name=described", "-o", "json"
    )
    assert {e["reason"] for e in json.loads(listed)["items"]} == {"InferenceServiceReady"}


def test_label_and_annotate_are_metadata_writes_that_roll_a_new_revision(
    kubectl: Kubectl, emu: KubernetesEmulator
) -> None:
    kubectl("apply", "-f", "-", stdin=_isvc("labelled"))
    kubectl("wait", "--for=condition=Ready", "isvc/labelled", "--timeout=30s")
    assert "labeled" in kubectl("label", "isvc", "labelled", "team=ml")
    assert "annotated" in kubectl("annotate", "isvc", "labelled", "note=hello")
    obj = kubectl.json("get", "isvc", "labelled")
    assert obj["metadata"]["labels"]["team"] == "ml"
    assert obj["metadata"]["generation"] == 1  # metadata-only: the ISVC generation stays
    # ...but KServe copies labels and annotations into the revision template
    assert emu.wait_for(
        lambda: (
            ((emu.get("inferenceservices", "labelled") or {}).get("status") or {})
            .get("components", {})
            .get("predictor", {})
            .get("latestReadyRevision")
            == "labelled-predictor-00003"
        ),
        timeout=20,
    )


def test_explain_reads_the_crd_schema(kubectl: Kubectl) -> None:
    out = kubectl("explain", "isvc.spec.predictor.model")
    assert "storageUri" in out and "modelFormat" in out
    assert "GROUP:      serving.kserve.io" in out
    out = kubectl("explain", "sdep.spec.predictors")
    assert "componentSpecs" in out and "traffic" in out


def test_get_watch_streams_changes(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", stdin=_isvc("watched"))
    proc = subprocess.Popen(
        [*kubectl.base, "get", "isvc", "watched", "-w", "--output-watch-events"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(
        target=lambda: [lines.put(line) for line in proc.stdout or []], daemon=True
    ).start()
    try:
        seen = [lines.get(timeout=30), lines.get(timeout=30)]
        assert seen[0].split()[:2] == ["EVENT", "NAME"]
        assert seen[1].split()[:2] == ["ADDED", "watched"]
        kubectl("annotate", "isvc", "watched", "note=rolled")  # a new revision rolls out
        while not any("watched-predictor-00002" in line for line in seen):
            seen.append(lines.get(timeout=30))
        assert seen[-1].split()[:2] == ["MODIFIED", "watched"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_delete_removes_the_object_and_its_pods(kubectl: Kubectl, emu: KubernetesEmulator) -> None:
    kubectl("apply", "-f", "-", stdin=_isvc("doomed"))
    kubectl("wait", "--for=condition=Ready", "isvc/doomed", "--timeout=30s")
    out = kubectl("delete", "isvc", "doomed", "--wait=true", "--timeout=30s")
    assert out.strip() == 'inferenceservice.serving.kserve.io "doomed" deleted'
    out = kubectl("get", "isvc", "doomed", check=False)
    assert 'inferenceservices.serving.kserve.io "doomed" not found' in out
    pods = kubectl("get", "pods", "-l", "serving.kserve.io/inferenceservice=doomed", "-o", "name")
    assert pods.strip() == ""


def test_the_command_serves_until_interrupted(tmp_path: Path) -> None:
    """``python -m tests.k8s_emulator --kubeconfig PATH`` for people and tools: a cluster
    with Seldon Core 2's Servers installed, as the contract tests expect of a real one."""
    import signal
    import sys

    config = tmp_path / "kubeconfig"
    flags = ["--fail-uri", "gs://no-such-bucket", "--server-replicas", "2"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.k8s_emulator", "--kubeconfig", str(config), *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parents[2],
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("Kubernetes API emulator listening on https://127.0.0.1:")
        kubectl = Kubectl(config, tmp_path / "cache")
        assert kubectl("get", "namespaces", "-o", "name").split() == ["namespace/default"]
        servers = kubectl("get", "servers", "-o", "jsonpath={.items[*].spec.replicas}")
        assert kubectl("get", "servers", "-o", "name").split() == [
            "server.mlops.seldon.io/mlserver",
            "server.mlops.seldon.io/triton",
        ]
        assert servers.split() == ["2", "2"]
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
