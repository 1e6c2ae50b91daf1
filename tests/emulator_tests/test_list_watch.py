"""Selectors, pagination, watches, bookmarks and 410 Expired, via the real client."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
import urllib3
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from tests.k8s_emulator import KubernetesEmulator

from .conftest import KSERVE, NS, core_api, create_isvc, custom_api, isvc, raises, status_of

PLURAL = "inferenceservices"


def _names(result: dict[str, Any]) -> list[str]:
    return [o["metadata"]["name"] for o in result["items"]]


@pytest.fixture
def labelled(bare: KubernetesEmulator) -> client.CustomObjectsApi:
    api = custom_api(bare)
    for name, labels in [
        ("a", {"env": "prod", "tier": "1"}),
        ("b", {"env": "dev", "tier": "2"}),
        ("c", {"env": "staging"}),
        ("d", {}),
    ]:
        create_isvc(api, isvc(name, labels=labels))
    return api


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("env=prod", ["a"]),
        ("env==prod", ["a"]),
        ("env!=prod", ["b", "c", "d"]),
        ("env in (prod, dev)", ["a", "b"]),
        ("env notin (prod,dev)", ["c", "d"]),
        ("tier", ["a", "b"]),
        ("!tier", ["c", "d"]),
        ("env,!tier", ["c"]),
        ("env in (prod,dev),tier=2", ["b"]),
        ("tier>1", ["b"]),
    ],
)
def test_label_selector_operators(
    labelled: client.CustomObjectsApi, selector: str, expected: list[str]
) -> None:
    got = labelled.list_namespaced_custom_object(*KSERVE, NS, PLURAL, label_selector=selector)
    assert _names(got) == expected


def test_bad_selectors_are_400(labelled: client.CustomObjectsApi) -> None:
    exc = raises(
        labelled.list_namespaced_custom_object, *KSERVE, NS, PLURAL, label_selector="env in (prod"
    )
    assert exc.status == 400 and status_of(exc)["reason"] == "BadRequest"
    exc = raises(
        labelled.list_namespaced_custom_object, *KSERVE, NS, PLURAL, field_selector="spec.x=1"
    )
    assert exc.status == 400
    assert '"spec.x" is not a known field selector' in status_of(exc)["message"]


def test_field_selector_and_cluster_list(
    labelled: client.CustomObjectsApi, bare: KubernetesEmulator
) -> None:
    labelled.create_namespaced_custom_object(*KSERVE, "other", PLURAL, isvc("a"))
    got = labelled.list_namespaced_custom_object(
        *KSERVE, NS, PLURAL, field_selector="metadata.name=b"
    )
    assert _names(got) == ["b"]
    got = labelled.list_namespaced_custom_object(
        *KSERVE, NS, PLURAL, field_selector="metadata.name!=b"
    )
    assert _names(got) == ["a", "c", "d"]
    everywhere = labelled.list_cluster_custom_object(
        *KSERVE, PLURAL, field_selector="metadata.name=a"
    )
    assert [(o["metadata"]["namespace"], o["metadata"]["name"]) for o in everywhere["items"]] == [
        ("default", "a"),
        ("other", "a"),
    ]
    got = labelled.list_cluster_custom_object(
        *KSERVE, PLURAL, field_selector="metadata.namespace=other"
    )
    assert _names(got) == ["a"]


def test_pagination_is_a_consistent_snapshot(bare: KubernetesEmulator) -> None:
    objs = [isvc(f"m-{i:04d}", labels={"even": str(i % 2 == 0).lower()}) for i in range(300)]
    bare.bulk_load("InferenceService", objs)
    api = custom_api(bare)
    first = api.list_namespaced_custom_object(*KSERVE, NS, PLURAL, limit=50)
    assert len(first["items"]) == 50 and first["metadata"]["remainingItemCount"] == 250
    token = first["metadata"]["continue"]
    list_rv = first["metadata"]["resourceVersion"]
    # writes after the first page must not show up in later pages (the list is pinned)
    create_isvc(api, isvc("m-9999"))
    api.delete_namespaced_custom_object(*KSERVE, NS, PLURAL, "m-0299")
    names = _names(first)
    pages = 1
    while token:
        page = api.list_namespaced_custom_object(*KSERVE, NS, PLURAL, limit=50, _continue=token)
        assert page["metadata"]["resourceVersion"] == list_rv
        names += _names(page)
        token = page["metadata"].get("continue")
        pages += 1
    assert pages == 6
    assert names == sorted(names) == [f"m-{i:04d}" for i in range(300)]

    # with a selector pages hold up to `limit` matches and no remainingItemCount
    sel = api.list_namespaced_custom_object(
        *KSERVE, NS, PLURAL, limit=40, label_selector="even=true"
    )
    assert len(sel["items"]) == 40 and "remainingItemCount" not in sel["metadata"]
    assert all(o["metadata"]["labels"]["even"] == "true" for o in sel["items"])


def test_continue_token_expires_after_compaction(bare: KubernetesEmulator) -> None:
    bare.bulk_load("InferenceService", [isvc(f"m-{i:02d}") for i in range(10)])
    api = custom_api(bare)
    first = api.list_namespaced_custom_object(*KSERVE, NS, PLURAL, limit=3)
    create_isvc(api, isvc("later"))
    bare.compact()
    exc = raises(
        api.list_namespaced_custom_object,
        *KSERVE,
        NS,
        PLURAL,
        limit=3,
        _continue=first["metadata"]["continue"],
    )
    body = status_of(exc)
    assert exc.status == 410 and body["reason"] == "Expired"
    assert body["metadata"]["continue"], "an inconsistent-continue token is offered"
    # an Exact list at a compacted revision is 410 as well; NotOlderThan is served
    exc = raises(
        api.list_namespaced_custom_object,
        *KSERVE,
        NS,
        PLURAL,
        resource_version=first["metadata"]["resourceVersion"],
        resource_version_match="Exact",
    )
    assert exc.status == 410
    ok = api.list_namespaced_custom_object(
        *KSERVE, NS, PLURAL, resource_version=first["metadata"]["resourceVersion"]
    )
    assert len(ok["items"]) == 11
    exc = raises(api.list_namespaced_custom_object, *KSERVE, NS, PLURAL, _continue="garbage!")
    assert exc.status == 400


def test_watch_from_resource_version(bare: KubernetesEmulator) -> None:
    api = custom_api(bare)
    create_isvc(api, isvc("before", labels={"w": "yes"}))
    listed = api.list_namespaced_custom_object(*KSERVE, NS, PLURAL, label_selector="w=yes")
    rv = listed["metadata"]["resourceVersion"]
    events: list[tuple[str, str, str]] = []
    started = threading.Event()

    def writer() -> None:
        started.wait(5)
        create_isvc(api, isvc("one", labels={"w": "yes"}))
        create_isvc(api, isvc("ignored", labels={"w": "no"}))
        api.patch_namespaced_custom_object(
            *KSERVE, NS, PLURAL, "one", {"spec": {"predictor": {"minReplicas": 1}}}
        )
        api.patch_namespaced_custom_object(
            *KSERVE, NS, PLURAL, "before", {"metadata": {"labels": {"w": "no"}}}
        )
        api.delete_namespaced_custom_object(*KSERVE, NS, PLURAL, "one")

    t = threading.Thread(target=writer)
    t.start()
    w = watch.Watch()
    stream = w.stream(
        api.list_namespaced_custom_object,
        *KSERVE,
        NS,
        PLURAL,
        label_selector="w=yes",
        resource_version=rv,
        timeout_seconds=10,
    )
    started.set()
    for ev in stream:
        events.append(
            (
                ev["type"],
                ev["object"]["metadata"]["name"],
                ev["object"]["metadata"]["resourceVersion"],
            )
        )
        if len(events) == 4:
            w.stop()
    t.join()
    assert [e[:2] for e in events] == [
        ("ADDED", "one"),
        ("MODIFIED", "one"),
        ("DELETED", "before"),
        ("DELETED", "one"),
    ]
    rvs = [int(e[2]) for e in events]
    assert rvs == sorted(rvs) and rvs[0] > int(rv)
    # "before" stopped matching: DELETED carries its previous content at the event's revision
    assert bare.get("InferenceService", "before")["metadata"]["labels"] == {"w": "no"}


def test_watch_without_resource_version_sends_current_state(bare: KubernetesEmulator) -> None:
    api = custom_api(bare)
    for n in ("x", "y"):
        create_isvc(api, isvc(n))
    w = watch.Watch()
    seen = [
        (e["type"], e["object"]["metadata"]["name"])
        for e in w.stream(api.list_namespaced_custom_object, *KSERVE, NS, PLURAL, timeout_seconds=1)
    ]
    assert seen == [("ADDED", "x"), ("ADDED", "y")]


def test_watch_timeout_ends_stream(bare: KubernetesEmulator) -> None:
    api = custom_api(bare)
    rv = api.list_namespaced_custom_object(*KSERVE, NS, PLURAL)["metadata"]["resourceVersion"]
    start = time.monotonic()
    events = list(
        watch.Watch().stream(
            api.list_namespaced_custom_object,
            *KSERVE,
            NS,
            PLURAL,
            resource_version=rv,
            timeout_seconds=1,
        )
    )
    elapsed = time.monotonic() - start
    assert events == []
    assert 0.9 <= elapsed < 3.0


def test_watch_410_after_compaction(bare: KubernetesEmulator) -> None:
    api = custom_api(bare)
    old_rv = create_isvc(api, isvc("a"))["metadata"]["resourceVersion"]
    for i in range(5):
        create_isvc(api, isvc(f"n{i}"))
    bare.compact(keep_last=2)
    # the client turns the ERROR event into ApiException(410)
    with pytest.raises(ApiException) as info:
        list(
            watch.Watch().stream(
                api.list_namespaced_custom_object,
                *KSERVE,
                NS,
                PLURAL,
                resource_version=old_rv,
                timeout_seconds=2,
            )
        )
    assert info.value.status == 410 and "Expired" in info.value.reason
    # on the wire: HTTP 200, then one ERROR event whose object is a Status
    resp = api.list_namespaced_custom_object(
        *KSERVE,
        NS,
        PLURAL,
        watch=True,
        resource_version=old_rv,
        timeout_seconds=2,
        _preload_content=False,
    )
    assert resp.status == 200
    lines = [json.loads(x) for x in resp.data.decode().splitlines() if x]
    assert len(lines) == 1 and lines[0]["type"] == "ERROR"
    obj = lines[0]["object"]
    assert (obj["kind"], obj["status"], obj["reason"], obj["code"]) == (
        "Status",
        "Failure",
        "Expired",
        410,
    )
    assert obj["message"].startswith(f"too old resource version: {old_rv} (")
    # a watch from a retained revision still works
    current = api.list_namespaced_custom_object(*KSERVE, NS, PLURAL)["metadata"]["resourceVersion"]
    assert (
        list(
            watch.Watch().stream(
                api.list_namespaced_custom_object,
                *KSERVE,
                NS,
                PLURAL,
                resource_version=current,
                timeout_seconds=1,
            )
        )
        == []
    )


def test_bookmarks_and_initial_events_end(bare: KubernetesEmulator) -> None:
    api = custom_api(bare)
    create_isvc(api, isvc("a"))
    bare.bookmark_interval = 0.2
    rv = api.list_namespaced_custom_object(*KSERVE, NS, PLURAL)["metadata"]["resourceVersion"]
    w = watch.Watch()
    for ev in w.stream(
        api.list_namespaced_custom_object,
        *KSERVE,
        NS,
        PLURAL,
        resource_version=rv,
        allow_watch_bookmarks=True,
        timeout_seconds=5,
    ):
        assert ev["type"] == "BOOKMARK"
        assert ev["raw_object"]["metadata"]["resourceVersion"] == rv
        assert ev["raw_object"]["kind"] == "InferenceService"
        w.stop()
    assert w.resource_version == rv

    # streaming list (WatchList): the client here has no parameter for it, so go raw
    resp = urllib3.PoolManager().request(
        "GET",
        f"{bare.url}/apis/serving.kserve.io/v1beta1/namespaces/default/inferenceservices?watch=1"
        "&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=1",
        headers={"Authorization": f"Bearer {bare.token}"},
    )
    events = [json.loads(x) for x in resp.data.decode().splitlines() if x]
    assert [e["type"] for e in events[:2]] == ["ADDED", "BOOKMARK"]
    assert events[1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


def test_dropped_watch_is_cut_mid_stream(bare: KubernetesEmulator) -> None:
    api = custom_api(bare)
    for n in ("a", "b", "c", "d"):
        create_isvc(api, isvc(n))
    bare.faults.drop_watch_after_events = 2
    got: list[str] = []
    with pytest.raises((urllib3.exceptions.ProtocolError, urllib3.exceptions.HTTPError)):
        for ev in watch.Watch().stream(
            api.list_namespaced_custom_object,
            *KSERVE,
            NS,
            PLURAL,
            resource_version="0",
            timeout_seconds=5,
        ):
            got.append(ev["object"]["metadata"]["name"])
    assert got == ["a", "b"]

    bare.faults.drop_watch_after_events = None
    bare.faults.drop_watch_after_seconds = 0.3
    start = time.monotonic()
    with pytest.raises((urllib3.exceptions.ProtocolError, urllib3.exceptions.HTTPError)):
        rv = api.list_namespaced_custom_object(*KSERVE, NS, PLURAL)["metadata"]["resourceVersion"]
        list(
            watch.Watch().stream(
                api.list_namespaced_custom_object,
                *KSERVE,
                NS,
                PLURAL,
                resource_version=rv,
                timeout_seconds=5,
            )
        )
    assert time.monotonic() - start < 2.0


def test_watch_pods_with_field_selector(bare: KubernetesEmulator) -> None:
    core = core_api(bare)
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p1"},
        "spec": {"containers": [{"name": "c", "image": "i"}]},
    }
    rv = core.list_namespaced_pod(NS).metadata.resource_version
    core.create_namespaced_pod(NS, pod)
    core.create_namespaced_pod(NS, dict(pod, metadata={"name": "p2"}))
    w = watch.Watch()
    names = []
    for ev in w.stream(
        core.list_namespaced_pod,
        NS,
        field_selector="metadata.name=p2",
        resource_version=rv,
        timeout_seconds=3,
    ):
        names.append((ev["type"], ev["object"].metadata.name))
        w.stop()
    assert names == [("ADDED", "p2")]


def test_concurrent_watches_all_see_every_event(bare: KubernetesEmulator) -> None:
    api = custom_api(bare)
    rv = api.list_namespaced_custom_object(*KSERVE, NS, PLURAL)["metadata"]["resourceVersion"]
    results: dict[int, list[str]] = {}
    ready = threading.Barrier(6)

    def watcher(idx: int) -> None:
        w = watch.Watch()
        got: list[str] = []
        stream = w.stream(
            custom_api(bare).list_namespaced_custom_object,
            *KSERVE,
            NS,
            PLURAL,
            resource_version=rv,
            timeout_seconds=10,
        )
        ready.wait(5)
        for ev in stream:
            got.append(ev["object"]["metadata"]["name"])
            if len(got) == 20:
                w.stop()
        results[idx] = got

    threads = [threading.Thread(target=watcher, args=(i,)) for i in range(5)]
    for t in threads:
        t.start()
    ready.wait(5)
    for i in range(20):
        create_isvc(api, isvc(f"n{i:02d}"))
    for t in threads:
        t.join(10)
    assert results == {i: [f"n{j:02d}" for j in range(20)] for i in range(5)}


def test_history_limit_is_the_compaction_window(bare: KubernetesEmulator) -> None:
    api = custom_api(bare)
    bare.history_limit = 3
    rv = create_isvc(api, isvc("a"))["metadata"]["resourceVersion"]
    for i in range(10):
        create_isvc(api, isvc(f"b{i}"))
    with pytest.raises(ApiException) as info:
        list(
            watch.Watch().stream(
                api.list_namespaced_custom_object,
                *KSERVE,
                NS,
                PLURAL,
                resource_version=rv,
                timeout_seconds=1,
            )
        )
    assert info.value.status == 410


def test_namespace_deletion_removes_content(bare: KubernetesEmulator) -> None:
    core, api = core_api(bare), custom_api(bare)
    api.create_namespaced_custom_object(*KSERVE, "other", PLURAL, isvc("a"))
    ns = core.delete_namespace("other")
    assert ns["status"]["phase"] == "Terminating"
    assert bare.wait_for(lambda: bare.get("Namespace", "other", None) is None, 5)
    assert bare.get("InferenceService", "a", "other") is None
    exc = raises(api.create_namespaced_custom_object, *KSERVE, "other", PLURAL, isvc("b"))
    assert exc.status == 404
