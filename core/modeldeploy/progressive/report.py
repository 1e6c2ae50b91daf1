"""A rollout's state as text: for the CLI, task logs and flow logs alike."""

from __future__ import annotations

import time

from modeldeploy.approval import markdown_cell
from modeldeploy.progressive.analysis import StepAnalysis
from modeldeploy.progressive.state import RolloutState
from modeldeploy.redaction import redact

_FIGURES = (
    ("requests", "requests", "{:.0f}"),
    ("error_rate", "error rate", "{:.4f}"),
    ("p50_ms", "p50", "{:.1f} ms"),
    ("p99_ms", "p99", "{:.1f} ms"),
    ("agreement", "agreement", "{:.3f}"),
    ("accuracy", "accuracy", "{:.3f}"),
    ("rmse", "rmse", "{:.4g}"),
    ("mae", "mae", "{:.4g}"),
    ("labelled", "labelled", "{:.0f}"),
    ("live_accuracy", "live accuracy", "{:.3f}"),
    ("live_rmse", "live rmse", "{:.4g}"),
    ("live_mae", "live mae", "{:.4g}"),
)


def render_state(state: RolloutState) -> str:
    """Where the rollout stands: split, each step's verdict, figures against thresholds."""
    versions = f"version {state.candidate_version or '?'}"
    if state.champion_version:
        versions += f" against champion {state.champion_version}"
    lines = [f"{state.strategy.kind} rollout of {state.model_name} ({versions}): {state.phase}"]
    step = state.current_step
    if step is not None and not state.done:
        lines.append(f"  step {state.step_index + 1}/{len(state.steps)}: {step.describe()}")
    rules = ", ".join(state.analysis.rules) or "none"
    lines.append(f"  thresholds: {rules}; at least {state.analysis.min_requests} requests a step")
    for record in state.history:
        if record.approval is not None:
            lines.append(f"  step {record.index + 1} entered: {record.approval.describe()}")
        for result in record.analyses:
            lines.extend(render_analysis(record.index, record.step.describe(), result))
    lines.append(f"  {state.message}")
    return "\n".join(lines)


def render_analysis(index: int, split: str, result: StepAnalysis) -> list[str]:
    """One step's verdict, then each variant's figures."""
    lines = [
        f"  step {index + 1} ({split}) after {result.window_seconds:.1f} s: "
        f"{result.verdict}: {result.reason}"
    ]
    for variant, figures in result.figures.items():
        shown = [
            f"{label} {fmt.format(figures[key])}"
            for key, label, fmt in _FIGURES
            if figures.get(key) is not None
        ]
        lines.append(f"    {variant:<10} " + ", ".join(shown))
    return lines


def latest_analysis(state: RolloutState) -> str | None:
    """The newest step analysis as text (what a task log shows after each step)."""
    for record in reversed(state.history):
        if record.analyses:
            return "\n".join(
                render_analysis(record.index, record.step.describe(), record.analyses[-1])
            )
    return None


def step_approval_report(state: RolloutState) -> str:
    """What a reviewer of a held rollout decides on, as markdown: each step so far with its
    verdict and the figures of champion and challenger side by side, then what approve,
    reject and no answer do."""
    held_before = state.step_index + 2  # 1-based number of the step it waits before
    following = state.steps[state.step_index + 1].describe() if state.awaiting_approval else "?"
    versions = f"version {state.candidate_version or '?'}"
    champion = f"version {state.champion_version}" if state.champion_version else "the champion"
    lines = [
        f"## {state.model_name}: enter step {held_before} of {len(state.steps)} ({following})?",
        "",
        f"- **Challenger:** {versions}; **champion (serving):** {champion}",
        f"- **Strategy:** {state.strategy.kind}; thresholds: "
        f"{', '.join(state.analysis.rules) or 'none'}",
        "",
    ]
    for record in state.history:
        if not record.analyses:
            continue
        result = record.analyses[-1]
        lines += [
            f"### Step {record.index + 1} ({record.step.describe()}): {result.verdict}",
            "",
            f"{markdown_cell(result.reason)} (after {result.window_seconds:.1f} s)",
            "",
        ]
        lines += _figures_table(result)
    remaining = max(0.0, state.next_check_at - time.time()) if state.awaiting_approval else None
    within = f" by {at_utc(state.next_check_at)}" if remaining is not None else ""
    lines += [
        f"**Approve**: the challenger enters step {held_before} ({following}) and the "
        "rollout goes on. **Reject**: all traffic back to the champion, the challenger "
        "removed, the champion alias untouched, and the version tagged with your name and "
        "reason.",
        f"No answer{within} counts as **Reject**.",
    ]
    return redact("\n".join(lines).rstrip() + "\n")


def _figures_table(result: StepAnalysis) -> list[str]:
    variants = list(result.figures)
    if not variants:
        return []
    rows = ["| figure | " + " | ".join(variants) + " |", "|---|" + "---:|" * len(variants)]
    for key, label, fmt in _FIGURES:
        values = [result.figures[v].get(key) for v in variants]
        if any(v is not None for v in values):
            cells = ["" if v is None else fmt.format(v) for v in values]
            rows.append(f"| {label} | " + " | ".join(cells) + " |")
    return [*rows, ""]


def at_utc(moment: float) -> str:
    """A wall-clock moment for people: `2026-12-02 05:10:00 UTC`."""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(moment))
