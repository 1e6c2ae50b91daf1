"""A human approval between the gate and the rollout.

The orchestrators ask (an Airflow HITL operator, a Prefect paused flow run); the engine
writes what they show (`approval_report`: the champion/challenger report as markdown) and
what an answer leaves behind (`record_approval` on the registry, `rejected_outcome`).
No answer before the deadline is a rejection: the champion keeps serving, as when the
gate says no.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from modeldeploy.gate import GateDecision
from modeldeploy.redaction import redact_uri
from modeldeploy.registry import GATE_TAG, TAG_PREFIX, ModelRegistry, ModelVersionInfo

if TYPE_CHECKING:
    from modeldeploy.deployer import ModelDeployer
    from modeldeploy.rollout import RolloutOutcome

APPROVAL_TAG = TAG_PREFIX + "approval"
APPROVED_BY_TAG = TAG_PREFIX + "approval_by"
APPROVAL_REASON_TAG = TAG_PREFIX + "approval_reason"
APPROVAL_AT_TAG = TAG_PREFIX + "approval_at"
#: how long a request waits for an answer unless told otherwise (then: rejected)
DEFAULT_APPROVAL_TIMEOUT_SECONDS = 24 * 3600.0


class ApprovalDecision(BaseModel):
    """A human's answer, or the default one when nobody answered in time."""

    approved: bool
    reason: str = ""
    #: who answered (an Airflow user, the name typed into a Prefect form); None: nobody
    by: str | None = None
    timed_out: bool = False
    decided_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    @classmethod
    def no_answer(cls, waited_seconds: float | None, why: str = "") -> ApprovalDecision:
        """The documented default: nobody answered, so the candidate is rejected."""
        within = f" within {_duration(waited_seconds)}" if waited_seconds else ""
        text = why or f"no answer{within}; an unanswered approval is a rejection"
        return cls(approved=False, reason=text, timed_out=True)

    def describe(self) -> str:
        """`approved by alice: looks good`, `rejected (no answer within 1 h; ...)`."""
        verdict = "approved" if self.approved else "rejected"
        if self.timed_out:
            return f"{verdict}: {self.reason}"
        who = f" by {self.by}" if self.by else ""
        return f"{verdict}{who}" + (f": {self.reason}" if self.reason else "")

    def tags(self) -> dict[str, str]:
        """Model-version tags recording the answer (who, why, when)."""
        return {
            APPROVAL_TAG: "approved" if self.approved else "rejected",
            APPROVED_BY_TAG: self.by or "(nobody)",
            APPROVAL_REASON_TAG: (self.reason or "(none given)")[:5000],
            APPROVAL_AT_TAG: self.decided_at.isoformat(timespec="seconds"),
        }


def approval_report(
    model_name: str,
    metrics: Mapping[str, float] | None = None,
    *,
    model_uri: str | None = None,
    candidate_version: str | None = None,
    champion: ModelVersionInfo | None = None,
    gate: GateDecision | None = None,
    timeout_seconds: float | None = None,
) -> str:
    """The champion/challenger report a reviewer decides on, as markdown: metrics side by
    side, each gate check, and what approve, reject and no answer will do."""
    candidate = f"version {candidate_version}" if candidate_version else "the candidate"
    lines = [f"## {model_name}: deploy {candidate}?", ""]
    if model_uri:
        lines.append(f"- **Candidate:** {candidate} (`{redact_uri(model_uri)}`)")
    if champion is not None:
        serving = redact_uri(champion.model_uri)
        lines.append(f"- **Champion (serving):** version {champion.version} (`{serving}`)")
    else:
        lines.append("- **Champion (serving):** none registered yet")
    lines.append("")
    lines.extend(_metrics_table(metrics or {}, champion.metrics if champion else {}))
    if gate is not None:
        lines.extend(_gate_table(gate))
    lines.extend(_consequences(timeout_seconds))
    return "\n".join(lines).rstrip() + "\n"


def _metrics_table(candidate: Mapping[str, float], champion: Mapping[str, float]) -> list[str]:
    names = sorted(set(candidate) | set(champion))
    if not names:
        return ["No metrics were given.", ""]
    rows = ["| metric | candidate | champion |", "|---|---:|---:|"]
    rows += [f"| {n} | {_num(candidate.get(n))} | {_num(champion.get(n))} |" for n in names]
    return [*rows, ""]


def _gate_table(gate: GateDecision) -> list[str]:
    verdict = "passed" if gate.passed else "rejected"
    rows = [f"**Gate {verdict}.**", ""]
    if gate.checks:
        rows += ["| check | result | detail |", "|---|---|---|"]
        rows += [
            f"| {c.name} | {'passed' if c.passed else 'FAILED'} | {markdown_cell(c.detail)} |"
            for c in gate.checks
        ]
        rows.append("")
    return rows


def _consequences(timeout_seconds: float | None) -> list[str]:
    yes = "the candidate is rolled out"
    no = "the champion keeps serving and the candidate is tagged rejected"
    deadline = f" within {_duration(timeout_seconds)}" if timeout_seconds else ""
    return [
        f"**Approve**: {yes}. **Reject**: {no}, with your name and reason.",
        f"No answer{deadline} counts as **Reject**.",
    ]


def record_approval(
    registry: ModelRegistry,
    model_name: str,
    decision: ApprovalDecision,
    *,
    version: str | None = None,
    model_uri: str | None = None,
    metrics: Mapping[str, float] | None = None,
    lineage: Mapping[str, str | None] | None = None,
) -> ModelVersionInfo | None:
    """Write the answer onto the candidate's model version (who, why, when).

    A candidate rejected before its rollout has no version yet: it is registered now,
    tagged rejected, so the registry shows what was turned down and by whom. An approved
    candidate without a version is left to the deploy, which registers it (returns None).
    """
    tags = decision.tags()
    if version is not None:
        registry.set_version_tags(model_name, version, tags)
        return registry.get_version(model_name, version)
    if decision.approved or model_uri is None:
        return None
    return registry.register_candidate(
        model_name,
        model_uri,
        metrics,
        lineage=lineage,
        extra_tags={
            **tags,
            GATE_TAG: "rejected",
            f"{TAG_PREFIX}gate_reason": f"approval {decision.describe()}"[:5000],
        },
    )


def rejected_outcome(
    deployer: ModelDeployer,
    model_name: str,
    decision: ApprovalDecision,
    registry: ModelRegistry | None = None,
    gate: GateDecision | None = None,
    candidate_version: str | None = None,
) -> RolloutOutcome:
    """What a rejected approval did: nothing changed, the serving model server is kept."""
    from modeldeploy.rollout import RolloutOutcome

    serving = deployer.find_model_server(running=True, model_name=model_name)
    champion = registry.get_champion(model_name) if registry is not None else None
    server = serving[0].info() if serving else None
    kept = (
        f"kept the champion (version {server.model_version}) serving"
        if server is not None
        else f"no model server of {model_name} to keep"
    )
    return RolloutOutcome(
        action="kept" if server is not None else "none",
        message=f"approval {decision.describe()}; {kept}",
        model_name=model_name,
        candidate_version=candidate_version,
        champion_version=champion.version if champion else None,
        decision=gate,
        server=server,
    )


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


def markdown_cell(text: str) -> str:
    """Text safe inside one markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def _duration(seconds: float | None) -> str:
    if not seconds:
        return "no time"
    if seconds % 3600 == 0:
        return f"{seconds / 3600:g} h"
    if seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"
