"""Fault injection, the request log, pod logs and bulk loading."""

from __future__ import annotations

import json
import threading
import time

import urllib3
from kubernetes import watch
from kubernetes.client.exceptions import ApiException

from tests.k8s_emulator import KubernetesEmulator

from .conftest import KSERVE, NS, core_api, create_isvc, custom_api, isvc, raises, status_of

PLURAL = "inferenceservices"


def _pool(emu: KubernetesEmulator) -> tuple[urllib3.PoolManager, dict[str, str]]:
    return urllib3.PoolManager(retries=False), {"Authorization": f"Bearer {emu.token}"}


def test_error_rate_produces_status_errors(bare: KubernetesEmulator) -> None:
    bare.faults.error_rate = 0.3
    bare.faults.error_codes = (500, 503, 429)
    bare.faults.seed = 7
    http, headers = _pool(bare)
    url = f"{bare.url}/apis/serving.kserve.io/v1beta1/namespaces/default/inferenceservices"
    codes = []
    for _ in range(300):
        resp = http.request("GET", url, headers=headers)
        codes.append(resp.status)
        if resp.status != 200:
            body = resp.json()
            assert body["kind"] == "Status" and body["code"] == resp.status
            assert body["reason"] in ("InternalError", "ServiceUnavailable", "TooManyRequests")
            if resp.status == 429:
                assert resp.headers["Retry-After"] == "1"
    failures = sum(1 for c in codes if c != 200)
    assert 60 <= failures <= 120, failures  # 30 % of 300, loose bounds
    assert {c for c in codes if c != 200} == {500, 503, 429}
    assert bare.requests.count(verb="list", status=200) == 300 - failures

    # the same seed reproduces the same sequence
    bare.faults.seed = 7
    again = [http.request("GET", url, headers=headers).status for _ in range(300)]
    assert again == codes


def test_client_sees_injected_errors_and_watches_are_spared(bare: KubernetesEmulator) -> None:
    api = custom_api(bare)
    bare.faults.inject(503, times=1, method="GET")
    exc = raises(api.list_namespaced_custom_object, *KSERVE, NS, PLURAL)
    assert exc.status == 503 and status_of(exc)["reason"] == "ServiceUnavailable"
    api.list_namespaced_custom_object(*KSERVE, NS, PLURAL)  # one-shot: next one passes

    # 429 carries Retry-After, which urllib3 under the client honours by retrying once
    bare.requests.reset()
    bare.faults.inject(429, times=1)
    api.list_namespaced_custom_object(*KSERVE, NS, PLURAL)
    assert [r.status for r in bare.requests.entries] == [429, 200]

    bare.faults.error_rate = 1.0
    bare.faults.error_codes = (500,)
    # watches are excluded unless include_watch is set
    assert (
        list(
            watch.Watch().stream(
                api.list_namespaced_custom_object, *KSERVE, NS, PLURAL, timeout_seconds=1
            )
        )
        == []
    )
    bare.faults.include_watch = True
    try:
        list(
            watch.Watch().stream(
                api.list_namespaced_custom_object, *KSERVE, NS, PLURAL, timeout_seconds=1
            )
        )
        raise AssertionError("expected a 500")
    except ApiException as e:
        assert e.status == 500


def test_latency(bare: KubernetesEmulator) -> None:
    api = custom_api(bare)
    bare.faults.latency = 0.2
    start = time.monotonic()
    api.list_namespaced_custom_object(*KSERVE, NS, PLURAL)
    assert time.monotonic() - start >= 0.2
    assert bare.requests.entries[-1].duration >= 0.2


