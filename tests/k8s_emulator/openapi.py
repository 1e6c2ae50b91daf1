"""``/openapi/v3`` (and a JSON ``/openapi/v2``) built from the served types.

Enough of kube-apiserver's documents for kubectl: each group-version document names its
schemas as apiextensions' builder does (reversed group, version, kind) with the
``x-kubernetes-group-version-kind`` extension (``kubectl explain``), and lists the resource
paths with their PATCH operation declaring the ``fieldValidation`` and ``dryRun`` query
parameters, which kubectl's ``QueryParamVerifierV3`` reads before ``apply`` validates on the
server (``fieldValidation=Strict``).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .resources import Registry, ResourceType

_OBJECT_META = {
    "type": "object",
    "description": "Standard object's metadata. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata",
}


def schema_name(rt: ResourceType) -> str:
    group = ".".join(reversed(rt.group.split("."))) if rt.group else "io.k8s.api.core"
    return f"{group}.{rt.version}.{rt.kind}"


def _gvk(rt: ResourceType) -> list[dict[str, str]]:
    return [{"group": rt.group, "version": rt.version, "kind": rt.kind}]


def _schema(rt: ResourceType) -> dict[str, Any]:
    if rt.schema is not None:
        schema = json.loads(json.dumps(rt.schema))
        props = schema.setdefault("properties", {})
        props["metadata"] = dict(_OBJECT_META)
    else:
        schema = {
            "type": "object",
            "description": f"{rt.kind} (emulated built-in; fields as the real API)",
            "properties": {
                "apiVersion": {"type": "string"},
                "kind": {"type": "string"},
                "metadata": dict(_OBJECT_META),
            },
            "x-kubernetes-preserve-unknown-fields": True,
        }
    schema["x-kubernetes-group-version-kind"] = _gvk(rt)
    return schema


def _params(*names: str) -> list[dict[str, Any]]:
    return [
        {
            "name": n,
            "in": "query",
            "description": n,
            "schema": {"type": "string"},
            "uniqueItems": True,
        }
        for n in names
    ]


def _op(rt: ResourceType, action: str, params: list[dict[str, Any]]) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{schema_name(rt)}"}
    return {
        "operationId": f"{action}{rt.kind}",
        "parameters": params,
        "responses": {"200": {"content": {"application/json": {"schema": ref}}}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": _gvk(rt)[0],
    }


def gv_document(types: list[ResourceType]) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for rt in types:
        prefix = f"/apis/{rt.group}/{rt.version}" if rt.group else f"/api/{rt.version}"
        coll = (
            f"{prefix}/namespaces/{{namespace}}/{rt.plural}"
            if rt.namespaced
            else f"{prefix}/{rt.plural}"
        )
        write = _params("dryRun", "fieldManager", "fieldValidation")
        paths[coll] = {
            "get": _op(rt, "list", _params("labelSelector", "fieldSelector", "watch")),
            "post": _op(rt, "post", write),
        }
        paths[f"{coll}/{{name}}"] = {
            "get": _op(rt, "get", []),
            "put": _op(rt, "put", write),
            "patch": _op(rt, "patch", [*write, *_params("force")]),
            "delete": _op(rt, "delete", _params("dryRun", "propagationPolicy")),
        }
        schemas[schema_name(rt)] = _schema(rt)
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.33.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }


def _key(rt: ResourceType) -> str:
    return f"apis/{rt.group}/{rt.version}" if rt.group else f"api/{rt.version}"


class OpenAPI:
    """Documents computed once per registry (the CRDs do not change while serving)."""

    def __init__(self, registry: Registry) -> None:
        by_gv: dict[str, list[ResourceType]] = {}
        for rt in registry.types:
            by_gv.setdefault(_key(rt), []).append(rt)
        self.docs = {k: json.dumps(gv_document(v)).encode() for k, v in by_gv.items()}
        self.root = json.dumps(
            {
                "paths": {
                    k: {
                        "serverRelativeURL": f"/openapi/v3/{k}?hash="
                        + hashlib.sha512(doc).hexdigest()[:64].upper()
                    }
                    for k, doc in sorted(self.docs.items())
                }
            }
        ).encode()
        v2_defs: dict[str, Any] = {}
        for rt in registry.types:
            v2_defs[schema_name(rt)] = _schema(rt)
        self.v2 = json.dumps(
            {
                "swagger": "2.0",
                "info": {"title": "Kubernetes", "version": "v1.33.0"},
                "paths": {},
                "definitions": v2_defs,
            }
        ).encode()
