"""Signature safety: breaking changes are refused with the difference spelled out,
additive ones pass with a note, and the serving input example is replayed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from modeldeploy.flavors.mlflow.deployer import MLflowModelDeployer
from modeldeploy.gate import Gate
from modeldeploy.registry import ModelRegistry
from modeldeploy.rollout import continuous_deploy
from modeldeploy.signature import SignatureChangeError, check_compatible, diff_signatures

from tests.conftest import SavedModels


def _sig(inputs: list[dict[str, Any]], outputs: list[dict[str, Any]] | None = None) -> dict:
    return {"inputs": inputs, "outputs": outputs or [{"type": "long", "required": True}]}


def test_diff_spells_out_breaking_and_additive_changes() -> None:
    serving = _sig(
        [
            {"name": "a", "type": "double", "required": True},
            {"name": "b", "type": "long", "required": True},
            {"name": "c", "type": "string", "required": True},
            {"name": "d", "type": "long", "required": False},
        ]
    )
    candidate = _sig(
        [
            {"name": "a", "type": "float", "required": True},  # narrowed
            {"name": "b", "type": "double", "required": True},  # widened
            {"name": "d", "type": "long", "required": True},  # became required
            {"name": "e", "type": "double", "required": False},  # optional: additive
            {"name": "f", "type": "double", "required": True},  # required: breaking
        ],
        [{"type": "double", "required": True}],
    )
    breaking, additive = diff_signatures(serving, candidate)
    assert breaking == [
        "input 'a' type narrowed from double to float",
        "input 'c' (string) was removed or renamed",
        "input 'd' became required",
        "new required input 'f' (double)",
        "outputs changed from [#0: long] to [#0: double]",
    ]
    assert additive == ["input 'b' widened from long to double", "new optional input 'e' (double)"]
    assert diff_signatures(serving, serving) == ([], [])


@pytest.fixture(scope="module")
def variants(
    tmp_path_factory: pytest.TempPathFactory, saved_models: SavedModels
) -> dict[str, Path]:
    """Iris models: the same four inputs, one input dropped, and one that fails on replay."""
    import mlflow.pyfunc
    import mlflow.sklearn
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    root = tmp_path_factory.mktemp("signatures")
    features, target = load_iris(return_X_y=True, as_frame=True)
    requirements = mlflow.sklearn.get_default_pip_requirements()
    fewer = features.drop(columns=["petal width (cm)"])
    mlflow.sklearn.save_model(
        LogisticRegression(max_iter=500).fit(fewer, target),
        root / "fewer",
        input_example=fewer.head(3),
        pip_requirements=requirements,
    )

    class Fails(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
        def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
            raise ValueError("this model cannot score sepal lengths above 5")

    mlflow.pyfunc.save_model(
        root / "fails",
        python_model=Fails(),
        input_example=features.head(3),
        signature=mlflow.models.Model.load(str(saved_models.first)).signature,  # the same
        pip_requirements=requirements,
    )
    return {"fewer": root / "fewer", "fails": root / "fails"}


def test_check_compatible_on_real_models(saved_models: SavedModels, variants: dict) -> None:
    same = check_compatible(str(saved_models.first), str(saved_models.second))
    assert same.compatible and same.compared and same.replayed
    assert "unchanged" in same.note

    dropped = check_compatible(str(saved_models.first), str(variants["fewer"]))
    assert not dropped.compatible
    assert dropped.breaking == ["input 'petal width (cm)' (double) was removed or renamed"]

    fails = check_compatible(str(saved_models.first), str(variants["fails"]))
    assert not fails.compatible and fails.replayed
    assert "failed on the serving model's input example" in fails.breaking[0]
    assert "cannot score sepal lengths above 5" in fails.breaking[0]

    remote = check_compatible("s3://bucket/model", str(variants["fewer"]))
    assert remote.compatible and not remote.compared  # not read from here: no network


def test_a_breaking_candidate_is_refused_before_anything_changes_unless_allowed(
    mlflow_deployer: MLflowModelDeployer,
    tracking_uri: str,
    saved_models: SavedModels,
    variants: dict[str, Path],
) -> None:
    registry = ModelRegistry(tracking_uri)
    gate = Gate.from_rules([], champion_metric="accuracy")
    base = {"model_name": "iris-sig", "pipeline_name": "cd", "step_name": "deploy"}
    first = continuous_deploy(
        mlflow_deployer, {**base, "model_uri": str(saved_models.first)}, {"accuracy": 0.9},
        gate, registry, timeout=120,
    )  # fmt: skip
    assert first.server is not None

    with pytest.raises(SignatureChangeError) as caught:
        continuous_deploy(
            mlflow_deployer, {**base, "model_uri": str(variants["fewer"])}, {"accuracy": 0.95},
            gate, registry, timeout=120,
        )  # fmt: skip
    message = str(caught.value)
    assert "input 'petal width (cm)' (double) was removed or renamed" in message
    assert "allow_signature_change=True" in message
    versions = registry.client.search_model_versions("name='iris-sig'")
    assert [str(v.version) for v in versions] == ["1"]  # nothing registered
    (server,) = mlflow_deployer.find_model_server(model_name="iris-sig")
    assert server.config.model_uri == str(saved_models.first)

    allowed = continuous_deploy(
        mlflow_deployer, {**base, "model_uri": str(variants["fewer"])}, {"accuracy": 0.95},
        gate, registry, timeout=120, allow_signature_change=True,
    )  # fmt: skip
    assert allowed.action == "updated" and allowed.decision is not None
    assert "signature breaking: input 'petal width (cm)'" in allowed.decision.reason
    assert "(allowed)" in allowed.decision.reason
    assert allowed.decision.checks[-1].name == "signature"
