"""docs/concepts.md documents every field of every result model, and the docs show how a
training task logs its model where the deployer's registry finds it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from modeldeploy.approval import ApprovalDecision
from modeldeploy.deployer import DeployResult, PendingDeploy
from modeldeploy.gate import CheckResult, GateDecision
from modeldeploy.reconcile import ReconcileReport
from modeldeploy.records import DeploymentRecord
from modeldeploy.registry import ModelVersionInfo
from modeldeploy.rollout import RolloutOutcome
from modeldeploy.server import ModelServerInfo
from modeldeploy.signature import SignatureReport
from modeldeploy.verification import VerificationResult
from pydantic import BaseModel

DOCS = Path(__file__).resolve().parents[2] / "docs"
RESULTS = [
    GateDecision, CheckResult, RolloutOutcome, DeployResult, PendingDeploy, ModelServerInfo,
    VerificationResult, SignatureReport, ReconcileReport, ModelVersionInfo, DeploymentRecord,
    ApprovalDecision,
]  # fmt: skip


@pytest.mark.parametrize("model", RESULTS, ids=lambda m: m.__name__)
def test_every_field_of_every_result_model_is_documented(model: type[BaseModel]) -> None:
    text = (DOCS / "concepts.md").read_text()
    heading = f"### `{model.__name__}`"
    assert heading in text, f"docs/concepts.md has no section {heading}"
    section = text.split(heading, 1)[1].split("\n#", 1)[0]
    documented = set(re.findall(r"^\| `(\w+)` \|", section, re.MULTILINE))
    assert documented == set(model.model_fields), (
        f"{model.__name__}: undocumented {set(model.model_fields) - documented}, "
        f"stale {documented - set(model.model_fields)}"
    )


@pytest.mark.parametrize(
    ("page", "registry_from"),
    [("airflow.md", "ModelDeployHook("), ("prefect.md", ".get_registry()")],
)
def test_docs_show_training_logging_to_the_deployers_registry(
    page: str, registry_from: str
) -> None:
    text = (DOCS / page).read_text()
    section = text.split("## Logging the model where the deployer finds it", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert registry_from in code and "using_tracking_uri()" in code
    assert ".model_uri" in code and "models:/" in section


def test_quickstart_shows_what_the_demo_prints() -> None:
    """The sample summary's labels are the demo's own, and the curl body fits its model."""
    import json

    from sklearn.datasets import load_iris

    text = (DOCS / "quickstart.md").read_text()
    demo = (DOCS.parent / "example_dags" / "run_airflow_demo.py").read_text()
    sample = text.split("```text\n", 1)[1].split("```", 1)[0]
    labels = [line.split(":", 1)[0] for line in sample.splitlines() if line]
    assert labels == [
        "Prediction URL", "Accuracy", "Gate", "Rollout", "Live check", "Predictions",
        "Model server",
    ]  # fmt: skip
    for label in labels:
        assert f'print(f"{label}: ' in demo, label
    body = json.loads(text.split("-d '", 1)[1].split("'", 1)[0])
    columns = list(load_iris(as_frame=True).data.columns)
    assert body["dataframe_split"]["columns"] == columns
