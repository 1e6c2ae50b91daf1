"""The resource types the emulator serves: core v1 built-ins plus every CRD found on disk.

Each type carries the per-resource behaviour that differs on a real server: scope, status
subresource, whether updates need a resourceVersion, what DELETE returns, which field
selectors exist, how names are checked and which admission webhook would run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from . import validation as v
from .errors import ApiError, FieldError, Resource, webhook_denied
from .schema import CRDVersion, load_crds

Getter = Callable[[dict[str, Any]], str]
Validator = Callable[[dict[str, Any], dict[str, Any] | None], list[FieldError]]
#: an admission webhook: the new object and, on an update, the old one
Webhook = Callable[[dict[str, Any], dict[str, Any] | None], ApiError | None]
Mutator = Callable[[dict[str, Any]], None]


def _get(path: str) -> Getter:
    keys = path.split(".")

    def getter(obj: dict[str, Any]) -> str:
        cur: Any = obj
        for k in keys:
            cur = cur.get(k) if isinstance(cur, dict) else None
        return "" if cur is None else str(cur)

    return getter


BASE_FIELDS: dict[str, Getter] = {
    "metadata.name": _get("metadata.name"),
    "metadata.namespace": _get("metadata.namespace"),
}


@dataclass
class ResourceType:
    """Everything the store and router need to know about one (group, version, plural)."""

    group: str
    version: str
    plural: str
    kind: str
    singular: str
    namespaced: bool = True
    status_subresource: bool = False
    short_names: list[str] = field(default_factory=list)
    schema: dict[str, Any] | None = None  # CRD openAPIV3Schema
    known_fields: frozenset[str] | None = None  # typed built-ins: top-level fields for pruning
    validator: Validator | None = None
    returns_deleted_object: bool = False
    allow_unconditional_update: bool = True
    track_generation: bool = False
    name_check: str = "subdomain"
    webhook: Webhook | None = None
    mutator: Mutator | None = None  # a mutating admission webhook (runs before validation)
    scale: dict[str, Any] | None = None  # subresources.scale (specReplicasPath, ...)
    printer_columns: list[dict[str, Any]] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    field_getters: dict[str, Getter] = field(default_factory=lambda: dict(BASE_FIELDS))
    verbs: tuple[str, ...] = ("create", "delete", "get", "list", "patch", "update", "watch")

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> str:
        return f"{self.group}/{self.plural}"

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    @property
    def is_crd(self) -> bool:
        return self.schema is not None

    def res(self) -> Resource:
        return Resource(self.group, self.plural, self.kind)


EVENT_FIELDS = {
    "apiVersion",
    "kind",
    "metadata",
    "involvedObject",
    "reason",
    "message",
    "source",
    "firstTimestamp",
    "lastTimestamp",
    "count",
    "type",
    "eventTime",
    "series",
    "action",
    "related",
    "reportingComponent",
    "reportingInstance",
}

KSERVE_WEBHOOK = "inferenceservice.kserve-webhook-server.validator"
_ISVC_NAME_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"


def _kserve_webhook(obj: dict[str, Any], old: dict[str, Any] | None) -> ApiError | None:
    """KServe's validating webhook rejects names that are not DNS-1035-like (v1beta1
    ``validateInferenceServiceName``) and canaries it cannot run (``kserve_canary``); it
    returns a plain error, so the API server answers 403 with the webhook's message, not 422."""
    import re

    from .kserve import mode_of
    from .kserve_canary import webhook_message

    name = obj["metadata"].get("name", "")
    if not re.fullmatch(_ISVC_NAME_FMT, name):
        return webhook_denied(
            KSERVE_WEBHOOK,
            f'the InferenceService "{name}" is invalid: a InferenceService name must consist of '
            "lower case alphanumeric characters or '-', and must start with alphabetical "
            'character. (e.g. "my-name" or "abc-123", regex used for validation is '
            f"'{_ISVC_NAME_FMT}')",
        )
    message = webhook_message(obj, old, mode_of(obj, "Knative"))
    return None if message is None else webhook_denied(KSERVE_WEBHOOK, message)


