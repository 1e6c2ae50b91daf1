"""Background workers that a real control plane runs: the garbage collector (owner
references, foreground/orphan deletion) and the namespace controller (Terminating namespaces).

They run asynchronously, like kube-controller-manager, so a client briefly sees dependents
after their owner is gone, exactly as on a cluster.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

from .errors import ApiError
from .store import Event, Store, clone


class GarbageCollector:
    """Deletes dependents of deleted owners and finalizes namespaces."""

    def __init__(self, store: Store, on_error: Callable[[str], None]) -> None:
        self.store = store
        self.on_error = on_error
        self._queue: queue.SimpleQueue[Event | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._pending_owners: set[str] = set()  # uids waiting for foreground deletion
        self._terminating: set[str] = set()  # namespaces being emptied
        self.idle = threading.Event()
        self.idle.set()

    def start(self) -> None:
        self.store.add_listener(self._on_event)
        self._thread = threading.Thread(target=self._run, name="k8s-emulator-gc", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.store.remove_listener(self._on_event)
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _on_event(self, ev: Event) -> None:
        self.idle.clear()
        self._queue.put(ev)

    def _run(self) -> None:
        while True:
            ev = self._queue.get()
            if ev is None:
                return
            try:
                self._handle(ev)
            except Exception as exc:  # surfaced by the fixture's teardown
                import traceback

                self.on_error(f"gc: {exc!r}\n{traceback.format_exc()}")
            if self._queue.empty():
                self.idle.set()

    # ------------------------------------------------------------------------------ logic

    def _handle(self, ev: Event) -> None:
        store = self.store
        meta = ev.obj["metadata"]
        uid = meta.get("uid", "")
        if ev.type == "DELETED":
            for rt, dep in store.dependents_of(uid):
                self._collect(rt, dep)
            for owner_uid in list(self._pending_owners):
                self._finish_foreground(owner_uid)
            ns = meta.get("namespace")
            if ns and ns in self._terminating:
                self._finalize_namespace(ns)
            return
        if not meta.get("deletionTimestamp"):
            if meta.get("ownerReferences"):  # written with owners already gone: collected
                self._collect(store.registry.by_key(ev.rkey), ev.obj)
            return
        if ev.rkey == "/namespaces":
            self._terminating.add(meta["name"])
            self._finalize_namespace(meta["name"])
            return
        fins = meta.get("finalizers") or []
        if "orphan" in fins:
            for rt, dep in store.dependents_of(uid):
                self._drop_owner_ref(rt, dep, uid)
            self._remove_finalizer(ev.rkey, ev.obj, "orphan")
        if "foregroundDeletion" in fins:
            self._pending_owners.add(uid)
            for rt, dep in store.dependents_of(uid):
                self._delete(rt, dep, "Foreground")
            self._finish_foreground(uid)

    def _collect(self, rt: Any, dep: dict[str, Any]) -> None:
        """Delete a dependent once none of its owners exist any more."""
        store = self.store
        refs = dep["metadata"].get("ownerReferences") or []
        alive = [r for r in refs if store.by_uid(r.get("uid", "")) is not None]
        if alive:
            return
        self._delete(rt, dep, "Background")

    def _delete(self, rt: Any, obj: dict[str, Any], policy: str) -> None:
        meta = obj["metadata"]
        try:
            self.store.delete(
                rt, meta.get("namespace"), meta["name"], {"propagationPolicy": policy}
            )
        except ApiError as exc:
            if exc.code != 404:
                raise

    def _finish_foreground(self, uid: str) -> None:
        found = self.store.by_uid(uid)
        if found is None:
            self._pending_owners.discard(uid)
            return
        if self.store.dependents_of(uid):
            return
        rt, owner = found
        self._pending_owners.discard(uid)
        self._remove_finalizer(rt.key, owner, "foregroundDeletion")

    def _drop_owner_ref(self, rt: Any, dep: dict[str, Any], uid: str) -> None:
        for _ in range(5):
            cur = self.store.get(rt, dep["metadata"].get("namespace"), dep["metadata"]["name"])
            if cur is None:
                return
            new = clone(cur)
            new["metadata"]["ownerReferences"] = [
                r for r in new["metadata"].get("ownerReferences") or [] if r.get("uid") != uid
            ]
            if not new["metadata"]["ownerReferences"]:
                del new["metadata"]["ownerReferences"]
            try:
                self.store.update(
                    rt, new["metadata"].get("namespace"), new["metadata"]["name"], new
                )
                return
            except ApiError as exc:
                if exc.code != 409:
                    raise

    def _remove_finalizer(self, rkey: str, obj: dict[str, Any], finalizer: str) -> None:
        rt = self.store.registry.by_key(rkey)
        meta = obj["metadata"]
        for _ in range(5):
            cur = self.store.get(rt, meta.get("namespace"), meta["name"])
            if cur is None or finalizer not in (cur["metadata"].get("finalizers") or []):
                return
            new = clone(cur)
            new["metadata"]["finalizers"] = [
                f for f in new["metadata"]["finalizers"] if f != finalizer
            ]
            try:
                self.store.update(rt, meta.get("namespace"), meta["name"], new)
                return
            except ApiError as exc:
                if exc.code != 409:
                    raise

    def _finalize_namespace(self, ns: str) -> None:
        store = self.store
        namespaced = [rt for rt in store.registry.types if rt.namespaced]
        for rt in namespaced:
            for obj in list(store.iter_objects(rt, ns)):
                if not obj["metadata"].get("deletionTimestamp"):
                    self._delete(rt, obj, "Background")
        if any(True for rt in namespaced for _ in store.iter_objects(rt, ns)):
            return  # objects with finalizers are still going away
        nsrt = store.registry.by_key("/namespaces")
        with store.lock:
            cur = store.get(nsrt, None, ns)
            if cur is not None and cur["metadata"].get("deletionTimestamp"):
                store._delete_now(nsrt, store.okey(None, ns), cur)
        self._terminating.discard(ns)
