"""Hooks: connection fields become the engine's settings (nothing read from os.environ by
the hook itself), the registry sits beside the local servers, and `test_connection` works."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.k8s_emulator import KubernetesEmulator

# Airflow is imported inside the tests: collecting the suite must not import it, so that
# workers which run no Airflow test never load it.

pytestmark = pytest.mark.usefixtures("airflow_db")


def test_hook_metadata() -> None:
    import modeldeploy_provider.hooks.modeldeploy as hooks
    from modeldeploy_provider.hooks.modeldeploy import ModelDeployHook

    assert ModelDeployHook.conn_name_attr == "modeldeploy_conn_id"
    assert ModelDeployHook.default_conn_name == "modeldeploy_default"
    # one generic hook: no per-flavor subclass, no connection-type map
    assert [n for n in dir(hooks) if n.endswith("Hook")] == ["BaseHook", "ModelDeployHook"]


def test_mlflow_connection_settings(set_connection: Any, tmp_path: Path) -> None:
    from modeldeploy_provider.hooks.modeldeploy import ModelDeployHook

    set_connection(
        "md_local",
        "modeldeploy_mlflow",
        extra={"home": str(tmp_path / "state"), "tracking_uri": "sqlite:////srv/r.db", "x": ""},
    )
    hook = ModelDeployHook("md_local")
    assert hook.flavor == "mlflow"
    assert hook.settings.revealed() == {
        "home": str(tmp_path / "state"),
        "tracking_uri": "sqlite:////srv/r.db",
    }
    assert "sqlite:////srv/r.db" not in repr(hook.settings)  # the tracking URI is secret
    deployer = hook.get_deployer()
    assert deployer.flavor == "mlflow"
    assert deployer.home == (tmp_path / "state").resolve()
    assert hook.get_registry(deployer).tracking_uri == "sqlite:////srv/r.db"


def test_undefined_default_is_the_embedded_local_server(md_home: Path) -> None:
    from modeldeploy_provider.hooks.modeldeploy import ModelDeployHook

    hook = ModelDeployHook()
    assert hook.connection is None
    assert hook.flavor == "mlflow"
    assert hook.settings.revealed() == {"home": None, "tracking_uri": None}
    deployer = hook.get_deployer()
    assert deployer.home == md_home.resolve()
    # the registry is the local store beside the servers
    assert hook.get_registry().tracking_uri == f"sqlite:///{md_home.resolve() / 'mlflow.db'}"


def test_registry_follows_the_connection_home(set_connection: Any, tmp_path: Path) -> None:
    from modeldeploy_provider.hooks.modeldeploy import ModelDeployHook

    set_connection("md_home", "modeldeploy_mlflow", extra={"home": str(tmp_path / "h")})
    registry = ModelDeployHook("md_home").get_registry()
    assert registry.tracking_uri == f"sqlite:///{(tmp_path / 'h').resolve() / 'mlflow.db'}"


def test_kubernetes_connection_settings(set_connection: Any) -> None:
    from modeldeploy_provider.hooks.modeldeploy import ModelDeployHook

    kubeconfig = {"apiVersion": "v1", "kind": "Config", "clusters": [], "users": []}
    set_connection(
        "md_kserve",
        "modeldeploy_kserve",
        login="AKIA-ID",
        password="s3-secret",
        extra={
            "kubeconfig_secret": json.dumps(kubeconfig),
            "context": "prod",
            "namespace": "models",
            "in_cluster": "false",
            "ingress_base_url": "http://gw.example",
            "secret_name": "model-store",
            "storage_type": "s3",
            "s3_endpoint": "http://minio:9000",
            "s3_region": "eu-west-1",
            "s3_verify_ssl": False,
            "tracking_uri": "http://mlflow.example",
        },
    )
    hook = ModelDeployHook("md_kserve")
    assert hook.flavor == "kserve"
    settings = hook.settings.revealed()
    assert {k: settings[k] for k in settings if settings[k] is not None} == {
        "kubeconfig": kubeconfig,
        "tracking_uri": "http://mlflow.example",
        "request_timeout": 30.0,
        "max_retries": 8,
        "use_cluster_local_address": False,
        "context": "prod",
        "namespace": "models",
        "in_cluster": False,
        "ingress_base_url": "http://gw.example",
        "secret_name": "model-store",
        "storage_credentials": {
            "type": "s3",
            "access_key_id": "AKIA-ID",
            "secret_access_key": "s3-secret",
            "endpoint": "http://minio:9000",
            "region": "eu-west-1",
            "verify_ssl": False,
            "provider": None,
        },
    }
    assert hook.get_registry().tracking_uri == "http://mlflow.example"


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            {"storage_type": "gcs", "gcs_service_account_json": '{"type": "service_account"}'},
            {"type": "gcs", "service_account_json": '{"type": "service_account"}'},
        ),
        (
            {
                "storage_type": "azure",
                "azure_client_id": "cid",
                "azure_tenant_id": "tid",
                "azure_client_secret": "csecret",
            },
            {"type": "azure", "client_id": "cid", "tenant_id": "tid", "client_secret": "csecret"},
        ),
        ({"namespace": "default"}, None),
    ],
    ids=["gcs", "azure", "none"],
)
def test_storage_credentials(set_connection: Any, extra: dict, expected: Any) -> None:
    from modeldeploy_provider.hooks.modeldeploy import ModelDeployHook

    set_connection("md_seldon", "modeldeploy_seldon", extra=extra)
    settings = ModelDeployHook("md_seldon").settings
    revealed = settings.revealed()["storage_credentials"]
    if expected is None:
        assert revealed is None
    else:
        assert {k: v for k, v in revealed.items() if v is not None} == expected
        assert "csecret" not in repr(settings)


def test_connection_of_no_installed_flavor_is_refused(set_connection: Any) -> None:
    from modeldeploy_provider.hooks.modeldeploy import ModelDeployConnectionError, ModelDeployHook

    set_connection("md_http", "http")
    with pytest.raises(ModelDeployConnectionError, match=r"needs one of .*modeldeploy_mlflow"):
        _ = ModelDeployHook("md_http").settings
    set_connection("md_gone", "modeldeploy_uninstalled")
    with pytest.raises(ModelDeployConnectionError, match="one per installed flavor"):
        _ = ModelDeployHook("md_gone").flavor
    assert ModelDeployHook("md_none").modeldeploy_conn_id == "md_none"
    set_connection("md_kserve", "modeldeploy_kserve")
    assert ModelDeployHook("md_kserve").flavor == "kserve"  # the generic hook takes any


def test_bad_field_values_are_named(set_connection: Any) -> None:
    from modeldeploy_provider.hooks.modeldeploy import ModelDeployConnectionError, ModelDeployHook

    set_connection("md_bad", "modeldeploy_kserve", extra={"in_cluster": "perhaps"})
    with pytest.raises(Exception, match="connection 'md_bad': in_cluster must be true or false"):
        _ = ModelDeployHook("md_bad").settings
    set_connection("md_bad2", "modeldeploy_kserve", extra={"namespace": "Not_A_Namespace"})
    with pytest.raises(ModelDeployConnectionError, match="connection 'md_bad2': invalid kserve"):
        ModelDeployHook("md_bad2").get_deployer()
    set_connection("md_bad4", "modeldeploy_mlflow", extra={"colour": "blue"})
    with pytest.raises(ModelDeployConnectionError, match="colour: mlflow has no such setting"):
        ModelDeployHook("md_bad4").get_deployer()
    set_connection("md_bad3", "modeldeploy_seldon", extra={"storage_type": "ftp"})
    with pytest.raises(ModelDeployConnectionError, match="storage_type must be s3, gcs or azure"):
        _ = ModelDeployHook("md_bad3").settings


def test_hook_does_not_touch_the_environment(set_connection: Any, tmp_path: Path) -> None:
    from modeldeploy_provider.hooks.modeldeploy import ModelDeployHook

    set_connection("md_local", "modeldeploy_mlflow", extra={"home": str(tmp_path)})
    before = dict(os.environ)
    hook = ModelDeployHook("md_local")
    hook.get_deployer()
    hook.get_registry()
    assert dict(os.environ) == before


def test_test_connection(
    set_connection: Any, k8s_emulator: KubernetesEmulator, md_home: Path
) -> None:
    from modeldeploy_provider.hooks.modeldeploy import ModelDeployHook

    set_connection(
        "md_ok",
        "modeldeploy_seldon",
        extra={"kubeconfig_secret": json.dumps(k8s_emulator.kubeconfig_dict())},
    )
    ok, message = ModelDeployHook("md_ok").test_connection()
    assert ok, message
    assert message == "seldon deployer is reachable: 0 model server(s), 0 running"

    unreachable = k8s_emulator.kubeconfig_dict()
    unreachable["clusters"][0]["cluster"]["server"] = "http://127.0.0.1:9"  # discard port
    set_connection(
        "md_down",
        "modeldeploy_seldon",
        extra={"kubeconfig_secret": json.dumps(unreachable)},
    )
    ok, message = ModelDeployHook("md_down").test_connection()
    assert not ok
    assert k8s_emulator.token not in message

    ok, message = ModelDeployHook().test_connection()  # the embedded default
    assert ok and message.startswith("mlflow deployer is reachable")


def test_airflow_connections_test_cli(
    set_connection: Any, k8s_emulator: KubernetesEmulator, airflow_db: Path
) -> None:
    """The documented alternative to the UI's Test button on Airflow 3.3 (see docs)."""
    import os
    import subprocess
    import sys

    set_connection(
        "md_cli",
        "modeldeploy_kserve",
        extra={"kubeconfig_secret": json.dumps(k8s_emulator.kubeconfig_dict())},
    )
    airflow = Path(sys.executable).with_name("airflow")
    done = subprocess.run(
        [str(airflow), "connections", "test", "md_cli"],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Connection success!" in done.stdout
    assert k8s_emulator.token not in done.stdout + done.stderr
