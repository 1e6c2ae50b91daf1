"""CRD loading and structural-schema semantics: pruning, defaulting and validation.

The real API server does not run a JSON-Schema validator over custom resources; it prunes
unknown fields (structural pruning), applies ``default`` values and then validates with
kube-openapi, reporting ``field.ErrorList`` entries. This module reproduces those three steps
over the platforms' real CRDs so that an object a cluster would reject is rejected here too,
with the same paths and messages (apiextensions-apiserver ``kubeOpenAPIResultToFieldErrors``).
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import math
import os
import re
import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from .errors import FieldError, invalid, required

try:  # libyaml makes the 2 MB KServe CRD parse in ~0.5 s instead of ~10 s
    _Loader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - pure-python PyYAML
    _Loader = yaml.SafeLoader

OBJECT_META_FIELDS = frozenset(
    {
        "name",
        "generateName",
        "namespace",
        "selfLink",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "labels",
        "annotations",
        "ownerReferences",
        "finalizers",
        "managedFields",
    }
)


@dataclass
class CRDVersion:
    """One served version of a CRD: enough to route, validate and describe it."""

    group: str
    version: str
    plural: str
    singular: str
    kind: str
    list_kind: str
    short_names: list[str]
    namespaced: bool
    status_subresource: bool
    scale: dict[str, Any] | None
    schema: dict[str, Any]
    storage: bool = True
    extra: dict[str, Any] = field(default_factory=dict)
    printer_columns: list[dict[str, Any]] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)


def default_crd_dir() -> Path:
    """``MODELDEPLOY_CRD_DIR``, else ``../shared/crds`` beside the repository when present,
    else the copy in ``tests/crds`` (so a bare clone runs the Kubernetes tests too)."""
    env = os.environ.get("MODELDEPLOY_CRD_DIR")
    if env:
        return Path(env)
    tests_dir = Path(__file__).resolve().parents[1]
    shared = tests_dir.parent.parent / "shared" / "crds"
    return shared if shared.is_dir() else tests_dir / "crds"


_CACHE: dict[str, list[CRDVersion]] = {}
_CACHE_LOCK = threading.Lock()


def load_crds(directory: Path | str | None = None) -> list[CRDVersion]:
    """Parse every CRD YAML in ``directory`` once per process (cached by absolute path)."""
    d = Path(directory) if directory else default_crd_dir()
    key = str(d.resolve())
    with _CACHE_LOCK:
        if key in _CACHE:
            return _CACHE[key]
        out: list[CRDVersion] = []
        if not d.is_dir():
            raise FileNotFoundError(f"CRD directory {d} does not exist (set MODELDEPLOY_CRD_DIR)")
        out.extend(_crd_versions(d))
        # CRDs the chosen folder lacks (e.g. the Seldon Core 2 Server, vendored only in
        # tests/crds) still come from the repository's own copy.
        own = Path(__file__).resolve().parents[1] / "crds"
        if directory is None and own.resolve() != d.resolve() and own.is_dir():
            have = {(c.group, c.plural) for c in out}
            out.extend(c for c in _crd_versions(own) if (c.group, c.plural) not in have)
        _CACHE[key] = out
        return out


def _crd_versions(d: Path) -> list[CRDVersion]:
    out: list[CRDVersion] = []
    for path in sorted(d.glob("*.y*ml")):
        with path.open("rb") as fh:
            for doc in yaml.load_all(fh, Loader=_Loader):
                if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                    out.extend(_versions(doc))
    return out


def _versions(doc: dict[str, Any]) -> list[CRDVersion]:
    spec = doc["spec"]
    names = spec["names"]
    res = []
    for v in spec.get("versions", []):
        if not v.get("served", True):
            continue
        sub = v.get("subresources") or {}
        schema = (v.get("schema") or {}).get("openAPIV3Schema") or {
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": True,
        }
        res.append(
            CRDVersion(
                group=spec["group"],
                version=v["name"],
                plural=names["plural"],
                singular=names.get("singular", names["plural"]),
                kind=names["kind"],
                list_kind=names.get("listKind", names["kind"] + "List"),
                short_names=list(names.get("shortNames") or []),
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                status_subresource="status" in sub,
                scale=sub.get("scale"),
                schema=schema,
                storage=bool(v.get("storage")),
                printer_columns=list(v.get("additionalPrinterColumns") or []),
                categories=list(names.get("categories") or []),
            )
        )
    return res


# ------------------------------------------------------------------------------------ pruning


def _idx(path: str, i: int) -> str:
    return f"{path}[{i}]"


def _child(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def prune(obj: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """Structural pruning of a whole custom resource in place; returns pruned field paths.

    ``apiVersion``, ``kind`` and ``metadata`` are always kept at the root; metadata is pruned
    to ObjectMeta's fields (it is a typed struct in the server).
    """
    pruned: list[str] = []
    props = schema.get("properties") or {}
    for key in list(obj):
        if key in ("apiVersion", "kind"):
            continue
        if key == "metadata":
            meta = obj[key]
            if isinstance(meta, dict):
                for mk in list(meta):
                    if mk not in OBJECT_META_FIELDS:
                        del meta[mk]
                        pruned.append(f"metadata.{mk}")
            continue
        if key in props:
            _prune(obj[key], props[key], key, pruned)
        elif schema.get("x-kubernetes-preserve-unknown-fields"):
            continue
        else:
            del obj[key]
            pruned.append(key)
    return pruned


def _prune(value: Any, schema: dict[str, Any], path: str, pruned: list[str]) -> None:
    if isinstance(value, dict):
        props = schema.get("properties")
        addl = schema.get("additionalProperties")
        preserve = schema.get("x-kubernetes-preserve-unknown-fields")
        embedded = schema.get("x-kubernetes-embedded-resource")
        for key in list(value):
            if props is not None and key in props:
                _prune(value[key], props[key], _child(path, key), pruned)
            elif isinstance(addl, dict):
                _prune(value[key], addl, _child(path, key), pruned)
            elif (
                addl is True or preserve or (embedded and key in ("apiVersion", "kind", "metadata"))
            ):
                continue
            else:
                del value[key]
                pruned.append(_child(path, key))
    elif isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, dict):
            for i, item in enumerate(value):
                _prune(item, items, _idx(path, i), pruned)


# ---------------------------------------------------------------------------------- defaulting


def apply_defaults(value: Any, schema: dict[str, Any]) -> None:
    """Structural defaulting: a missing field (or a null one that is not nullable) gets its
    ``default``; nested objects are defaulted only where they exist (as the server does)."""
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        for key, sub in props.items():
            if "default" not in sub:
                continue
            if key not in value or (value[key] is None and not sub.get("nullable")):
                value[key] = copy.deepcopy(sub["default"])
        for key, item in value.items():
            if key in props:
                apply_defaults(item, props[key])
            elif isinstance(schema.get("additionalProperties"), dict):
                apply_defaults(item, schema["additionalProperties"])
    elif isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, dict):
            for item in value:
                apply_defaults(item, items)


# ---------------------------------------------------------------------------------- validation

_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_UUID = re.compile(
    r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"
)
_PATTERN_CACHE: dict[str, re.Pattern[str]] = {}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _types(schema: dict[str, Any]) -> list[str]:
    if schema.get("x-kubernetes-int-or-string"):
        return ["integer", "string"]
    t = schema.get("type")
    return [t] if t else []


def _type_ok(value: Any, types: list[str]) -> bool:
    jt = _json_type(value)
    if jt in types:
        return True
    if jt == "integer" and "number" in types:
        return True
    # go-openapi accepts a float that is a JSON integer (1.0) where an integer is expected
    return jt == "number" and "integer" in types and float(value).is_integer()


def _format_ok(fmt: str, value: str) -> bool:
    if fmt == "date-time":
        if not _DATE_TIME.match(value):
            return False
        try:
            datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            return False
        return True
    if fmt == "byte":
        try:
            base64.b64decode(value.encode(), validate=True)
        except (binascii.Error, ValueError):
            return False
        return True
    if fmt == "uuid":
        return bool(_UUID.match(value))
    return True


def validate(value: Any, schema: dict[str, Any], path: str = "") -> list[FieldError]:
    """Validate ``value`` against a structural schema; returns Kubernetes field errors."""
    errs: list[FieldError] = []
    _validate(value, schema, path, errs)
    return errs


def validate_object(obj: dict[str, Any], schema: dict[str, Any]) -> list[FieldError]:
    """Validate a whole custom resource; the root's ``metadata`` is ObjectMeta, not schema."""
    errs: list[FieldError] = []
    props = schema.get("properties") or {}
    for req in schema.get("required") or []:
        if req not in obj:
            errs.append(required(req))
    for key, val in obj.items():
        if key == "metadata" or key not in props:
            continue
        _validate(val, props[key], key, errs)
    return errs