def test_request_log_counts_and_resets(bare: KubernetesEmulator) -> None:
    api = custom_api(bare)
    bare.requests.reset()
    create_isvc(api, isvc("a"))
    api.get_namespaced_custom_object(*KSERVE, NS, PLURAL, "a")
    api.list_namespaced_custom_object(*KSERVE, NS, PLURAL, label_selector="x=y")
    raises(api.get_namespaced_custom_object, *KSERVE, NS, PLURAL, "zzz")
    recs = bare.requests.entries
    assert [(r.method, r.verb, r.status) for r in recs] == [
        ("POST", "create", 201),
        ("GET", "get", 200),
        ("GET", "list", 200),
        ("GET", "get", 404),
    ]
    assert (
        recs[2].query["labelSelector"] == "x=y"
        and recs[1].resource == PLURAL
        and recs[1].name == "a"
    )
    assert bare.requests.by_verb()["get"] == 2
    bare.requests.reset()
    assert len(bare.requests) == 0


def test_pod_logs_tail_container_and_follow(emu: KubernetesEmulator) -> None:
    api, core = custom_api(emu), core_api(emu)
    create_isvc(api, isvc("iris"))
    assert emu.wait_for(
        lambda: any(p["status"].get("phase") == "Running" for p in emu.list_objects("Pod", NS)), 5
    )
    pod = emu.list_objects("Pod", NS)[0]["metadata"]["name"]
    for i in range(5):
        emu.kserve.append_log("iris", f"line {i}")
    text = core.read_namespaced_pod_log(pod, NS, container="kserve-container", tail_lines=2)
    assert text == "line 3\nline 4\n"
    exc = raises(core.read_namespaced_pod_log, pod, NS)
    assert exc.status == 400 and "a container name must be specified" in status_of(exc)["message"]
    exc = raises(core.read_namespaced_pod_log, pod, NS, container="nope")
    assert exc.status == 400
    stamped = core.read_namespaced_pod_log(
        pod, NS, container="kserve-container", tail_lines=1, timestamps=True
    )
    assert stamped.endswith("Z line 4\n")

    got: list[str] = []
    first = threading.Event()

    def follow() -> None:
        w = watch.Watch()
        for line in w.stream(
            core.read_namespaced_pod_log, pod, NS, container="kserve-container", tail_lines=1
        ):
            got.append(line)
            first.set()
            if line == "late 2":
                w.stop()

    t = threading.Thread(target=follow)
    t.start()
    assert first.wait(5)
    emu.append_pod_log(pod, "late 1", container="kserve-container")
    emu.kserve.append_log("iris", "late 2")
    t.join(5)
    assert not t.is_alive()
    assert got == ["line 4", "late 1", "late 2"]


def test_follow_ends_when_pod_is_deleted(bare: KubernetesEmulator) -> None:
    core = core_api(bare)
    core.create_namespaced_pod(
        NS,
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": "i"}]},
        },
    )
    bare.append_pod_log("p", "hello")
    http, headers = _pool(bare)
    resp = http.request(
        "GET",
        f"{bare.url}/api/v1/namespaces/default/pods/p/log?follow=true",
        headers=headers,
        preload_content=False,
    )
    assert resp.status == 200
    threading.Timer(0.2, lambda: core.delete_namespaced_pod("p", NS)).start()
    assert resp.read() == b"hello\n"


def test_bulk_load_and_paged_selector_list(bare: KubernetesEmulator) -> None:
    objs = [isvc(f"m-{i:05d}", labels={"managed": "yes" if i % 2 else "no"}) for i in range(10000)]
    start = time.monotonic()
    assert bare.bulk_load("InferenceService", objs) == 10000
    load_time = time.monotonic() - start
    api = custom_api(bare)
    start = time.monotonic()
    seen, pages, token = 0, 0, None
    while True:
        page = api.list_namespaced_custom_object(
            *KSERVE, NS, PLURAL, label_selector="managed=yes", limit=500, _continue=token
        )
        seen += len(page["items"])
        pages += 1
        token = page["metadata"].get("continue")
        if not token:
            break
    list_time = time.monotonic() - start
    assert (seen, pages) == (5000, 10)
    assert load_time < 15 and list_time < 15, (load_time, list_time)
    assert (
        json.loads(json.dumps(bare.get("InferenceService", "m-00001")))["metadata"]["generation"]
        == 1
    )
