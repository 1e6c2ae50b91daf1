"""Rollout states kept on the cluster, so every caller of a rollout sees the same one.

A progressive rollout is advanced by whoever runs next: an Airflow triggerer, a Prefect
task restarted on another worker, `modeldeploy rollout promote` on a laptop. On a cluster
they share no disk, so the state lives in a ConfigMap beside the model server
(`modeldeploy-rollout-<model>`, key `state`). Its lock is an annotation written with
optimistic concurrency (the resourceVersion read), held by one caller at a time and
expiring after `LOCK_SECONDS`, so a caller that died holding it blocks nobody for long.

Lifecycle: the ConfigMap lives as long as the model server whose rollout it holds, so
`modeldeploy rollout status` shows the last rollout until then. Each save names that
server's resource in `ownerReferences` (and its uuid in a label), and Kubernetes' garbage
collector deletes the ConfigMap with the server, whoever deletes it (`modeldeploy models
delete`, `kubectl delete`). A lock taken where no state was ever saved (an abort of a
model without rollout) leaves nothing behind: releasing it deletes the empty ConfigMap.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from modeldeploy.errors import ConflictError
from modeldeploy.flavors.kubernetes.client import KubeClient
from modeldeploy.flavors.kubernetes.errors import api_status, translate
from modeldeploy.flavors.kubernetes.naming import label_value, short_hash
from modeldeploy.flavors.kubernetes.records import (
    LABEL_FLAVOR,
    LABEL_MODEL,
    LABEL_UUID,
    MANAGED_BY,
    MANAGER,
    PREFIX,
)
from modeldeploy.progressive.state import RolloutState

ANNOTATION_LOCK = PREFIX + "rollout-lock"
#: longest a lock is honoured: above the longest step a holder may take (a rollback waits
#: for the champion's model to load, up to the default timeout of 300 s)
LOCK_SECONDS = 600.0
#: how long a caller waits for a lock another caller holds
LOCK_WAIT_SECONDS = LOCK_SECONDS + 30.0
_POLL_SECONDS = 0.1
_MAX_CONFLICTS = 20
#: a model server's uuid -> the ownerReference of its resource (None: the server is gone)
OwnerLookup = Callable[[str], dict[str, Any] | None]


def configmap_name(model_name: str) -> str:
    """A DNS-1123 name per model (sanitized, with a hash when sanitizing changed it)."""
    base = label_value(model_name).lower().replace("_", "-").replace(".", "-").strip("-")
    return f"modeldeploy-rollout-{base[:40].strip('-')}-{short_hash(model_name)}"


class ConfigMapRolloutStore:
    """`RolloutStore` (modeldeploy.progressive.state) over ConfigMaps of one namespace."""

    def __init__(self, kube: KubeClient, flavor: str, owner_of: OwnerLookup | None = None) -> None:
        self.kube = kube
        self.flavor = flavor
        self.owner_of = owner_of

    def __repr__(self) -> str:
        return f"ConfigMapRolloutStore(namespace {self.kube.namespace!r})"

    # --- the ConfigMap -----------------------------------------------------------------

    def _read(self, name: str) -> dict[str, Any] | None:
        return self.kube.read_json(self.kube.core.read_namespaced_config_map, name, "ConfigMap")

    def _update(self, model_name: str, change: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """Read-modify-write the model's ConfigMap (created when missing); `change` edits a
        copy and says whether to write. Raises `_Busy` through when `change` does."""
        name = configmap_name(model_name)
        where = f"ConfigMap {self.kube.namespace}/{name}"
        for _ in range(_MAX_CONFLICTS):
            current = self._read(name)
            body = current or {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": name,
                    "labels": {
                        MANAGED_BY: MANAGER,
                        LABEL_FLAVOR: self.flavor,
                        LABEL_MODEL: label_value(model_name),
                    },
                    "annotations": {},
                },
                "data": {},
            }
            if (
                current is not None
                and (current["metadata"].get("labels") or {}).get(MANAGED_BY) != MANAGER
            ):
                raise ConflictError(f"{where} exists but is not managed by modeldeploy")
            body.setdefault("data", {})
            body["metadata"].setdefault("annotations", {})
            if not change(body):
                return body
            try:
                if current is None:
                    resp = self.kube.retry.call(
                        self.kube.core.create_namespaced_config_map,
                        self.kube.namespace,
                        body,
                        _preload_content=False,
                        _request_timeout=self.kube.timeout,
                    )
                else:
                    resp = self.kube.retry.call(
                        self.kube.core.replace_namespaced_config_map,
                        name,
                        self.kube.namespace,
                        body,
                        _preload_content=False,
                        _request_timeout=self.kube.timeout,
                    )
            except Exception as exc:
                if api_status(exc) == 409:
                    continue  # created or changed meanwhile: read again
                raise translate(exc, f"writing {where}") from None
            written: dict[str, Any] = json.loads(resp.data)
            return written
        raise ConflictError(f"writing {where}: it kept changing under us; try again")

    # --- RolloutStore --------------------------------------------------------------------

    def load(self, model_name: str) -> RolloutState | None:
        found = self._read(configmap_name(model_name))
        text = ((found or {}).get("data") or {}).get("state")
        return RolloutState.model_validate_json(text) if text else None

    def save(self, state: RolloutState) -> None:
        state.updated_at = time.time()
        text = json.dumps(state.model_dump(mode="json"), indent=1)

        def change(body: dict[str, Any]) -> bool:
            body["data"]["state"] = text
            self._own(body, state.server_uuid)
            return True

        self._update(state.model_name, change)

    def _own(self, body: dict[str, Any], server_uuid: str) -> None:
        """Make the server's resource the ConfigMap's owner (looked up once per server)."""
        meta = body["metadata"]
        labels = meta.setdefault("labels", {})
        if self.owner_of is None or (
            labels.get(LABEL_UUID) == server_uuid and meta.get("ownerReferences")
        ):
            return
        owner = self.owner_of(server_uuid)
        if owner is not None:
            meta["ownerReferences"] = [owner]
            labels[LABEL_UUID] = server_uuid

    @contextlib.contextmanager
    def locked(self, model_name: str) -> Iterator[None]:
        """Hold the model's rollout lock; wait while another live caller holds it."""
        me = uuid.uuid4().hex
        give_up = time.monotonic() + LOCK_WAIT_SECONDS

        def take(body: dict[str, Any]) -> bool:
            holder, _, until = str(
                body["metadata"]["annotations"].get(ANNOTATION_LOCK, "")
            ).partition(" ")
            if holder and holder != me and float(until or 0) > time.time():
                raise _Busy()
            body["metadata"]["annotations"][ANNOTATION_LOCK] = (
                f"{me} {time.time() + LOCK_SECONDS:.0f}"
            )
            return True

        while True:
            try:
                self._update(model_name, take)
                break
            except _Busy:
                if time.monotonic() > give_up:
                    raise ConflictError(
                        f"the rollout of {model_name} stayed locked by another caller for "
                        f"{LOCK_WAIT_SECONDS:.0f} s; try again"
                    ) from None
                time.sleep(_POLL_SECONDS)
        try:
            yield
        finally:

            def release(body: dict[str, Any]) -> bool:
                held = str(body["metadata"]["annotations"].get(ANNOTATION_LOCK, ""))
                if not held.startswith(me + " "):
                    return False
                if not body["data"].get("state") and self._delete_unchanged(body):
                    return False  # it only ever held this lock: nothing to keep
                body["metadata"]["annotations"].pop(ANNOTATION_LOCK)
                return True

            self._update(model_name, release)

    def _delete_unchanged(self, body: dict[str, Any]) -> bool:
        """Delete the ConfigMap if nobody changed it since `body` was read; False if
        somebody did (the caller then reads it again)."""
        meta = body["metadata"]
        version = meta.get("resourceVersion")
        if not version:
            return False
        try:
            self.kube.retry.call(
                self.kube.core.delete_namespaced_config_map,
                meta["name"],
                self.kube.namespace,
                body={"preconditions": {"resourceVersion": version}},
                _request_timeout=self.kube.timeout,
            )
        except Exception as exc:
            if api_status(exc) == 404:
                return True
            if api_status(exc) == 409:
                return False
            where = f"deleting ConfigMap {self.kube.namespace}/{meta['name']}"
            raise translate(exc, where) from None
        return True


class _Busy(Exception):
    """Another caller holds the lock."""
