"""A rollout's state as text: for the CLI, task logs and flow logs alike."""

from __future__ import annotations

from modeldeploy.progressive.analysis import StepAnalysis
from modeldeploy.progressive.state import RolloutState

_FIGURES = (
    ("requests", "requests", "{:.0f}"),
    ("error_rate", "error rate", "{:.4f}"),
    ("p50_ms", "p50", "{:.1f} ms"),
    ("p99_ms", "p99", "{:.1f} ms"),
    ("agreement", "agreement", "{:.3f}"),
    ("accuracy", "accuracy", "{:.3f}"),
    ("rmse", "rmse", "{:.4g}"),
    ("mae", "mae", "{:.4g}"),
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