def core_types() -> list[ResourceType]:
    pod_fields = dict(BASE_FIELDS)
    for p in (
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    ):
        pod_fields[p] = _get(p)
    secret_fields = dict(BASE_FIELDS)
    secret_fields["type"] = _get("type")
    ns_fields = {"metadata.name": _get("metadata.name"), "status.phase": _get("status.phase")}
    event_fields = dict(BASE_FIELDS)
    for p in (
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    ):
        event_fields[p] = _get(p)
    return [
        ResourceType(
            "",
            "v1",
            "namespaces",
            "Namespace",
            "namespace",
            namespaced=False,
            status_subresource=True,
            short_names=["ns"],
            known_fields=frozenset(v.NAMESPACE_FIELDS),
            returns_deleted_object=True,
            name_check="label",
            field_getters=ns_fields,
        ),
        ResourceType(
            "",
            "v1",
            "secrets",
            "Secret",
            "secret",
            known_fields=frozenset(v.SECRET_FIELDS),
            validator=v.validate_secret,
            field_getters=secret_fields,
        ),
        ResourceType(
            "",
            "v1",
            "serviceaccounts",
            "ServiceAccount",
            "serviceaccount",
            short_names=["sa"],
            known_fields=frozenset(v.SERVICE_ACCOUNT_FIELDS),
            validator=v.validate_service_account,
        ),
        ResourceType(
            "",
            "v1",
            "configmaps",
            "ConfigMap",
            "configmap",
            short_names=["cm"],
            known_fields=frozenset(v.CONFIGMAP_FIELDS),
            validator=v.validate_configmap,
        ),
        ResourceType(
            "",
            "v1",
            "pods",
            "Pod",
            "pod",
            status_subresource=True,
            short_names=["po"],
            known_fields=frozenset(v.POD_FIELDS),
            validator=v.validate_pod,
            returns_deleted_object=True,
            field_getters=pod_fields,
        ),
        ResourceType(
            "",
            "v1",
            "events",
            "Event",
            "event",
            short_names=["ev"],
            known_fields=frozenset(EVENT_FIELDS),
            field_getters=event_fields,
        ),
        ResourceType(
            "apps",
            "v1",
            "deployments",
            "Deployment",
            "deployment",
            status_subresource=True,
            short_names=["deploy"],
            known_fields=frozenset(v.POD_FIELDS),
            track_generation=True,
            scale={
                "specReplicasPath": ".spec.replicas",
                "statusReplicasPath": ".status.replicas",
                "labelSelectorPath": ".spec.selector",
            },
        ),
    ]


#: seldon-core@v1.17.1 helm-charts/seldon-core-operator/templates/
#: customresourcedefinition_seldondeployments.machinelearning.seldon.io.yaml:4826-4834 serves
#: v1 (storage), v1alpha2 and v1alpha3 with one schema (conversion strategy None)
SELDON_EXTRA_VERSIONS = ("v1alpha2", "v1alpha3")


def _webhook_for(group: str, plural: str) -> Webhook | None:
    if (group, plural) == ("serving.kserve.io", "inferenceservices"):
        return _kserve_webhook
    if (group, plural) == ("machinelearning.seldon.io", "seldondeployments"):
        from .seldon_webhook import validate

        return validate
    return None


def crd_type(crd: CRDVersion) -> ResourceType:
    return ResourceType(
        group=crd.group,
        version=crd.version,
        plural=crd.plural,
        kind=crd.kind,
        singular=crd.singular,
        namespaced=crd.namespaced,
        status_subresource=crd.status_subresource,
        short_names=crd.short_names,
        schema=crd.schema,
        allow_unconditional_update=False,  # customResourceStrategy.AllowUnconditionalUpdate
        track_generation=True,
        webhook=_webhook_for(crd.group, crd.plural),
        scale=crd.scale,
        printer_columns=crd.printer_columns,
        categories=crd.categories,
    )


class Registry:
    """Lookup of resource types by (group, version, plural) and by group/plural key."""

    def __init__(self, crd_dir: str | None = None) -> None:
        from .istio import resource_type as virtual_services

        self.types: list[ResourceType] = [*core_types(), virtual_services()]
        for crd in load_crds(crd_dir):
            self.types.append(crd_type(crd))
            if (crd.group, crd.plural, crd.version) == (
                "machinelearning.seldon.io",
                "seldondeployments",
                "v1",
            ):
                self.types.extend(replace(crd_type(crd), version=v) for v in SELDON_EXTRA_VERSIONS)
        self._by_gvr = {(t.group, t.version, t.plural): t for t in self.types}
        self._by_key: dict[str, ResourceType] = {}
        for t in self.types:
            self._by_key.setdefault(t.key, t)

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._by_gvr.get((group, version, plural))

    def by_key(self, key: str) -> ResourceType:
        return self._by_key[key]

    def by_kind(self, kind: str, group: str | None = None) -> ResourceType:
        for t in self.types:
            if t.kind == kind and (group is None or t.group == group):
                return t
        raise KeyError(kind)

    def groups(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for t in self.types:
            if t.group:
                out.setdefault(t.group, [])
                if t.version not in out[t.group]:
                    out[t.group].append(t.version)
        return out
