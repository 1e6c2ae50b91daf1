"""Deployment records: what one rollout, rollback or gate did to a model, built once.

The engine builds a `DeploymentRecord` where serving changes (`modeldeploy.rollout`, the
progressive runner) and keeps it in the MLflow registry as a tag of the version it is
about, so `modeldeploy history` reads a model's history from the registry alone. The
skins only translate a record into their ecosystem's own: an Airflow asset event and
OpenLineage facets, a Prefect event and markdown artifact. URLs and reasons pass through
`modeldeploy.redaction`: a record never carries a secret.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, field_validator

from modeldeploy.gate import GateDecision
from modeldeploy.redaction import redact

if TYPE_CHECKING:
    from modeldeploy.deployer import ModelDeployer
    from modeldeploy.progressive.state import RolloutState
    from modeldeploy.server import ModelServerInfo

#: deployed: the version now serves; rolled_back: it was taken out of service;
#: rejected: the gate refused it (the champion kept serving); reported: a shadow rollout
#: judged it without serving it
RecordAction = Literal["deployed", "rolled_back", "rejected", "reported"]
#: scheme of a model's deployment identity, `modeldeploy://<flavor>/<scope>/<model>`
URI_SCHEME = "modeldeploy"
#: how much of a reason the registry keeps per history entry
MAX_REASON = 2000


class DeploymentRecord(BaseModel):
    """One change (or refused change) of what serves a model, with where and why."""

    model_config = ConfigDict(protected_namespaces=())

    action: RecordAction
    model_name: str
    #: the version the action is about (deployed, rejected, reported or taken out)
    version: str | None = None
    #: the version serving afterwards (None when nothing serves)
    serving_version: str | None = None
    #: the champion before the action
    previous_version: str | None = None
    at: datetime
    reason: str
    flavor: str | None = None
    #: the Kubernetes namespace or the local flavor's home directory
    scope: str | None = None
    server_uuid: str | None = None
    url: str | None = None
    model_uri: str | None = None
    pipeline_name: str | None = None
    run_id: str | None = None
    step_name: str | None = None
    strategy: str = "in_place"
    decision: GateDecision | None = None
    #: a progressive rollout's report (each step's figures against its thresholds)
    report: str | None = None

    @field_validator("reason", "url", "model_uri", "report")
    @classmethod
    def _redacted(cls, value: str | None) -> str | None:
        return None if value is None else redact(value)

    @property
    def uri(self) -> str:
        """The model's deployment identity: one per model, flavor and namespace or home."""
        return model_uri_of(self.flavor or "unknown", self.scope or "default", self.model_name)

    def summary(self) -> str:
        """One line for logs and event payloads."""
        what = {
            "deployed": f"deployed version {self.version}",
            "rolled_back": f"rolled back version {self.version}",
            "rejected": f"gate rejected version {self.version}",
            "reported": f"shadow-tested version {self.version}",
        }[self.action]
        serving = f"; version {self.serving_version} serves" if self.serving_version else ""
        where = f" at {self.url}" if self.url else ""
        return f"{self.model_name}: {what}{serving}{where} ({self.reason})"

    def entry(self) -> dict[str, Any]:
        """What the registry keeps per history entry: no gate checks or report text."""
        kept = self.model_dump(mode="json", exclude={"decision", "report"}, exclude_none=True)
        kept["reason"] = self.reason[:MAX_REASON]
        return kept

    def to_markdown(self) -> str:
        """The record as a report: action, versions, URL, the gate's checks, the rollout."""
        title = {
            "deployed": "Deployed",
            "rolled_back": "Rolled back",
            "rejected": "Rejected by the gate",
            "reported": "Shadow report",
        }[self.action]
        rows = [
            ("Action", self.action),
            ("Version", self.version),
            ("Serving now", self.serving_version),
            ("Previous champion", self.previous_version),
            ("Strategy", self.strategy),
            ("Prediction URL", self.url),
            ("Model server", self.server_uuid),
            ("Flavor", self.flavor),
            ("Namespace or home", self.scope),
            ("Pipeline run", _run_of(self)),
            ("When", self.at.isoformat(timespec="seconds")),
        ]
        lines = [f"# {title}: {self.model_name}", "", self.reason, "", "| | |", "|---|---|"]
        lines += [f"| {name} | {_cell(value)} |" for name, value in rows if value]
        if self.decision is not None:
            verdict = "passed" if self.decision.passed else "rejected"
            lines += ["", f"## Gate: {verdict}", "", "| check | result | detail |", "|---|---|---|"]
            lines += [
                f"| {_cell(c.name)} | {'pass' if c.passed else 'FAIL'} | {_cell(c.detail)} |"
                for c in self.decision.checks
            ]
        if self.report:
            lines += ["", "## Rollout", "", "```", self.report, "```"]
        return "\n".join(lines) + "\n"