def _validate(value: Any, schema: dict[str, Any], path: str, errs: list[FieldError]) -> None:
    where = path or "body"
    if value is None:
        if schema.get("nullable"):
            return
        types = _types(schema)
        if types:
            errs.append(
                FieldError(
                    "FieldValueTypeInvalid",
                    path,
                    "null",
                    f'{where} in body must be of type {",".join(types)}: "null"',
                )
            )
        return
    types = _types(schema)
    if types and not _type_ok(value, types):
        jt = _json_type(value)
        errs.append(
            FieldError(
                "FieldValueTypeInvalid",
                path,
                jt,
                f'{where} in body must be of type {",".join(types)}: "{jt}"',
            )
        )
        return

    if "enum" in schema and value not in schema["enum"]:
        allowed = [v if isinstance(v, str) else json.dumps(v) for v in schema["enum"]]
        errs.append(
            FieldError(
                "FieldValueNotSupported",
                path,
                value,
                "supported values: " + ", ".join(json.dumps(a) for a in allowed),
            )
        )

    if isinstance(value, str):
        _validate_string(value, schema, path, where, errs)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        _validate_number(value, schema, path, where, errs)
    elif isinstance(value, list):
        _validate_array(value, schema, path, where, errs)
    elif isinstance(value, dict):
        _validate_dict(value, schema, path, where, errs)

    for sub_key in ("allOf", "anyOf", "oneOf", "not"):
        if sub_key in schema:
            _validate_combinator(value, schema, sub_key, path, where, errs)


