"""CRUD, paginated label-selector lists and watches on one custom resource kind.

Reads and writes go through the deployer's `RetryPolicy`; conflicting writes are re-read and
re-applied (never blindly overwritten); objects without our managed-by label are refused.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from modeldeploy.errors import ConflictError, ModelServerNotFoundError
from modeldeploy.flavors.kubernetes.client import KubeClient
from modeldeploy.flavors.kubernetes.errors import api_status, status_reason, translate
from modeldeploy.flavors.kubernetes.records import is_managed
from modeldeploy.waiting import Deadline

PAGE_SIZE = 500
MAX_CONFLICT_RETRIES = 10


@dataclass(frozen=True)
class ResourceKind:
    group: str
    version: str
    plural: str
    kind: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"


class CustomResources:
    """One kind of custom resource in one namespace, as seen by one deployer."""

    def __init__(self, kube: KubeClient, kind: ResourceKind, flavor: str) -> None:
        self.kube = kube
        self.kind = kind
        self.flavor = flavor
        self.requests = 0

    @property
    def namespace(self) -> str:
        return self.kube.namespace

    def where(self, name: str | None = None) -> str:
        base = f"{self.kind.kind} in namespace {self.namespace}"
        return f"{self.kind.kind} {self.namespace}/{name}" if name else base

    def _call(
        self, method: str, *args: Any, deadline: Deadline | None, **kwargs: Any
    ) -> dict[str, Any]:
        fn: Callable[..., dict[str, Any]] = getattr(self.kube.custom, method)
        k = self.kind

        def once() -> dict[str, Any]:
            self.requests += 1
            return fn(
                k.group,
                k.version,
                self.namespace,
                k.plural,
                *args,
                _request_timeout=self.kube.timeout,
                **kwargs,
            )

        return self.kube.retry.call(once, deadline=deadline, what=f"{method} {k.plural}")

    # --- single objects ----------------------------------------------------------------

    def get(self, name: str, deadline: Deadline | None = None) -> dict[str, Any] | None:
        try:
            return self._call("get_namespaced_custom_object", name, deadline=deadline)
        except Exception as exc:
            if api_status(exc) == 404:
                return None
            raise translate(exc, f"reading {self.where(name)}", self.kube.host) from None

    def get_managed(self, name: str, deadline: Deadline | None = None) -> dict[str, Any] | None:
        obj = self.get(name, deadline)
        if obj is not None and not is_managed(obj, self.flavor):
            raise ConflictError(
                f"{self.where(name)} exists but is not managed by modeldeploy "
                f"(no app.kubernetes.io/managed-by=modeldeploy label); it is left untouched"
            )
        return obj

    def create(self, body: dict[str, Any], deadline: Deadline | None = None) -> dict[str, Any]:
        """Create `body`; a retried create that finds its own earlier attempt returns it."""
        name = body["metadata"]["name"]
        try:
            return self._call("create_namespaced_custom_object", body, deadline=deadline)
        except Exception as exc:
            if api_status(exc) == 409 and status_reason(exc) == "AlreadyExists":
                existing = self.get(name, deadline)
                if existing is not None and _same_identity(existing, body):
                    return existing
                owner = "modeldeploy" if existing and is_managed(existing) else "someone else"
                raise ConflictError(
                    f"cannot create {self.where(name)}: an object of that name already exists "
                    f"(managed by {owner}); choose another name for the model server"
                ) from None
            raise translate(exc, f"creating {self.where(name)}", self.kube.host) from None

    def update(
        self,
        name: str,
        mutate: Callable[[dict[str, Any]], dict[str, Any] | None],
        deadline: Deadline | None = None,
    ) -> dict[str, Any]:
        """Read-modify-write with optimistic concurrency.

        `mutate` gets a private copy of the current object and returns the desired one (or
        None for no change). The write carries the resourceVersion that was read; on a 409
        Conflict the object is read again and `mutate` re-applied to the fresh copy.
        """
        for _ in range(MAX_CONFLICT_RETRIES):
            current = self.get_managed(name, deadline)
            if current is None:
                raise ModelServerNotFoundError(
                    f"{self.where(name)} no longer exists; it was deleted by someone else"
                )
            desired = mutate(copy.deepcopy(current))
            if desired is None or desired == current:
                return current
            desired["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            try:
                return self._call(
                    "replace_namespaced_custom_object", name, desired, deadline=deadline
                )
            except Exception as exc:
                status = api_status(exc)
                if status == 409:
                    continue
                if status == 404:
                    raise ModelServerNotFoundError(
                        f"{self.where(name)} was deleted while it was being updated"
                    ) from None
                raise translate(exc, f"updating {self.where(name)}", self.kube.host) from None
        raise ConflictError(
            f"updating {self.where(name)}: it kept changing under us "
            f"({MAX_CONFLICT_RETRIES} conflicts in a row); another client is writing it"
        )

    def delete(self, name: str, deadline: Deadline | None = None) -> bool:
        """Delete a managed object; False if it was already gone."""
        obj = self.get_managed(name, deadline)
        if obj is None:
            return False
        try:
            self._call(
                "delete_namespaced_custom_object",
                name,
                deadline=deadline,
                propagation_policy="Background",
            )
        except Exception as exc:
            if api_status(exc) == 404:
                return False
            raise translate(exc, f"deleting {self.where(name)}", self.kube.host) from None
        return True

    # --- collections -------------------------------------------------------------------

    def list(
        self, label_selector: str, deadline: Deadline | None = None, page_size: int = PAGE_SIZE
    ) -> list[dict[str, Any]]:
        """Every object matching the selector, fetched in pages of `page_size`.

        A continue token that expired (410) restarts the listing, so the result is one
        consistent snapshot rather than a mix of two.
        """
        for _ in range(3):
            items: list[dict[str, Any]] = []
            token: str | None = None
            try:
                while True:
                    kwargs: dict[str, Any] = {"label_selector": label_selector, "limit": page_size}
                    if token:
                        kwargs["_continue"] = token
                    page = self._call("list_namespaced_custom_object", deadline=deadline, **kwargs)
                    items.extend(page.get("items") or [])
                    token = (page.get("metadata") or {}).get("continue")
                    if not token:
                        return items
            except Exception as exc:
                if api_status(exc) == 410:
                    continue
                if api_status(exc) == 404:
                    raise ModelServerNotFoundError(
                        f"listing {self.where()}: the API server does not know "
                        f"{self.kind.plural}.{self.kind.group}/{self.kind.version}. Is the "
                        f"{self.kind.kind} CRD installed, and does namespace "
                        f"{self.namespace} exist?"
                    ) from None
                raise translate(exc, f"listing {self.where()}", self.kube.host) from None
        raise ConflictError(f"listing {self.where()}: the listing kept expiring; try again")

    def watch(
        self, name: str, resource_version: str, timeout_seconds: int, read_timeout: float
    ) -> Iterator[dict[str, Any]]:
        """Raw watch events for one object from `resource_version` (errors are not translated)."""
        from kubernetes import watch

        self.requests += 1
        k = self.kind
        stream = watch.Watch().stream(
            self.kube.custom.list_namespaced_custom_object,
            k.group,
            k.version,
            self.namespace,
            k.plural,
            field_selector=f"metadata.name={name}",
            resource_version=resource_version,
            allow_watch_bookmarks=True,
            timeout_seconds=timeout_seconds,
            _request_timeout=(self.kube.timeout[0], read_timeout),
        )
        yield from stream


def _same_identity(existing: dict[str, Any], body: dict[str, Any]) -> bool:
    from modeldeploy.flavors.kubernetes.records import LABEL_UUID

    have = ((existing.get("metadata") or {}).get("labels") or {}).get(LABEL_UUID)
    want = ((body.get("metadata") or {}).get("labels") or {}).get(LABEL_UUID)
    return bool(want) and have == want and is_managed(existing)
