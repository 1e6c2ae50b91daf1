"""Replaying what an upstream controller writes, step by step, through the emulator's API.

Tests stop a controller simulator and write the statuses (and child objects) the real
controller would write, each step citing its upstream source, to check what a client
concludes at every step. Writes go over HTTP with the real `kubernetes` client: objects
through their main resource, statuses through the `/status` subresource.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from .emulator import KubernetesEmulator


class Replay:
    """Writes one namespace's objects and statuses as a controller would."""

    def __init__(self, emu: KubernetesEmulator, namespace: str = "default") -> None:
        from kubernetes import client

        self.emu = emu
        self.namespace = namespace
        self.api_client = emu.api_client()
        self.custom = client.CustomObjectsApi(self.api_client)
        self.apps = client.AppsV1Api(self.api_client)

    def close(self) -> None:
        self.api_client.close()

    # --- custom resources --------------------------------------------------------------

    def get(self, group: str, version: str, plural: str, name: str) -> dict[str, Any]:
        obj: dict[str, Any] = self.custom.get_namespaced_custom_object(
            group, version, self.namespace, plural, name
        )
        return obj

    def status(
        self, group: str, version: str, plural: str, name: str, status: dict[str, Any]
    ) -> dict[str, Any]:
        """PUT `status` to the object's /status with its current resourceVersion."""
        body = self.get(group, version, plural, name)
        body["status"] = copy.deepcopy(status)
        out: dict[str, Any] = self.custom.replace_namespaced_custom_object_status(
            group, version, self.namespace, plural, name, body
        )
        return out

    def metadata(
        self, group: str, version: str, plural: str, name: str, labels: dict[str, str]
    ) -> dict[str, Any]:
        """A metadata-only write (as `kubectl label` makes): the generation does not move."""
        body = self.get(group, version, plural, name)
        body["metadata"].setdefault("labels", {}).update(labels)
        out: dict[str, Any] = self.custom.replace_namespaced_custom_object(
            group, version, self.namespace, plural, name, body
        )
        return out

    # --- apps/v1 Deployments -----------------------------------------------------------

    def deployment(self, name: str) -> dict[str, Any] | None:
        from kubernetes.client.exceptions import ApiException

        try:
            resp = self.apps.read_namespaced_deployment(
                name, self.namespace, _preload_content=False
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        out: dict[str, Any] = json.loads(resp.data)
        return out

    def put_deployment(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create or replace a Deployment's spec (the controller's write), keeping its status."""
        name = body["metadata"]["name"]
        current = self.deployment(name)
        if current is None:
            resp = self.apps.create_namespaced_deployment(
                self.namespace, body, _preload_content=False
            )
        else:
            merged = copy.deepcopy(current)
            merged["metadata"]["labels"] = body["metadata"].get("labels") or {}
            merged["spec"] = copy.deepcopy(body["spec"])
            resp = self.apps.replace_namespaced_deployment(
                name, self.namespace, merged, _preload_content=False
            )
        out: dict[str, Any] = json.loads(resp.data)
        return out

    def deployment_status(self, name: str, status: dict[str, Any]) -> dict[str, Any]:
        current = self.deployment(name)
        assert current is not None, name
        current["status"] = copy.deepcopy(status)
        resp = self.apps.replace_namespaced_deployment_status(
            name, self.namespace, current, _preload_content=False
        )
        out: dict[str, Any] = json.loads(resp.data)
        return out
