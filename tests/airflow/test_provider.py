"""The provider as Airflow sees it: valid provider info, listed by `airflow providers`, its
connection forms, templated arguments, and DAG files that stay cheap to parse."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import modeldeploy_provider  # only the provider info: importing it does not import Airflow
import pytest

ROOT = Path(__file__).resolve().parents[2]
CONN_TYPES = (  # default first, then every flavor found by entry point
    "modeldeploy_mlflow",
    "modeldeploy_kserve",
    "modeldeploy_seldon",
    "modeldeploy_seldon2",
)
HEAVY = ("mlflow", "kubernetes", "sklearn", "pandas", "numpy")


def test_provider_info_is_valid_against_airflows_schema() -> None:
    import jsonschema

    schema_path = Path(inspect.getfile(__import__("airflow"))).parent / "provider_info.schema.json"
    info = modeldeploy_provider.get_provider_info()
    jsonschema.validate(info, json.loads(schema_path.read_text()))
    assert info["package-name"] == "modeldeploy"  # must equal the distribution's name
    assert [c["connection-type"] for c in info["connection-types"]] == list(CONN_TYPES)


def test_entry_point_is_the_function() -> None:
    from importlib.metadata import entry_points

    group = entry_points(group="apache_airflow_provider")
    (entry,) = [e for e in group if e.dist is not None and e.dist.name == "modeldeploy"]
    assert entry.value == "modeldeploy_provider:get_provider_info"
    assert entry.load() is modeldeploy_provider.get_provider_info


def test_every_declared_class_and_module_imports() -> None:
    import importlib

    info = modeldeploy_provider.get_provider_info()
    for section in ("hooks", "operators", "sensors", "triggers"):
        for module in info[section][0]["python-modules"]:
            importlib.import_module(module)
    for path in [*info["extra-links"], *(c["hook-class-name"] for c in info["connection-types"])]:
        module, _, name = path.rpartition(".")
        assert hasattr(importlib.import_module(module), name), path


def test_conn_fields_come_from_the_settings_models() -> None:
    declared = modeldeploy_provider.get_provider_info()["connection-types"]
    info = {c["connection-type"]: c for c in declared}
    mlflow = info["modeldeploy_mlflow"]
    assert set(mlflow["conn-fields"]) == {"tracking_uri", "home"}
    assert {"host", "schema", "login", "password", "port"} <= set(
        mlflow["ui-field-behaviour"]["hidden-fields"]
    )
    for conn_type in ("modeldeploy_seldon", "modeldeploy_kserve"):
        fields = info[conn_type]["conn-fields"]
        for name in (
            "kubeconfig",
            "kubeconfig_path",
            "context",
            "namespace",
            "in_cluster",
            "ingress_base_url",
            "secret_name",
            "storage_credentials",
            "tracking_uri",
        ):
            assert name in fields, (conn_type, name)
        assert fields["in_cluster"]["schema"] == {"type": ["boolean", "null"], "default": False}
        assert "default" not in fields["namespace"]["schema"]  # blank: the context's
        secret = {n for n, f in fields.items() if f["schema"].get("format") == "password"}
        # declared once, in the flavor's settings model
        assert secret == {"kubeconfig", "storage_credentials", "tracking_uri"}
        behaviour = info[conn_type]["ui-field-behaviour"]
        assert {"host", "schema", "port", "login", "password"} <= set(behaviour["hidden-fields"])
    from airflow.sdk.module_loading import import_string
    from modeldeploy_provider.hooks.modeldeploy import ModelDeployHook

    for conn_type, entry in info.items():
        hook = import_string(entry["hook-class-name"])
        # what Airflow's providers manager checks (it logs "Inconsistency!" otherwise)
        assert hook.conn_type == conn_type and issubclass(hook, ModelDeployHook), conn_type


def test_airflow_providers_cli_lists_the_provider(airflow_db: Path) -> None:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    listed = subprocess.run(
        [sys.executable, "-m", "airflow", "providers", "list", "-o", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    providers = {p["package_name"]: p for p in json.loads(listed.stdout)}
    assert "modeldeploy" in providers
    assert providers["modeldeploy"]["description"].startswith("Continuous deployment of ML")

    script = (
        "import sys\n"
        "from airflow.cli import cli_parser\n"
        "parser = cli_parser.get_parser()\n"
        "for command in ('get', 'hooks', 'links', 'triggers', 'widgets', 'behaviours'):\n"
        "    extra = ['modeldeploy', '--full'] if command == 'get' else []\n"
        "    args = parser.parse_args(['providers', command, *extra, '-o', 'json'])\n"
        "    print('=====', command, flush=True)\n"
        "    args.func(args)\n"
        "    sys.stdout.flush()\n"
    )
    shown = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert shown.returncode == 0, shown.stderr[-2000:]
    outputs = dict(part.split("\n", 1) for part in shown.stdout.split("===== ")[1:] if "\n" in part)
    got = json.loads(outputs["get"])[0]
    assert got["operators"][0]["python-modules"] == [
        "modeldeploy_provider.operators.modeldeploy",
        "modeldeploy_provider.operators.approval",
    ]
    assert got["sensors"][0]["python-modules"] == ["modeldeploy_provider.sensors.modeldeploy"]
    hooks = {h["connection_type"]: h for h in json.loads(outputs["hooks"])}
    for conn_type in CONN_TYPES:
        assert hooks[conn_type]["package_name"] == "modeldeploy"
        assert hooks[conn_type]["conn_id_attribute_name"] == "modeldeploy_conn_id"
    links = [link["extra_link_class_name"] for link in json.loads(outputs["links"])]
    assert "modeldeploy_provider.links.modeldeploy.PredictionUrlLink" in links
    triggers = [t["class"] for t in json.loads(outputs["triggers"])]
    assert "modeldeploy_provider.triggers.modeldeploy" in triggers
    widgets = {w["connection_parameter_name"]: w for w in json.loads(outputs["widgets"])}
    for conn_type, field in [
        ("modeldeploy_mlflow", "tracking_uri"),
        ("modeldeploy_seldon", "kubeconfig"),
        ("modeldeploy_kserve", "ingress_base_url"),
    ]:
        assert widgets[f"extra__{conn_type}__{field}"]["package_name"] == "modeldeploy"
    assert "modeldeploy_seldon" in outputs["behaviours"]


# --- template fields --------------------------------------------------------------------

#: arguments that choose how the task runs rather than what it deploys
EXECUTION_CONTROL = {"deferrable", "self", "kwargs"}


@pytest.mark.parametrize(
    "name",
    [
        "operators.DeployModelOperator",
        "operators.ModelGateOperator",
        "operators.StartModelServerOperator",
        "operators.StopModelServerOperator",
        "operators.DeleteModelServerOperator",
        "operators.RollbackModelOperator",
        "sensors.ModelServerReadySensor",
    ],
)
def test_every_user_facing_argument_is_templated(name: str) -> None:
    import importlib

    package, _, class_name = name.partition(".")
    module = importlib.import_module(f"modeldeploy_provider.{package}.modeldeploy")
    operator = getattr(module, class_name)
    arguments: set[str] = set()
    for klass in operator.__mro__:
        if klass.__module__.startswith("modeldeploy_provider") and "__init__" in vars(klass):
            arguments |= set(inspect.signature(klass.__init__).parameters)
    missing = arguments - EXECUTION_CONTROL - set(operator.template_fields)
    assert not missing, f"{operator.__name__} does not template {sorted(missing)}"
    assert any(f.endswith("conn_id") for f in operator.template_fields)


def test_rendering_a_deploy_operator(airflow_db: Path) -> None:
    from airflow.sdk import DAG
    from modeldeploy_provider._values import as_bool, as_metrics
    from modeldeploy_provider.operators import modeldeploy as operators

    with DAG("render", schedule=None, params={"n": 3, "model": "iris"}):
        op = operators.DeployModelOperator(
            task_id="deploy",
            modeldeploy_conn_id="md_{{ params.model }}",
            model_name="{{ params.model }}-model",
            model_uri="s3://models/{{ params.model }}/{{ params.n }}",
            service_config={"replicas": "{{ params.n }}", "implementation": "SKLEARN_SERVER"},
            metrics={"accuracy": "{{ 0.5 + 0.4 }}"},
            gate_rules=["accuracy>={{ 0.8 }}"],
            timeout="{{ params.n * 10 }}",
            replace="{{ params.n > 5 }}",
        )
    op.render_template_fields({"params": {"n": 3, "model": "iris"}})
    assert op.modeldeploy_conn_id == "md_iris"
    assert op.model_name == "iris-model"
    assert op.model_uri == "s3://models/iris/3"
    assert op.service_config == {"replicas": "3", "implementation": "SKLEARN_SERVER"}
    assert op.timeout_seconds == 30.0
    gate = op.gate()
    assert gate.thresholds[0].metric == "accuracy" and gate.thresholds[0].at_least == 0.8
    config = op.service_config_for({"run_id": "manual__1"})
    assert config["replicas"] == "3"
    assert config["pipeline_name"] == "render"
    assert config["step_name"] == "deploy"
    assert config["run_id"] == "manual__1"
    assert as_metrics(op.metrics) == {"accuracy": 0.9}
    assert as_bool(op.replace, "replace") is False


def test_bad_template_values_are_named() -> None:
    from airflow.sdk.exceptions import AirflowException
    from modeldeploy_provider._values import as_mapping, as_metrics, as_number

    with pytest.raises(AirflowException, match="timeout must be a number, got 'soon'"):
        as_number("soon", "timeout")
    with pytest.raises(AirflowException, match=r"metrics\['accuracy'\] must be a number"):
        as_metrics({"accuracy": "high"})
    with pytest.raises(AirflowException, match="service_config must be a mapping"):
        as_mapping("[1, 2]", "service_config")
    assert as_mapping("{'replicas': 2}", "service_config") == {"replicas": 2}


# --- import cost --------------------------------------------------------------------------


def test_dag_file_imports_pull_in_no_heavy_library() -> None:
    code = (
        "import sys\n"
        "import modeldeploy_provider.operators.modeldeploy\n"
        "import modeldeploy_provider.sensors.modeldeploy\n"
        "import modeldeploy_provider.hooks.modeldeploy, modeldeploy_provider.links.modeldeploy\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_provider_source_has_no_module_level_heavy_import() -> None:
    for path in (ROOT / "modeldeploy_provider").rglob("*.py"):
        for line in path.read_text().splitlines():
            assert not any(line.startswith((f"import {name}", f"from {name}")) for name in HEAVY), (
                f"{path}: {line}"
            )
            assert "CustomObjectsApi" not in line and "CoreV1Api" not in line, path


def test_model_asset_names_where_the_servers_live(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modeldeploy.flavors import DEFAULT_FLAVOR
    from modeldeploy_provider.records import model_asset

    monkeypatch.setenv("MODELDEPLOY_HOME", str(tmp_path))
    assert model_asset("iris").uri == model_asset("iris", DEFAULT_FLAVOR, tmp_path).uri
    assert str(tmp_path) in model_asset("iris").uri
    assert model_asset("iris", "kserve", "models").uri.startswith("modeldeploy://kserve/models/")
    with pytest.raises(ValueError, match="give namespace="):
        model_asset("iris", "kserve")  # a guess would schedule on an asset nobody updates


def test_the_hook_module_answers_only_for_installed_flavors() -> None:
    """Libraries probe every loaded module with `getattr(module, name, None)` (skops' and
    pickle's `whichmodule`): an unknown name must be an AttributeError, not a flavor error."""
    from modeldeploy_provider.hooks import by_flavor

    assert by_flavor.mlflow.conn_type == "modeldeploy_mlflow"
    assert getattr(by_flavor, "agm", None) is None
    with pytest.raises(AttributeError, match="no attribute 'agm'"):
        by_flavor.agm  # noqa: B018 - the lookup is the test
