"""The storage-credentials Secret (and, where the flavor wants one, its ServiceAccount).

With `storage_credentials` set, modeldeploy owns the Secret: it is written before a model
server that needs it and deleted with the last model server that references it (model
servers carry the Secret's name in a label, so "is anyone still using it" is one
label-selector list). Its default name is derived from its content, so each distinct set of
credentials gets its own Secret and deploys with different credentials never overwrite each
other's; a `secret_name` given with credentials is rewritten only while no other model
server uses it. With only `secret_name` set, the Secret is the user's: it is referenced,
never written or deleted.

What goes into the Secret is the flavor's business: it hands a `SecretLayout` (how to turn
credentials into data and annotations, and whether a ServiceAccount lists the Secret).

Secret bodies are sent and read with `_preload_content=False` and only their metadata is
parsed back, so no credential value is deserialized into client models or error messages.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, cast

from modeldeploy.errors import ConflictError
from modeldeploy.flavors.kubernetes.client import KubeClient
from modeldeploy.flavors.kubernetes.credentials import StorageCredentials
from modeldeploy.flavors.kubernetes.errors import api_status, translate
from modeldeploy.flavors.kubernetes.records import (
    LABEL_FLAVOR,
    LABEL_SECRET,
    MANAGED_BY,
    MANAGER,
    managed_selector,
)
from modeldeploy.flavors.kubernetes.settings import KubernetesDeployerSettings
from modeldeploy.redaction import get_logger
from modeldeploy.waiting import Deadline

logger = get_logger("modeldeploy.kubernetes")

MAX_CONFLICT_RETRIES = 10
#: (string data, annotations) of a Secret
SecretData = tuple[dict[str, str], dict[str, str]]


@dataclass(frozen=True)
class SecretLayout:
    """How one flavor's platform reads storage credentials."""

    build: Callable[[StorageCredentials], SecretData]
    #: the platform finds the Secret through a ServiceAccount of the same name (KServe)
    service_account: bool = False


