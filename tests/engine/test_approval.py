"""The approval request's report and what an answer writes into the real MLflow registry."""

from __future__ import annotations

from pathlib import Path

import pytest
from modeldeploy.approval import (
    APPROVAL_REASON_TAG,
    APPROVAL_TAG,
    APPROVED_BY_TAG,
    ApprovalDecision,
    approval_report,
    record_approval,
)
from modeldeploy.gate import Gate
from modeldeploy.registry import GATE_TAG, ModelRegistry

from tests.conftest import SavedModels


@pytest.fixture
def registry(tracking_uri: str) -> ModelRegistry:
    return ModelRegistry(tracking_uri)


def test_report_sets_candidate_beside_champion_with_gate_checks(
    registry: ModelRegistry, saved_models: SavedModels
) -> None:
    first = registry.register_candidate("iris", str(saved_models.first), {"accuracy": 0.91})
    registry.promote("iris", first.version)
    champion = registry.get_champion("iris")
    gate = Gate.from_rules(["accuracy>=0.9"], champion_metric="accuracy")
    decision = gate.evaluate({"accuracy": 0.95, "f1": 0.94}, champion.metrics if champion else None)

    text = approval_report(
        "iris",
        {"accuracy": 0.95, "f1": 0.94},
        model_uri="runs:/abc/model",
        champion=champion,
        gate=decision,
        timeout_seconds=3600,
    )

    assert text.startswith("## iris: deploy the candidate?")
    assert "(`runs:/abc/model`)" in text
    assert f"version {first.version} (`{saved_models.first}`)" in text
    assert "| accuracy | 0.95 | 0.91 |" in text
    assert "| f1 | 0.94 |  |" in text  # the champion has no f1
    assert "**Gate passed.**" in text
    assert "| champion:accuracy | passed | accuracy 0.95 vs champion 0.91" in text
    assert "No answer within 1 h counts as **Reject**." in text


def test_report_hides_a_password_in_the_model_uri() -> None:
    text = approval_report("iris", {}, model_uri="https://bob:hunter2@models.example/iris.tgz")
    assert "hunter2" not in text
    assert "models.example/iris.tgz" in text


def test_report_without_champion_or_gate_says_so() -> None:
    text = approval_report("iris", {}, candidate_version="4")
    assert "## iris: deploy version 4?" in text
    assert "none registered yet" in text
    assert "No metrics were given." in text
    assert "Gate" not in text
    assert "No answer counts as **Reject**." in text


def test_rejection_registers_the_candidate_tagged_with_who_and_why(
    registry: ModelRegistry, saved_models: SavedModels
) -> None:
    decision = ApprovalDecision(approved=False, reason="drift on segment B", by="alice")
    version = record_approval(
        registry,
        "iris",
        decision,
        model_uri=str(saved_models.second),
        metrics={"accuracy": 0.97},
        lineage={"pipeline": "train", "run_id": "r1", "step": "approve"},
    )
    assert version is not None
    stored = registry.get_version("iris", version.version)
    assert stored.tags[APPROVAL_TAG] == "rejected"
    assert stored.tags[APPROVED_BY_TAG] == "alice"
    assert stored.tags[APPROVAL_REASON_TAG] == "drift on segment B"
    assert stored.tags[GATE_TAG] == "rejected"
    assert stored.metrics == {"accuracy": 0.97}
    assert registry.get_champion("iris") is None  # nothing was promoted


def test_approval_without_version_leaves_registering_to_the_deploy(
    registry: ModelRegistry, saved_models: SavedModels, tmp_path: Path
) -> None:
    decision = ApprovalDecision(approved=True, by="bob")
    assert record_approval(registry, "iris", decision, model_uri=str(saved_models.first)) is None
    existing = registry.register_candidate("iris", str(saved_models.first), {})
    tagged = record_approval(registry, "iris", decision, version=existing.version)
    assert tagged is not None
    assert tagged.tags[APPROVAL_TAG] == "approved"
    assert tagged.tags[APPROVED_BY_TAG] == "bob"
    assert tagged.tags[APPROVAL_REASON_TAG] == "(none given)"


def test_no_answer_is_a_rejection_that_says_so() -> None:
    decision = ApprovalDecision.no_answer(90)
    assert decision.approved is False
    assert decision.timed_out is True
    assert decision.describe() == (
        "rejected: no answer within 90 s; an unanswered approval is a rejection"
    )
    assert decision.tags()[APPROVED_BY_TAG] == "(nobody)"
    answered = ApprovalDecision(approved=True, by="carol", reason="looks good")
    assert answered.describe() == "approved by carol: looks good"