def _validate_string(
    value: str, schema: dict[str, Any], path: str, where: str, errs: list[FieldError]
) -> None:
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        errs.append(
            FieldError(
                "FieldValueTooLong",
                path,
                value,
                f"may not be more than {schema['maxLength']} bytes",
            )
        )
    if "minLength" in schema and len(value) < schema["minLength"]:
        errs.append(
            invalid(
                path, value, f"{where} in body should be at least {schema['minLength']} chars long"
            )
        )
    pat = schema.get("pattern")
    if pat is not None:
        rx = _PATTERN_CACHE.get(pat)
        if rx is None:
            rx = _PATTERN_CACHE[pat] = re.compile(pat)
        if not rx.search(value):
            errs.append(invalid(path, value, f"{where} in body should match '{pat}'"))
    fmt = schema.get("format")
    if fmt and "string" in _types(schema) and not _format_ok(fmt, value):
        errs.append(invalid(path, value, f'{where} in body must be of type {fmt}: "{value}"'))


def _validate_number(
    value: float, schema: dict[str, Any], path: str, where: str, errs: list[FieldError]
) -> None:
    if "minimum" in schema:
        lo = schema["minimum"]
        if schema.get("exclusiveMinimum") and value <= lo:
            errs.append(invalid(path, value, f"{where} in body should be greater than {lo}"))
        elif value < lo:
            errs.append(
                invalid(path, value, f"{where} in body should be greater than or equal to {lo}")
            )
    if "maximum" in schema:
        hi = schema["maximum"]
        if schema.get("exclusiveMaximum") and value >= hi:
            errs.append(invalid(path, value, f"{where} in body should be less than {hi}"))
        elif value > hi:
            errs.append(
                invalid(path, value, f"{where} in body should be less than or equal to {hi}")
            )
    mult = schema.get("multipleOf")
    if mult and not math.isclose(value / mult, round(value / mult)):
        errs.append(invalid(path, value, f"{where} in body should be a multiple of {mult}"))


