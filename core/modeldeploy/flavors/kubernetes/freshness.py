"""Does an object's status describe the generation we wrote, or the one before?

Seldon Core 1 never sets `status.observedGeneration` (its 1.x controller does not), and
KServe's is the generation of a child object, not of the InferenceService, so neither can
be compared with ours. Right after we change a SeldonDeployment its status still says
`Available` for the previous model; the answer comes from history instead: the status at
the moment of our write is stale, and the first status that differs from it (the
controller's "Creating", then its verdict) is current.

History is known in the writing process (the status is in our write's response) and can be
replayed in any other process: each write records, in annotations, the resourceVersion and
generation it replaced, so a watch from that version delivers our write first (its status
is the stale one) and then every status the controller wrote since. If the history was
compacted away (410), the status is taken as it is.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from modeldeploy.flavors.kubernetes.records import PREFIX

ANNOTATION_PREVIOUS_VERSION = PREFIX + "previous-version"
ANNOTATION_PREVIOUS_GENERATION = PREFIX + "previous-generation"
#: flavors add their own write marks under this prefix (see `KubernetesModelServer.mark`)
FLAVOR_MARK_PREFIX = PREFIX + "replaced-"
MARKS = (ANNOTATION_PREVIOUS_VERSION, ANNOTATION_PREVIOUS_GENERATION)


def generation(obj: dict[str, Any]) -> int:
    return int((obj.get("metadata") or {}).get("generation") or 0)


def version(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


def status(obj: dict[str, Any]) -> dict[str, Any]:
    raw = obj.get("status")
    return raw if isinstance(raw, dict) else {}


def mark_write(desired: dict[str, Any], replaced: dict[str, Any]) -> None:
    """Record on `desired` which version and generation this write replaces."""
    meta = desired.setdefault("metadata", {})
    annotations = meta.get("annotations") or {}
    annotations[ANNOTATION_PREVIOUS_VERSION] = version(replaced)
    annotations[ANNOTATION_PREVIOUS_GENERATION] = str(generation(replaced))
    meta["annotations"] = annotations


def unmarked(obj: dict[str, Any]) -> dict[str, Any]:
    """`obj` without our write marks, to tell whether a write would change anything."""
    out = copy.deepcopy(obj)
    annotations = (out.get("metadata") or {}).get("annotations") or {}
    for key in list(annotations):
        if key in MARKS or key.startswith(FLAVOR_MARK_PREFIX):
            annotations.pop(key, None)
    return out


@dataclass
class _Track:
    generation: int
    snapshot: dict[str, Any] | None  # status at our write; None until replayed
    since: str  # resourceVersion to watch from
    fresh: bool = False


class Freshness:
    """Per-server memory of our last write, for statuses without observedGeneration."""

    def __init__(self) -> None:
        self._track: _Track | None = None

    def wrote(self, before: dict[str, Any], after: dict[str, Any]) -> None:
        """We replaced `before` with `after`; a new generation makes the old status stale."""
        if generation(after) > generation(before):
            self._track = _Track(generation(after), copy.deepcopy(status(after)), version(after))

    def begin_wait(self, obj: dict[str, Any]) -> None:
        """Before waiting on `obj`: if another process wrote it, plan to replay its history."""
        g = generation(obj)
        if self._track is not None and self._track.generation == g:
            return
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        since = annotations.get(ANNOTATION_PREVIOUS_VERSION)
        try:
            before = int(annotations.get(ANNOTATION_PREVIOUS_GENERATION, ""))
        except ValueError:
            return
        if since and before < g:
            self._track = _Track(g, None, str(since))

    def start_version(self, obj: dict[str, Any]) -> str | None:
        """Where to start watching: our write's version while its outcome is unknown."""
        t = self._track
        if t is not None and t.generation == generation(obj) and not t.fresh:
            return t.since
        return None

    def forget(self) -> None:
        """The history is gone (410): from now on, take statuses as they are."""
        if self._track is not None and not self._track.fresh:
            self._track = None

    def observed_generation(self, obj: dict[str, Any], from_event: bool) -> int:
        """The generation `obj`'s status describes."""
        raw = status(obj)
        g = generation(obj)
        t = self._track
        if t is not None and t.generation == g:
            if t.fresh:
                return g
            if t.snapshot is None:
                if from_event:  # the first replayed event is our own write
                    t.snapshot = copy.deepcopy(raw)
                return g - 1
            if raw != t.snapshot:
                t.fresh = True
                return g
            return g - 1
        return g if raw else g - 1