def model_uri_of(flavor: str, scope: str, model_name: str) -> str:
    """`modeldeploy://<flavor>/<namespace-or-home>/<model>` (a home keeps its slashes)."""
    return f"{URI_SCHEME}://{flavor}/{scope.strip('/')}/{model_name}"


def build_record(
    action: RecordAction,
    model_name: str,
    *,
    version: str | None,
    serving_version: str | None,
    previous_version: str | None,
    reason: str,
    deployer: ModelDeployer | None = None,
    server: ModelServerInfo | None = None,
    decision: GateDecision | None = None,
    strategy: str = "in_place",
    report: str | None = None,
    run_id: str | None = None,
    at: datetime | None = None,
) -> DeploymentRecord:
    """The record of one action; where and lineage come from the server and deployer."""
    return DeploymentRecord(
        action=action,
        model_name=model_name,
        version=version,
        serving_version=serving_version,
        previous_version=previous_version,
        at=at or datetime.now(UTC),
        reason=reason,
        flavor=server.flavor if server else (deployer.flavor if deployer else None),
        scope=deployer.scope() if deployer is not None else None,
        server_uuid=server.uuid if server else None,
        url=server.prediction_url if server else None,
        model_uri=server.model_uri if server else None,
        pipeline_name=server.pipeline_name if server else None,
        run_id=run_id or (server.run_id if server else None),
        step_name=server.step_name if server else None,
        strategy=strategy,
        decision=decision,
        report=report,
    )


def parse_entry(text: str) -> DeploymentRecord | None:
    """A history entry read back from the registry; None for one this version cannot read."""
    try:
        return DeploymentRecord.model_validate(json.loads(text))
    except ValueError:
        return None


def _run_of(record: DeploymentRecord) -> str | None:
    parts = [p for p in (record.pipeline_name, record.run_id) if p]
    return " / ".join(parts) or None


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


#: a finished progressive rollout's phase, or the runner's word for it, as a record action
_PROGRESSIVE_ACTIONS: dict[str, RecordAction] = {
    "succeeded": "deployed",
    "promoted": "deployed",
    "rolled_back": "rolled_back",
    "reported": "reported",
    "shadowed": "reported",
}


def record_for_rollout(
    state: RolloutState,
    outcome: str,
    reason: str,
    *,
    deployer: ModelDeployer | None = None,
    server: ModelServerInfo | None = None,
    decision: GateDecision | None = None,
    at: datetime | None = None,
) -> DeploymentRecord | None:
    """The record of a progressive rollout that ended in `outcome` (a phase such as
    `succeeded`, or the runner's `promoted`/`shadowed`); None while it is still going."""
    from modeldeploy.progressive.report import render_state

    action = _PROGRESSIVE_ACTIONS.get(outcome)
    if action is None:
        return None
    promoted = action == "deployed"
    record = build_record(
        action,
        state.model_name,
        version=state.candidate_version,
        serving_version=state.candidate_version if promoted else state.champion_version,
        previous_version=state.champion_version,
        reason=reason,
        deployer=deployer,
        server=server,
        decision=decision,
        strategy=state.strategy.kind,
        report=render_state(state),
        at=at,
    )
    return record.model_copy(update={"flavor": record.flavor or state.flavor})
