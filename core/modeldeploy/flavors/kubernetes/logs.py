"""Log lines of the pods that serve a model, found by label selector."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Any

from modeldeploy.flavors.kubernetes.client import KubeClient
from modeldeploy.flavors.kubernetes.errors import translate


def list_pods(kube: KubeClient, selector: str) -> list[dict[str, Any]]:
    items = kube.list_json(kube.core.list_namespaced_pod, selector, "pods")
    return sorted(items, key=lambda p: (p.get("metadata") or {}).get("creationTimestamp") or "")


def _container(pod: dict[str, Any], wanted: str | None) -> str | None:
    containers = (pod.get("spec") or {}).get("containers") or []
    names: list[str | None] = [c.get("name") for c in containers]
    if wanted and wanted in names:
        return wanted
    if len(names) <= 1:
        return None
    return names[0]


def read(
    kube: KubeClient,
    selector: str,
    container: str | None = None,
    follow: bool = False,
    tail: int | None = None,
) -> Iterator[str]:
    """Lines of every matching pod, oldest pod first; `follow` streams the newest pod."""
    pods = list_pods(kube, selector)
    if not pods:
        return
    several = len(pods) > 1 and not follow
    chosen = pods[-1:] if follow else pods
    collected: deque[str] | None = deque(maxlen=tail) if tail is not None and several else None
    for pod in chosen:
        name = pod["metadata"]["name"]
        kwargs: dict[str, Any] = {"_preload_content": False}
        target = _container(pod, container)
        if target:
            kwargs["container"] = target
        if tail is not None:
            kwargs["tail_lines"] = tail
        if follow:
            kwargs["follow"] = True  # no read timeout: a quiet server is not a failure
        else:
            kwargs["_request_timeout"] = kube.timeout
        try:
            resp = kube.retry.call(
                kube.core.read_namespaced_pod_log, name, kube.namespace, **kwargs
            )
        except Exception as exc:
            raise translate(exc, f"reading the log of pod {kube.namespace}/{name}") from None
        if follow:
            yield from _stream_lines(resp)
            return
        text = resp.data.decode("utf-8", errors="replace")
        for line in text.splitlines():
            out = f"[{name}] {line}" if several else line
            if collected is not None:
                collected.append(out)
            else:
                yield out
    if collected is not None:
        yield from collected


def _stream_lines(resp: Any) -> Iterator[str]:
    buffer = b""
    try:
        for chunk in resp.stream(amt=None, decode_content=True):
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                yield line.decode("utf-8", errors="replace")
        if buffer:
            yield buffer.decode("utf-8", errors="replace")
    finally:
        resp.release_conn()
