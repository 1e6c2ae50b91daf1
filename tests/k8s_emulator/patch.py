"""RFC 7386 JSON merge patch and RFC 6902 JSON patch, with the API server's error classes.

Malformed patch documents are 400 BadRequest; a well-formed JSON patch that cannot be applied
(missing path, failed ``test``) is 422, as in apiserver's ``patchResource``.
"""

from __future__ import annotations

import copy
from typing import Any

from .errors import bad_request, unprocessable_patch


def merge_patch(target: Any, patch: Any) -> Any:
    """Apply a JSON merge patch; ``null`` deletes, objects merge, everything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def _split(pointer: str) -> list[str]:
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise bad_request(f'json patch path "{pointer}" must start with "/"')
    return [_unescape(t) for t in pointer[1:].split("/")]


def _parent(doc: Any, tokens: list[str], op: str, pointer: str) -> tuple[Any, str]:
    cur = doc
    for tok in tokens[:-1]:
        if isinstance(cur, dict) and tok in cur:
            cur = cur[tok]
        elif isinstance(cur, list) and tok.isdigit() and int(tok) < len(cur):
            cur = cur[int(tok)]
        else:
            raise unprocessable_patch(
                f'{op} operation does not apply: doc is missing path: "{pointer}"'
            )
    return cur, tokens[-1]


def _get(doc: Any, pointer: str, op: str) -> Any:
    cur = doc
    for tok in _split(pointer):
        if isinstance(cur, dict) and tok in cur:
            cur = cur[tok]
        elif isinstance(cur, list) and tok.isdigit() and int(tok) < len(cur):
            cur = cur[int(tok)]
        else:
            raise unprocessable_patch(
                f'{op} operation does not apply: doc is missing path: "{pointer}"'
            )
    return cur


def _add(doc: Any, pointer: str, value: Any, op: str = "add") -> Any:
    tokens = _split(pointer)
    if not tokens:
        return value
    parent, last = _parent(doc, tokens, op, pointer)
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-":
            parent.append(value)
        elif last.isdigit() and int(last) <= len(parent):
            parent.insert(int(last), value)
        else:
            raise unprocessable_patch(
                f'{op} operation does not apply: doc is missing path: "{pointer}"'
            )
    else:
        raise unprocessable_patch(
            f'{op} operation does not apply: doc is missing path: "{pointer}"'
        )
    return doc


def _remove(doc: Any, pointer: str, op: str = "remove") -> Any:
    tokens = _split(pointer)
    if not tokens:
        raise unprocessable_patch("unable to remove the whole document")
    parent, last = _parent(doc, tokens, op, pointer)
    if isinstance(parent, dict) and last in parent:
        del parent[last]
    elif isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        del parent[int(last)]
    else:
        raise unprocessable_patch(
            f'{op} operation does not apply: doc is missing path: "{pointer}"'
        )
    return doc


def json_patch(target: Any, ops: Any) -> Any:
    """Apply an RFC 6902 patch to a deep copy of ``target``."""
    if not isinstance(ops, list):
        raise bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    doc = copy.deepcopy(target)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op:
            raise bad_request("invalid JSON patch operation: missing 'op'")
        kind = op["op"]
        path = op.get("path")
        if not isinstance(path, str):
            raise bad_request(f"invalid JSON patch operation {kind!r}: missing 'path'")
        if kind in ("add", "replace", "test") and "value" not in op:
            raise bad_request(f"invalid JSON patch operation {kind!r}: missing 'value'")
        if kind == "add":
            doc = _add(doc, path, copy.deepcopy(op["value"]))
        elif kind == "remove":
            doc = _remove(doc, path)
        elif kind == "replace":
            _get(doc, path, "replace")
            tokens = _split(path)
            if not tokens:
                doc = copy.deepcopy(op["value"])
            else:
                parent, last = _parent(doc, tokens, "replace", path)
                if isinstance(parent, list):
                    parent[int(last)] = copy.deepcopy(op["value"])
                else:
                    parent[last] = copy.deepcopy(op["value"])
        elif kind in ("move", "copy"):
            src = op.get("from")
            if not isinstance(src, str):
                raise bad_request(f"invalid JSON patch operation {kind!r}: missing 'from'")
            value = copy.deepcopy(_get(doc, src, kind))
            if kind == "move":
                doc = _remove(doc, src, kind)
            doc = _add(doc, path, value, kind)
        elif kind == "test":
            if _get(doc, path, "test") != op["value"]:
                raise unprocessable_patch(f"testing value {path} failed: test failed")
        else:
            raise bad_request(f"Unexpected kind: {kind}")
    return doc
