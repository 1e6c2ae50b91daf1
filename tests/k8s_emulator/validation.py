"""Object-metadata and built-in type validation, mirroring apimachinery's validators.

Messages are those of k8s.io/apimachinery/pkg/util/validation so that clients which show
them to users see what a real cluster would say.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from .errors import FieldError, forbidden, invalid, required

DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_SUBDOMAIN_FMT = DNS1123_LABEL_FMT + r"(\." + DNS1123_LABEL_FMT + ")*"
DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
QUALIFIED_NAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
LABEL_VALUE_FMT = "(" + QUALIFIED_NAME_FMT + ")?"
CONFIG_KEY_FMT = "[-._a-zA-Z0-9]+"

_LABEL = re.compile(f"^{DNS1123_LABEL_FMT}$")
_SUBDOMAIN = re.compile(f"^{DNS1123_SUBDOMAIN_FMT}$")
_QNAME = re.compile(f"^{QUALIFIED_NAME_FMT}$")
_LVALUE = re.compile(f"^{LABEL_VALUE_FMT}$")
_CONFIG_KEY = re.compile(f"^{CONFIG_KEY_FMT}$")

TOTAL_ANNOTATION_SIZE = 256 * 1024
SECRET_MAX_SIZE = 1024 * 1024


def dns1123_subdomain(value: str) -> list[str]:
    msgs = []
    if len(value) > 253:
        msgs.append("must be no more than 253 characters")
    if not _SUBDOMAIN.match(value):
        msgs.append(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
            "'-' or '.', and must start and end with an alphanumeric character (e.g. "
            f"'example.com', regex used for validation is '{DNS1123_SUBDOMAIN_FMT}')"
        )
    return msgs


def dns1123_label(value: str) -> list[str]:
    msgs = []
    if len(value) > 63:
        msgs.append("must be no more than 63 characters")
    if not _LABEL.match(value):
        msgs.append(
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or "
            "'-', and must start and end with an alphanumeric character (e.g. 'my-name',  or "
            f"'123-abc', regex used for validation is '{DNS1123_LABEL_FMT}')"
        )
    return msgs


def qualified_name(value: str) -> list[str]:
    msgs: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            msgs.append("prefix part must be non-empty")
        else:
            msgs.extend("prefix part " + m for m in dns1123_subdomain(prefix))
    else:
        return [
            "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must "
            "start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or "
            f"'123-abc', regex used for validation is '{QUALIFIED_NAME_FMT}') with an optional "
            "DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        msgs.append("name part must be non-empty")
    elif len(name) > 63:
        msgs.append("name part must be no more than 63 characters")
    if name and not _QNAME.match(name):
        msgs.append(
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must start "
            "and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or "
            f"'123-abc', regex used for validation is '{QUALIFIED_NAME_FMT}')"
        )
    return msgs


def label_value(value: str) -> list[str]:
    msgs = []
    if len(value) > 63:
        msgs.append("must be no more than 63 characters")
    if not _LVALUE.match(value):
        msgs.append(
            "a valid label must be an empty string or consist of alphanumeric characters, '-', "
            "'_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  "
            f"or 'my_value',  or '12345', regex used for validation is '{LABEL_VALUE_FMT}')"
        )
    return msgs


def validate_labels(labels: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if not isinstance(labels, dict):
        return errs
    for k, v in labels.items():
        errs.extend(invalid(path, k, m) for m in qualified_name(k))
        if not isinstance(v, str):
            errs.append(invalid(path, v, "must be a string"))
            continue
        errs.extend(invalid(path, v, m) for m in label_value(v))
    return errs


def validate_annotations(ann: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if not isinstance(ann, dict):
        return errs
    total = 0
    for k, v in ann.items():
        errs.extend(invalid(path, k, m) for m in qualified_name(k.lower()))
        total += len(k) + len(v if isinstance(v, str) else "")
    if total > TOTAL_ANNOTATION_SIZE:
        errs.append(
            FieldError(
                "FieldValueTooLong", path, detail=f"must have at most {TOTAL_ANNOTATION_SIZE} bytes"
            )
        )
    return errs


def validate_object_meta(
    meta: dict[str, Any], *, namespaced: bool, name_check: str = "subdomain"
) -> list[FieldError]:
    """ValidateObjectMeta: name/generateName, namespace, labels, annotations, ownerReferences."""
    errs: list[FieldError] = []
    name = meta.get("name")
    check = dns1123_label if name_check == "label" else dns1123_subdomain
    if meta.get("generateName") and not name:
        pass
    elif not name:
        errs.append(required("metadata.name", "name or generateName is required"))
    else:
        errs.extend(invalid("metadata.name", name, m) for m in check(name))
    gen = meta.get("generateName")
    if gen:
        errs.extend(invalid("metadata.generateName", gen, m) for m in check(gen.rstrip("-") or "x"))
    if namespaced and not meta.get("namespace"):
        errs.append(required("metadata.namespace"))
    if not namespaced and meta.get("namespace"):
        errs.append(forbidden("metadata.namespace", "not allowed on this type"))
    errs.extend(validate_labels(meta.get("labels"), "metadata.labels"))
    errs.extend(validate_annotations(meta.get("annotations"), "metadata.annotations"))
    for i, ref in enumerate(meta.get("ownerReferences") or []):
        p = f"metadata.ownerReferences[{i}]"
        for key in ("apiVersion", "kind", "name", "uid"):
            if not ref.get(key):
                errs.append(invalid(f"{p}.{key}", ref.get(key, ""), f"{key} must not be empty"))
    fins = meta.get("finalizers") or []
    for i, fin in enumerate(fins):
        errs.extend(invalid(f"metadata.finalizers[{i}]", fin, m) for m in qualified_name(fin))
    return errs


def validate_object_meta_update(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    """ValidateObjectMetaUpdate: identity fields are immutable."""
    errs: list[FieldError] = []
    for key in ("name", "namespace", "uid", "creationTimestamp"):
        if new.get(key) != old.get(key):
            errs.append(invalid(f"metadata.{key}", new.get(key), "field is immutable"))
    if old.get("deletionTimestamp") and not new.get("deletionTimestamp"):
        errs.append(
            invalid(
                "metadata.deletionTimestamp",
                None,
                "field is immutable; may only be changed via deletion",
            )
        )
    return errs


# ----------------------------------------------------------------------------------- built-ins

SECRET_FIELDS = {"apiVersion", "kind", "metadata", "data", "stringData", "type", "immutable"}
SERVICE_ACCOUNT_FIELDS = {
    "apiVersion",
    "kind",
    "metadata",
    "secrets",
    "imagePullSecrets",
    "automountServiceAccountToken",
}
POD_FIELDS = {"apiVersion", "kind", "metadata", "spec", "status"}
NAMESPACE_FIELDS = {"apiVersion", "kind", "metadata", "spec", "status"}
CONFIGMAP_FIELDS = {"apiVersion", "kind", "metadata", "data", "binaryData", "immutable"}


def decode_secret(obj: dict[str, Any]) -> str | None:
    """Decode-time checks of a Secret (JSON -> Go struct); returns a decode error or None.

    A real server fails these with 400 because ``data`` is ``map[string][]byte``.
    """
    data = obj.get("data")
    if data is not None and not isinstance(data, dict):
        return (
            "json: cannot unmarshal "
            + _json_kind(data)
            + " into Go struct field Secret.data of type map[string][]uint8"
        )
    for key, value in (data or {}).items():
        if not isinstance(value, str):
            return (
                "json: cannot unmarshal "
                + _json_kind(value)
                + " into Go struct field Secret.data of type []uint8"
            )
        try:
            base64.b64decode(value.encode(), validate=True)
        except (binascii.Error, ValueError):
            return f"illegal base64 data at input byte {_bad_b64_offset(value)}"
        del key
    sd = obj.get("stringData")
    if sd is not None and (
        not isinstance(sd, dict) or any(not isinstance(v, str) for v in sd.values())
    ):
        return "json: cannot unmarshal into Go struct field Secret.stringData of type string"
    if "type" in obj and not isinstance(obj["type"], str):
        return (
            "json: cannot unmarshal "
            + _json_kind(obj["type"])
            + " into Go struct field Secret.type of type v1.SecretType"
        )
    if "immutable" in obj and not isinstance(obj["immutable"], bool | type(None)):
        return (
            "json: cannot unmarshal "
            + _json_kind(obj["immutable"])
            + " into Go struct field Secret.immutable of type bool"
        )
    return None


def _bad_b64_offset(value: str) -> int:
    alphabet = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")
    for i, ch in enumerate(value):
        if ch not in alphabet:
            return i
    return max(0, len(value) - len(value) % 4)


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


def normalize_secret(obj: dict[str, Any]) -> None:
    """Secret defaulting/conversion: stringData is merged into data and dropped; type Opaque."""
    sd = obj.pop("stringData", None)
    if sd:
        data = dict(obj.get("data") or {})
        for k, v in sd.items():
            data[k] = base64.b64encode(v.encode()).decode()
        obj["data"] = data
    if not obj.get("type"):
        obj["type"] = "Opaque"


_REQUIRED_SECRET_KEYS = {
    "kubernetes.io/tls": ["tls.crt", "tls.key"],
    "kubernetes.io/dockerconfigjson": [".dockerconfigjson"],
    "kubernetes.io/dockercfg": [".dockercfg"],
    "kubernetes.io/ssh-auth": ["ssh-privatekey"],
}


def validate_secret(obj: dict[str, Any], old: dict[str, Any] | None) -> list[FieldError]:
    errs: list[FieldError] = []
    data = obj.get("data") or {}
    total = 0
    for key, value in data.items():
        if len(key) > 253 or not _CONFIG_KEY.match(key):
            errs.append(
                invalid(
                    f"data[{key}]",
                    key,
                    "a valid config key must consist of alphanumeric characters, '-', '_' or "
                    "'.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for "
                    f"validation is '{CONFIG_KEY_FMT}')",
                )
            )
        total += len(base64.b64decode(value))
    if total > SECRET_MAX_SIZE:
        errs.append(
            FieldError(
                "FieldValueTooLong", "data", detail=f"must have at most {SECRET_MAX_SIZE} bytes"
            )
        )
    stype = obj.get("type", "Opaque")
    for key in _REQUIRED_SECRET_KEYS.get(stype, []):
        if key not in data:
            errs.append(required(f"data[{key}]"))
    if stype == "kubernetes.io/basic-auth" and "username" not in data and "password" not in data:
        errs.append(invalid("data[username]", "", "must have at least one of: username, password"))
    if stype == "kubernetes.io/service-account-token":
        ann = obj["metadata"].get("annotations") or {}
        if not ann.get("kubernetes.io/service-account.name"):
            errs.append(required("metadata.annotations[kubernetes.io/service-account.name]"))
    if old is not None:
        if old.get("type", "Opaque") != stype:
            errs.append(invalid("type", stype, "field is immutable"))
        if old.get("immutable"):
            if not obj.get("immutable"):
                errs.append(forbidden("immutable", "field is immutable when `immutable` is set"))
            if (old.get("data") or {}) != data:
                errs.append(forbidden("data", "field is immutable when `immutable` is set"))
    return errs


def validate_service_account(obj: dict[str, Any], old: dict[str, Any] | None) -> list[FieldError]:
    errs: list[FieldError] = []
    for fld in ("secrets", "imagePullSecrets"):
        val = obj.get(fld)
        if val is not None and not isinstance(val, list):
            errs.append(invalid(fld, val, "must be a list"))
    del old
    return errs


def validate_configmap(obj: dict[str, Any], old: dict[str, Any] | None) -> list[FieldError]:
    errs: list[FieldError] = []
    for key in obj.get("data") or {}:
        if len(key) > 253 or not _CONFIG_KEY.match(key):
            errs.append(
                invalid(
                    f"data[{key}]",
                    key,
                    "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
                )
            )
    if old is not None and old.get("immutable") and (old.get("data") != obj.get("data")):
        errs.append(forbidden("data", "field is immutable when `immutable` is set"))
    return errs


def validate_pod(obj: dict[str, Any], old: dict[str, Any] | None) -> list[FieldError]:
    """The minimal shape every Pod must have; plus spec immutability on update."""
    errs: list[FieldError] = []
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [required("spec.containers")]
    containers = spec.get("containers")
    if not containers:
        errs.append(required("spec.containers"))
    names: set[str] = set()
    for group in ("initContainers", "containers"):
        for i, c in enumerate(spec.get(group) or []):
            p = f"spec.{group}[{i}]"
            if not isinstance(c, dict):
                errs.append(invalid(p, c, "must be an object"))
                continue
            cname = c.get("name")
            if not cname:
                errs.append(required(f"{p}.name"))
            else:
                errs.extend(invalid(f"{p}.name", cname, m) for m in dns1123_label(cname))
                if cname in names:
                    errs.append(FieldError("FieldValueDuplicate", f"{p}.name", cname))
                names.add(cname)
            if not c.get("image"):
                errs.append(required(f"{p}.image"))
    if old is not None:
        mutable_old = _pod_spec_mutable_view(old.get("spec") or {})
        mutable_new = _pod_spec_mutable_view(spec)
        if mutable_old != mutable_new:
            errs.append(
                forbidden(
                    "spec",
                    "pod updates may not change fields other than `spec.containers[*].image`,"
                    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,"
                    "`spec.tolerations` (only additions to existing tolerations),"
                    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was "
                    "previously negative)",
                )
            )
    return errs


def _pod_spec_mutable_view(spec: dict[str, Any]) -> dict[str, Any]:
    view = {k: v for k, v in spec.items() if k not in ("activeDeadlineSeconds", "tolerations")}
    for group in ("containers", "initContainers"):
        if group in view:
            view[group] = [
                {k: v for k, v in c.items() if k != "image"} if isinstance(c, dict) else c
                for c in view[group]
            ]
    return view
