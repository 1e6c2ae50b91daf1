"""Why a model's pods cannot start, read from their container states.

Controllers often report less than the pods show: Seldon Core 1 keeps a SeldonDeployment
`Creating` until the Deployment's progress deadline (600 s by default) and then gives a
generic message, while the pod has said for minutes that its storage initializer cannot
download the model. The kubelet's container states carry the cause at once: a waiting
reason such as CrashLoopBackOff or ImagePullBackOff, and the last termination's message
(the log tail, with `terminationMessagePolicy: FallbackToLogsOnError`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# Waiting reasons the kubelet keeps reporting until someone changes the pod spec or the
# world (k8s.io/kubernetes pkg/kubelet/images and kuberuntime reasons).
STUCK_REASONS = frozenset(
    {
        "CrashLoopBackOff",
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
    }
)
MAX_MESSAGE = 500


def failure(
    pods: list[dict[str, Any]], current: Callable[[dict[str, Any]], bool] = lambda pod: True
) -> str | None:
    """The first problem of a `current` pod that will not resolve by waiting, in the
    kubelet's words (`current` tells the pods of what we wrote from older ones)."""
    for pod in pods:
        meta = pod.get("metadata") or {}
        if meta.get("deletionTimestamp") or not current(pod):
            continue  # an old pod on its way out says nothing about the new one
        status = pod.get("status") or {}
        for kind, key in (
            ("init container", "initContainerStatuses"),
            ("container", "containerStatuses"),
        ):
            for cs in status.get(key) or []:
                problem = _container_problem(cs, init=kind == "init container")
                if problem:
                    return f"pod {meta.get('name')}: {kind} {cs.get('name')!r} {problem}"
    return None


def _container_problem(cs: dict[str, Any], init: bool) -> str | None:
    state = cs.get("state") or {}
    waiting = state.get("waiting") or {}
    terminated = state.get("terminated") or {}
    last = (cs.get("lastState") or {}).get("terminated") or {}
    if waiting.get("reason") in STUCK_REASONS:
        text = f"is {waiting['reason']}"
        if waiting.get("message"):
            text += f": {_short(waiting['message'])}"
        if last:
            text += f"; last exit: {_terminated(last)}"
        return text
    # An init container that exited non-zero has failed the pod's start; it will be retried
    # into CrashLoopBackOff, but its message already says why.
    if init and terminated and int(terminated.get("exitCode") or 0) != 0:
        return f"failed: {_terminated(terminated)}"
    return None


def _terminated(t: dict[str, Any]) -> str:
    parts = [f"exit code {t.get('exitCode')}"]
    if t.get("reason"):
        parts.append(str(t["reason"]))
    if t.get("message"):
        parts.append(_short(str(t["message"])))
    return ", ".join(parts)


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_MESSAGE else "..." + text[-MAX_MESSAGE:]
