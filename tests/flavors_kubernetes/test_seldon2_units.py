"""Pure functions of the seldon2 flavor: config rules, the Secret layout, Experiment specs."""

from __future__ import annotations

import json
from typing import Any

import pytest
from modeldeploy.errors import InvalidConfigError
from modeldeploy.flavors import create_deployer
from modeldeploy.flavors.kubernetes.credentials import AzureCredentials, GCSCredentials
from modeldeploy.flavors.seldon2 import resource, storage
from modeldeploy.flavors.seldon2.config import Seldon2Config
from pydantic import ValidationError

BASE = {"model_name": "iris", "model_uri": "s3://models/iris/1", "pipeline_name": "p"}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({}, "give model_type"),
        ({"model_type": "pmml"}, "no Seldon Core 2 capability"),
        ({"model_type": "sklearn", "memory": "lots"}, "not a Kubernetes quantity"),
        ({"requirements": ["a,b"]}, "one capability per item"),
    ],
)
def test_configs_seldon_could_not_place_are_refused(extra: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Seldon2Config.model_validate({**BASE, **extra})


def test_the_model_spec_carries_type_requirements_and_memory() -> None:
    config = Seldon2Config.model_validate(
        {
            **BASE,
            "model_type": "pyfunc",
            "requirements": ["gpu"],
            "replicas": 2,
            "resources": {"requests": {"memory": "1Gi"}},
        }
    )
    assert resource.build_spec(config, "creds") == {
        "storageUri": "s3://models/iris/1",
        "replicas": 2,
        "requirements": ["gpu"],
        "modelType": "mlflow",
        "secretName": "creds",
        "memory": "1Gi",
    }
    assert resource.hosting_server(config) == "mlserver"


@pytest.mark.parametrize(
    ("extra", "settings", "message"),
    [
        ({"service_account_name": "runner"}, {}, "ServiceAccount on the Server"),
        ({"resources": {"limits": {"cpu": "1"}}}, {}, "only declares the memory"),
        (
            {"model_uri": "gs://bucket/iris"},
            {"storage_credentials": {"type": "s3", "access_key_id": "a", "secret_access_key": "b"}},
            "remote 's3'",
        ),
    ],
)
def test_bad_input_is_refused_before_any_request(
    extra: dict[str, Any], settings: dict[str, Any], message: str
) -> None:
    deployer = create_deployer("seldon2", settings)  # no cluster access until a write
    config = deployer.parse_config({**BASE, "model_type": "sklearn", **extra})
    with pytest.raises(InvalidConfigError, match=message):
        deployer.validate_deploy(config)


def test_each_credentials_kind_is_one_remote_named_like_its_uri_prefix() -> None:
    gcs = GCSCredentials(service_account_json='{"type": "service_account"}')
    data, annotations = storage.rclone_config(gcs)
    assert annotations == {} and list(data) == ["gs"]
    assert json.loads(data["gs"]) == {
        "type": "gcs",
        "name": "gs",
        "parameters": {
            "anonymous": False,
            "service_account_credentials": '{"type": "service_account"}',
        },
    }
    azure = AzureCredentials(account_name="acct", account_key="k3y")
    data, _ = storage.rclone_config(azure)
    assert json.loads(data["az"])["parameters"] == {"account": "acct", "key": "k3y"}


def _experiment(spec: dict[str, Any], **conditions: str) -> dict[str, Any]:
    return {
        "metadata": {"name": "iris-rollout"},
        "spec": spec,
        "status": {"conditions": [{"type": t, "status": s} for t, s in conditions.items()]},
    }


def test_the_split_is_read_from_a_ready_experiment_only() -> None:
    spec = resource.experiment_spec("iris", "iris-challenger", 100, 0)
    assert spec["candidates"] == [
        {"name": "iris", "weight": 0},
        {"name": "iris-challenger", "weight": 100},
    ]
    ready = {"ExperimentReady": "True", "CandidatesReady": "True", "MirrorReady": "True"}
    assert resource.applied_split(_experiment(spec, **ready), "iris-challenger") == (100, 0)
    assert resource.applied_split(
        _experiment(spec, **{**ready, "CandidatesReady": "False"}), "iris-challenger"
    ) == (0, 0)
    shadow = resource.experiment_spec("iris", "iris-challenger", 0, 40)
    assert resource.applied_split(_experiment(shadow, **ready), "iris-challenger") == (0, 40)
    assert resource.applied_split(
        _experiment(shadow, **{**ready, "MirrorReady": "False"}), "iris-challenger"
    ) == (0, 0)
