"""Rendering for people (tables, descriptions, progress lines) and for scripts (JSON).

Standard library only at module level, so the console script starts fast.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modeldeploy.server import ModelServer
    from modeldeploy.status import ServiceStatus

EMPTY = "-"

LIST_COLUMNS: tuple[tuple[str, str], ...] = (
    ("UUID", "uuid"),
    ("FLAVOR", "flavor"),
    ("MODEL", "model_name"),
    ("VERSION", "model_version"),
    ("PIPELINE", "pipeline_name"),
    ("STEP", "step_name"),
    ("STATE", "state"),
    ("URL", "prediction_url"),
)


def cell(value: Any) -> str:
    """One table cell: None and empty strings become '-', never a line break."""
    if value is None or value == "":
        return EMPTY
    text = getattr(value, "value", value)  # enums print their value
    return " ".join(str(text).split())


def render_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """Columns aligned on the widest cell, two spaces apart, no trailing blanks."""
    cells = [[cell(v) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        if len(row) != len(headers):
            raise ValueError(f"row has {len(row)} cells, table has {len(headers)} columns")
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    lines = []
    for row in [list(headers), *cells]:
        line = "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True))
        lines.append(line.rstrip())
    return "\n".join(lines)


def server_rows(infos: Iterable[Mapping[str, Any]]) -> list[list[Any]]:
    return [[info.get(key) for _, key in LIST_COLUMNS] for info in infos]


def render_server_table(infos: Iterable[Mapping[str, Any]]) -> str:
    return render_table([h for h, _ in LIST_COLUMNS], server_rows(infos))


_DESCRIBE_FIELDS: tuple[tuple[str, str], ...] = (
    ("UUID", "uuid"),
    ("Flavor", "flavor"),
    ("Model", "model_name"),
    ("Version", "model_version"),
    ("Model URI", "model_uri"),
    ("Model type", "model_type"),
    ("Pipeline", "pipeline_name"),
    ("Step", "step_name"),
    ("Run ID", "run_id"),
    ("State", "state"),
    ("URL", "prediction_url"),
    ("Last error", "last_error"),
    ("Created", "created_at"),
    ("Updated", "updated_at"),
)


def render_description(info: Mapping[str, Any]) -> str:
    """`key: value` lines for one server, then the flavor's own config fields."""
    width = max(len(label) for label, _ in _DESCRIBE_FIELDS) + 1
    lines = [f"{label + ':':<{width}}  {cell(info.get(key))}" for label, key in _DESCRIBE_FIELDS]
    shown = {key for _, key in _DESCRIBE_FIELDS} | {"flavor"}
    extra = {
        k: v for k, v in (info.get("config") or {}).items() if k not in shown and v is not None
    }
    if extra:
        lines.append("Config:")
        for key in sorted(extra):
            value = extra[key]
            if isinstance(value, dict | list):
                value = json.dumps(value, sort_keys=True)
            lines.append(f"  {key}: {cell(value)}")
    return "\n".join(lines)


def dump_json(data: Any, stream: IO[str] | None = None) -> None:
    stream = stream or sys.stdout
    json.dump(data, stream, indent=2, sort_keys=False, default=str)
    stream.write("\n")


def short_uuid(uuid: object) -> str:
    return str(uuid)[:8]


class Progress:
    """`on_transition` callback: one stderr line per state change, with elapsed time.

    Seed it with the state a server had before the command acted (`seen`), so the first
    line reads `active -> pending_shutdown` rather than a bare state. The `header` is
    printed just before the first line, so input refused before anything happened still
    ends in a single `error:` line.
    """

    def __init__(
        self,
        stream: IO[str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        header: str | None = None,
    ) -> None:
        self._stream = stream
        self._clock = clock
        self._start = clock()
        self._last: dict[str, str] = {}
        self._header = header
        self.lines: list[str] = []

    @property
    def stream(self) -> IO[str]:
        return self._stream or sys.stderr

    def elapsed(self) -> float:
        return self._clock() - self._start

    def seen(self, uuid: object, state: object) -> None:
        self._last[str(uuid)] = cell(state)

    def say(self, message: str) -> None:
        """A progress line not tied to a state change (e.g. `deleting ...`)."""
        self._emit(f"[{self.elapsed():6.1f}s] {message}")

    def __call__(self, server: ModelServer, status: ServiceStatus) -> None:
        key = str(server.uuid)
        state = cell(status.state)
        before = self._last.get(key)
        self._last[key] = state
        if before == state:
            return
        change = state if before is None else f"{before} -> {state}"
        if status.last_error and state == "error":
            change += f" ({cell(status.last_error)})"
        elif not status.is_current:
            # An in-place update: the previous generation serves while the new one starts.
            change += f" (previous model still serving; waiting for generation {status.generation})"
        version = server.config.model_version
        label = server.config.model_name + (f" v{version}" if version else "")
        self._emit(f"[{self.elapsed():6.1f}s] {short_uuid(key)} {label}: {change}")

    def _emit(self, line: str) -> None:
        if self._header is not None:
            header, self._header = self._header, None
            self._emit(f"[{0.0:6.1f}s] {header}")
        self.lines.append(line)
        print(line, file=self.stream, flush=True)