def default_secret_name(flavor: str, data: SecretData) -> str:
    """`modeldeploy-<flavor>-storage-<digest>`: one Secret per distinct set of credentials.

    The digest is a truncated SHA-256 over the whole Secret, so it identifies the content
    without revealing it."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return f"modeldeploy-{flavor}-storage-{hashlib.sha256(text.encode()).hexdigest()[:10]}"


class StorageSecrets:
    """Writes, references and garbage-collects the storage Secret of one deployer."""

    def __init__(
        self,
        kube: KubeClient,
        settings: KubernetesDeployerSettings,
        flavor: str,
        layout: SecretLayout,
        users: Callable[[str], list[dict[str, Any]]],
    ) -> None:
        self.kube = kube
        self.settings = settings
        self.flavor = flavor
        self.layout = layout
        self.users = users

    @property
    def managed(self) -> bool:
        return self.settings.storage_credentials is not None

    def _data(self) -> SecretData | None:
        creds = self.settings.storage_credentials
        return None if creds is None else self.layout.build(creds)

    @property
    def name(self) -> str | None:
        """Name the model servers reference, or None when no credentials are configured."""
        if self.settings.secret_name:
            return self.settings.secret_name
        data = self._data()
        return None if data is None else default_secret_name(self.flavor, data)

    @property
    def service_account(self) -> str | None:
        """The ServiceAccount listing the Secret, for layouts that read it that way."""
        return self.name if self.layout.service_account and self.managed else None

    # --- writing -----------------------------------------------------------------------

    def ensure(self, deadline: Deadline | None = None, server: str | None = None) -> str | None:
        """Make the managed Secret (and ServiceAccount) match the settings; return its name.

        `server` is the model server about to use it (None: a new one); a Secret other
        model servers use is never changed under them.
        """
        name = self.name
        data = self._data()
        if name is None or data is None:
            return name
        values, annotations = data

        def build(current: dict[str, Any] | None) -> dict[str, Any] | None:
            body = self._secret_body(name, values, annotations, current)
            if body is not None and current is not None:
                self._check_unshared(name, server)
            return body

        self._apply("secrets", name, build, deadline)
        if self.layout.service_account:
            self._apply(
                "serviceaccounts",
                name,
                lambda current: self._service_account_body(name, current),
                deadline,
            )
        return name

    def _check_unshared(self, name: str, server: str | None) -> None:
        from modeldeploy.flavors.kubernetes.naming import label_value

        selector = f"{managed_selector(self.flavor)},{LABEL_SECRET}={label_value(name)}"
        others = [
            o for o in self.users(selector) if (o.get("metadata") or {}).get("name") != server
        ]
        if others:
            raise ConflictError(
                f"Secret {self.kube.namespace}/{name} holds other storage credentials and "
                f"{len(others)} other model server(s) use it; it is left as it is. Drop "
                "secret_name to get one Secret per set of credentials, or choose another name"
            )

    def _labels(self) -> dict[str, str]:
        return {MANAGED_BY: MANAGER, LABEL_FLAVOR: self.flavor}

    def _secret_body(
        self,
        name: str,
        data: dict[str, str],
        annotations: dict[str, str],
        current: dict[str, Any] | None,
    ) -> dict[str, Any] | None:
        encoded = {k: base64.b64encode(v.encode("utf-8")).decode("ascii") for k, v in data.items()}
        body = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {"name": name, "labels": self._labels(), "annotations": annotations},
            "data": encoded,
        }
        if current is not None:
            meta = current.get("metadata") or {}
            same = (
                current.get("data") == encoded
                and (meta.get("annotations") or {}) == annotations
                and all((meta.get("labels") or {}).get(k) == v for k, v in self._labels().items())
            )
            if same:
                return None
        return body

    def _service_account_body(
        self, name: str, current: dict[str, Any] | None
    ) -> dict[str, Any] | None:
        body = {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": name, "labels": self._labels()},
            "secrets": [{"name": name}],
        }
        if current is not None:
            refs = [s.get("name") for s in current.get("secrets") or []]
            if name in refs:
                return None
            body["secrets"] = [*(current.get("secrets") or []), {"name": name}]
        return body

    def _apply(
        self,
        plural: Literal["secrets", "serviceaccounts"],
        name: str,
        build: Callable[[dict[str, Any] | None], dict[str, Any] | None],
        deadline: Deadline | None,
    ) -> None:
        kind = "Secret" if plural == "secrets" else "ServiceAccount"
        what = f"{kind} {self.kube.namespace}/{name}"
        for _ in range(MAX_CONFLICT_RETRIES):
            current = self._read(plural, name, deadline)
            if current is not None and not _is_ours(current):
                raise ConflictError(
                    f"{what} exists but is not managed by modeldeploy; it is left untouched. "
                    "Set secret_name to another name, or drop storage_credentials to use "
                    "that Secret as it is"
                )
            body = build(current)
            if body is None:
                return
            try:
                if current is None:
                    self._write("create", plural, name, body, deadline)
                else:
                    body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
                    self._write("replace", plural, name, body, deadline)
                return
            except Exception as exc:
                if api_status(exc) == 409:
                    continue  # created or changed concurrently: read again and re-apply
                raise translate(exc, f"writing {what}") from None
        raise ConflictError(f"writing {what}: it kept changing under us; try again")

    # --- reading and deleting ----------------------------------------------------------

    def _method(self, verb: str, plural: str) -> Callable[..., Any]:
        kind = "secret" if plural == "secrets" else "service_account"
        return cast("Callable[..., Any]", getattr(self.kube.core, f"{verb}_namespaced_{kind}"))

    def _read(self, plural: str, name: str, deadline: Deadline | None) -> dict[str, Any] | None:
        return self.kube.read_json(self._method("read", plural), name, plural, deadline)

    def _write(
        self, verb: str, plural: str, name: str, body: dict[str, Any], deadline: Deadline | None
    ) -> None:
        fn = self._method(verb, plural)
        ns = self.kube.namespace
        args = (ns, body) if verb == "create" else (name, ns, body)
        self.kube.retry.call(
            fn,
            *args,
            deadline=deadline,
            _preload_content=False,
            _request_timeout=self.kube.timeout,
        )

    def exists(self, name: str, deadline: Deadline | None = None) -> bool:
        return self._read("secrets", name, deadline) is not None

    def release(self, name: str | None, leaving: str, deadline: Deadline | None = None) -> bool:
        """Delete the Secret `name` if no model server but `leaving` still references it.

        Objects that are being deleted (deletionTimestamp set) no longer count as users.
        Returns True when the Secret was deleted.
        """
        if not name:
            return False
        from modeldeploy.flavors.kubernetes.naming import label_value

        selector = f"{managed_selector(self.flavor)},{LABEL_SECRET}={label_value(name)}"
        still = [
            o
            for o in self.users(selector)
            if (o.get("metadata") or {}).get("name") != leaving
            and not (o.get("metadata") or {}).get("deletionTimestamp")
        ]
        if still:
            logger.debug("secret %s still used by %d model server(s)", name, len(still))
            return False
        deleted = False
        plurals: list[Literal["secrets", "serviceaccounts"]] = ["secrets"]
        if self.layout.service_account:
            plurals.append("serviceaccounts")
        for plural in plurals:
            current = self._read(plural, name, deadline)
            if current is None or not _is_ours(current):
                continue  # never delete what we did not create
            try:
                self.kube.retry.call(
                    self._method("delete", plural),
                    name,
                    self.kube.namespace,
                    deadline=deadline,
                    _preload_content=False,
                    _request_timeout=self.kube.timeout,
                )
                deleted = deleted or plural == "secrets"
            except Exception as exc:
                if api_status(exc) != 404:
                    where = f"{self.kube.namespace}/{name}"
                    raise translate(exc, f"deleting {plural} {where}") from None
        return deleted


def _is_ours(obj: dict[str, Any]) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return labels.get(MANAGED_BY) == MANAGER
