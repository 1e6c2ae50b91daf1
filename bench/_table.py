"""Printing helpers shared by the benchmarks: one table, each figure beside its target."""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def percentile(values: Sequence[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def print_table(title: str, rows: list[tuple[str, str, str, bool | None]]) -> None:
    """Rows of (measure, figure, target, met); `met` None means informational."""
    headers = ("measure", "figure", "target", "met")
    cells = [(m, f, t, "-" if ok is None else ("yes" if ok else "NO")) for m, f, t, ok in rows]
    widths = [max(len(str(r[i])) for r in [headers, *cells]) for i in range(4)]
    print(f"\n## {title}\n")
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
