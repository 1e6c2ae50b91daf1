"""Label and field selectors with the grammar of k8s.io/apimachinery/pkg/labels and fields.

Parsing errors are raised as 400 BadRequest, as a real server answers a malformed selector.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import ApiError, bad_request
from .validation import label_value, qualified_name

_TOKEN = re.compile(r"\s*(!=|==|=|!|\(|\)|,|>|<|[^\s!=(),<>]+)")


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # exists, !, =, !=, in, notin, gt, lt
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        present = self.key in labels
        val = labels.get(self.key)
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        if self.op in ("=", "in"):
            return present and val in self.values
        if self.op in ("!=", "notin"):
            return not present or val not in self.values
        if not present:
            return False
        try:
            have = int(val or "")
        except ValueError:
            return False
        want = int(self.values[0])
        return have > want if self.op == "gt" else have < want


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise bad_request(f"unable to parse requirement: invalid selector: '{text}'")
        out.append(m.group(1))
        pos = m.end()
    return out


def parse_label_selector(text: str | None) -> list[Requirement]:
    """Parse ``a=b,c!=d,e in (f,g),h notin (i),j,!k,l>1`` into requirements (AND-ed)."""
    if not text or not text.strip():
        return []
    toks = _tokens(text)
    reqs: list[Requirement] = []
    i = 0

    def err(msg: str) -> ApiError:
        return bad_request(f"unable to parse requirement: {msg}")

    while i < len(toks):
        tok = toks[i]
        if tok == "!":
            if i + 1 >= len(toks):
                raise err("found '', expected: identifier")
            key = toks[i + 1]
            _check_key(key)
            reqs.append(Requirement(key, "!"))
            i += 2
        else:
            key = tok
            if key in ("=", "==", "!=", ",", "(", ")"):
                raise err(f"found '{key}', expected: !, identifier, or 'end of string'")
            _check_key(key)
            i += 1
            if i >= len(toks) or toks[i] == ",":
                reqs.append(Requirement(key, "exists"))
            else:
                op = toks[i]
                i += 1
                if op in ("=", "==", "!="):
                    value = ""
                    if i < len(toks) and toks[i] != ",":
                        value = toks[i]
                        i += 1
                    _check_value(value)
                    reqs.append(Requirement(key, "!=" if op == "!=" else "=", (value,)))
                elif op in ("in", "notin"):
                    if i >= len(toks) or toks[i] != "(":
                        raise err(f"found '{toks[i] if i < len(toks) else ''}', expected: '('")
                    i += 1
                    values: list[str] = []
                    while i < len(toks) and toks[i] != ")":
                        if toks[i] != ",":
                            _check_value(toks[i])
                            values.append(toks[i])
                        i += 1
                    if i >= len(toks):
                        raise err("found '', expected: ')'")
                    i += 1
                    reqs.append(Requirement(key, op, tuple(values) or ("",)))
                elif op in (">", "<"):
                    if i >= len(toks):
                        raise err("found '', expected: integer")
                    try:
                        int(toks[i])
                    except ValueError as exc:
                        raise err("for 'Gt', 'Lt' operators, the value must be an integer") from exc
                    reqs.append(Requirement(key, "gt" if op == ">" else "lt", (toks[i],)))
                    i += 1
                else:
                    raise err(f"found '{op}', expected: in, notin, =, ==, !=, gt, lt")
        if i < len(toks):
            if toks[i] != ",":
                raise err(f"found '{toks[i]}', expected: ',' or 'end of string'")
            i += 1
    return reqs


def _check_key(key: str) -> None:
    msgs = qualified_name(key)
    if msgs:
        raise bad_request(
            f'unable to parse requirement: values[0][{key}]: Invalid value: "{key}": {msgs[0]}'
        )


def _check_value(value: str) -> None:
    msgs = label_value(value)
    if msgs:
        raise bad_request(
            f'unable to parse requirement: values[0][{value}]: Invalid value: "{value}": {msgs[0]}'
        )


def labels_match(reqs: list[Requirement], obj: dict[str, Any]) -> bool:
    if not reqs:
        return True
    labels = obj.get("metadata", {}).get("labels") or {}
    return all(r.matches(labels) for r in reqs)


@dataclass(frozen=True)
class FieldRequirement:
    field: str
    op: str  # = or !=
    value: str


def parse_field_selector(
    text: str | None, allowed: dict[str, Callable[[dict[str, Any]], str]]
) -> list[FieldRequirement]:
    """Parse ``metadata.name=x,status.phase!=Running``; unknown fields are 400 as on a server."""
    if not text or not text.strip():
        return []
    reqs = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        m = re.match(r"^([^=!]+?)\s*(==|!=|=)\s*(.*)$", part)
        if not m:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
        fld, op, value = m.group(1).strip(), m.group(2), m.group(3).strip()
        if fld not in allowed:
            known = ", ".join(f'"{k}"' for k in allowed)
            raise bad_request(f'"{fld}" is not a known field selector: only {known}')
        reqs.append(FieldRequirement(fld, "!=" if op == "!=" else "=", value))
    return reqs


def fields_match(
    reqs: list[FieldRequirement],
    obj: dict[str, Any],
    getters: dict[str, Callable[[dict[str, Any]], str]],
) -> bool:
    for r in reqs:
        have = getters[r.field](obj)
        if (have == r.value) != (r.op == "="):
            return False
    return True
