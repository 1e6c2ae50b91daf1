"""Input validation, flavor discovery and the cost of `import core`."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from modeldeploy.errors import FlavorNotFoundError, InvalidConfigError
from modeldeploy.flavors import available_flavors, create_deployer, get_deployer_class
from modeldeploy.flavors.mlflow.config import MLflowServerConfig
from modeldeploy.flavors.mlflow.deployer import MLflowModelDeployer
from modeldeploy.waiting import Deadline, check_timeout


def test_import_core_loads_no_heavy_library() -> None:
    code = (
        "import sys, json, core; from modeldeploy import Gate, ModelDeployer, continuous_deploy;"
        "import modeldeploy.flavors.mlflow.deployer, modeldeploy.cli.main;"
        "print(json.dumps([m for m in ('mlflow','sklearn','pandas','kubernetes','numpy')"
        " if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_mlflow_flavor_is_registered_by_entry_point() -> None:
    assert "mlflow" in available_flavors()
    assert get_deployer_class("mlflow") is MLflowModelDeployer


def test_unknown_flavor_names_the_installed_ones() -> None:
    with pytest.raises(FlavorNotFoundError, match=r"unknown flavor 'torchserve'.*mlflow"):
        create_deployer("torchserve")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("model_name", "my model", "model_name 'my model' is not valid"),
        ("model_name", "", "model_name '' is not valid"),
        ("model_name", "a/b", "is not valid"),
        ("pipeline_name", "-starts-with-dash", "not a valid pipeline or step name"),
        ("model_uri", "   ", "model_uri is empty"),
        ("port", 70000, "port"),
        ("workers", 0, "workers"),
    ],
)
def test_bad_config_is_refused_with_one_clear_line(field: str, value: object, message: str) -> None:
    deployer = MLflowModelDeployer({"home": "/nonexistent/never-created"})
    config = {"model_name": "iris", "model_uri": "/tmp/x", field: value}
    with pytest.raises(InvalidConfigError, match=message) as info:
        deployer.parse_config(config)
    assert "\n" not in str(info.value)


def test_unknown_config_keys_are_refused() -> None:
    with pytest.raises(InvalidConfigError, match="replicas"):
        MLflowModelDeployer({"home": "/tmp"}).parse_config(
            {"model_name": "m", "model_uri": "/m", "replicas": 3}
        )


def test_bad_settings_are_refused() -> None:
    with pytest.raises(InvalidConfigError, match="invalid mlflow deployer settings: namespace"):
        MLflowModelDeployer({"namespace": "prod"})


@pytest.mark.parametrize("timeout", [-1, float("nan"), "soon"])
def test_negative_or_bogus_timeouts_are_refused(timeout: object) -> None:
    with pytest.raises(InvalidConfigError, match="timeout"):
        check_timeout(timeout)  # type: ignore[arg-type]


def test_deadline_counts_down_on_the_monotonic_clock() -> None:
    deadline = Deadline(0)
    assert deadline.expired and deadline.remaining() == 0.0
    assert Deadline(60).remaining() > 59


def test_config_record_carries_the_flavor_and_round_trips() -> None:
    config = MLflowServerConfig(model_name="iris", model_uri="/m", port=8123, run_id="r1")
    record = config.to_record()
    assert record["flavor"] == "mlflow"
    assert MLflowModelDeployer({"home": "/tmp"}).parse_config(record) == config