def _validate_array(
    value: list[Any], schema: dict[str, Any], path: str, where: str, errs: list[FieldError]
) -> None:
    if "minItems" in schema and len(value) < schema["minItems"]:
        errs.append(
            invalid(path, value, f"{where} in body should have at least {schema['minItems']} items")
        )
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        errs.append(
            FieldError(
                "FieldValueTooMany",
                path,
                len(value),
                f"must have at most {schema['maxItems']} items",
            )
        )
    items = schema.get("items")
    if isinstance(items, dict):
        for i, item in enumerate(value):
            _validate(item, items, _idx(path, i), errs)
    list_type = schema.get("x-kubernetes-list-type")
    if list_type == "set" or schema.get("uniqueItems"):
        seen: list[str] = []
        for i, item in enumerate(value):
            k = json.dumps(item, sort_keys=True)
            if k in seen:
                errs.append(FieldError("FieldValueDuplicate", _idx(path, i), item))
            seen.append(k)
    elif list_type == "map":
        keys = schema.get("x-kubernetes-list-map-keys") or []
        seen_keys: set[str] = set()
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                continue
            ident = {k: item.get(k) for k in keys if k in item}
            k = json.dumps(ident, sort_keys=True)
            if k in seen_keys:
                errs.append(FieldError("FieldValueDuplicate", _idx(path, i), ident))
            seen_keys.add(k)


def _validate_dict(
    value: dict[str, Any], schema: dict[str, Any], path: str, where: str, errs: list[FieldError]
) -> None:
    for req in schema.get("required") or []:
        if req not in value:
            errs.append(required(_child(path, req)))
    if schema.get("x-kubernetes-embedded-resource"):
        for req in ("apiVersion", "kind"):
            if not value.get(req):
                errs.append(required(_child(path, req)))
    if "maxProperties" in schema and len(value) > schema["maxProperties"]:
        errs.append(
            FieldError(
                "FieldValueTooMany",
                path,
                len(value),
                f"must have at most {schema['maxProperties']} items",
            )
        )
    if "minProperties" in schema and len(value) < schema["minProperties"]:
        errs.append(
            invalid(
                path,
                value,
                f"{where} in body should have at least {schema['minProperties']} properties",
            )
        )
    props = schema.get("properties") or {}
    addl = schema.get("additionalProperties")
    for key, item in value.items():
        if key in props:
            _validate(item, props[key], _child(path, key), errs)
        elif isinstance(addl, dict):
            _validate(item, addl, _child(path, key), errs)


def _validate_combinator(
    value: Any, schema: dict[str, Any], kind: str, path: str, where: str, errs: list[FieldError]
) -> None:
    if kind == "not":
        if not validate(value, schema["not"], path):
            errs.append(invalid(path, value, f"{where} in body must not validate the schema (not)"))
        return
    results = [validate(value, sub, path) for sub in schema[kind]]
    ok = sum(1 for r in results if not r)
    if kind == "allOf":
        for r in results:
            errs.extend(r)
    elif kind == "anyOf" and ok == 0:
        errs.append(
            invalid(path, value, f"{where} in body must validate at least one schema (anyOf)")
        )
        for r in results:
            errs.extend(r)
    elif kind == "oneOf" and ok != 1:
        errs.append(
            invalid(path, value, f"{where} in body must validate one and only one schema (oneOf)")
        )
