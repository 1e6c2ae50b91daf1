"""`modeldeploy --flavor seldon|kserve` against the project's Kubernetes API emulator.

The emulator runs in this process on 127.0.0.1; the console script runs in a subprocess
and reaches it through a kubeconfig file, given by option or by `KUBECONFIG`, exactly as
it would reach a cluster.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import assert_one_error_line, clean_env, cli_command

PLURAL = {"seldon": "seldondeployments", "kserve": "inferenceservices"}


@pytest.fixture(params=sorted(PLURAL))
def flavor(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def emulator() -> Iterator[Any]:
    """A fresh emulator with namespaces `default` and `prod` and its controller simulators."""
    from tests.k8s_emulator import KubernetesEmulator

    with KubernetesEmulator(namespaces=["default", "prod"]) as emu:
        yield emu
    assert not emu.internal_errors, emu.internal_errors


@pytest.fixture
def kubeconfig(emulator: Any, tmp_path: Path) -> Path:
    return emulator.write_kubeconfig(tmp_path / "kubeconfig")


@pytest.fixture
def served(flavor: str, kubeconfig: Path) -> Iterator[str]:
    """One active model server in namespace `prod`, deployed through the core API."""
    from modeldeploy.flavors import create_deployer

    deployer = create_deployer(flavor, {"kubeconfig_path": str(kubeconfig), "namespace": "prod"})
    try:
        server = deployer.deploy_model(
            {
                "model_name": "iris",
                "model_uri": "s3://models/iris/1",
                "model_version": "1",
                "model_type": "sklearn",
                "pipeline_name": "train",
                "step_name": "ship",
            },
            timeout=30,
        )
        yield str(server.uuid)
    finally:
        deployer.close()


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*cli_command(), *args],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


def managed(emu: Any, flavor: str) -> list[dict[str, Any]]:
    return [
        o
        for o in emu.list_objects(PLURAL[flavor], "prod")
        if o["metadata"].get("labels", {}).get("app.kubernetes.io/managed-by") == "modeldeploy"
    ]


def test_options_and_environment_select_cluster_and_namespace(
    flavor: str, kubeconfig: Path, served: str, tmp_path: Path
) -> None:
    env = clean_env(tmp_path / "unused-home")
    by_option = ["--flavor", flavor, "--kubeconfig", str(kubeconfig)]
    result = cli(*by_option, "models", "list", env=env)  # namespace "default": nothing there
    assert (result.returncode, result.stdout) == (0, "")
    # says where it looked: namespace and cluster
    assert f"No {flavor} model servers found in namespace default of cluster http" in result.stderr

    result = cli(*by_option, "models", "list", "--namespace", "prod", env=env)
    assert result.returncode == 0, result.stderr
    _header, row = result.stdout.splitlines()
    assert row.split()[:7] == [served, flavor, "iris", "1", "train", "ship", "active"]
    assert row.split()[7].startswith("http")

    by_env = clean_env(
        tmp_path / "unused-home",
        MODELDEPLOY_FLAVOR=flavor,
        KUBECONFIG=str(kubeconfig),
        MODELDEPLOY_NAMESPACE="prod",
    )
    result = cli("models", "list", "--json", env=by_env)
    assert result.returncode == 0, result.stderr
    (item,) = json.loads(result.stdout)
    assert (item["uuid"], item["flavor"], item["state"]) == (served, flavor, "active")
    assert result.stderr == ""  # MODELDEPLOY_HOME does not apply, and says nothing


def test_stop_start_delete_through_the_cli(
    flavor: str,
    kubeconfig: Path,
    served: str,
    emulator: Any,
    tmp_path: Path,
) -> None:
    env = clean_env(
        tmp_path / "unused-home",
        MODELDEPLOY_FLAVOR=flavor,
        KUBECONFIG=str(kubeconfig),
        MODELDEPLOY_NAMESPACE="prod",
    )
    short = served[:8]
    result = cli("models", "stop", served, "--timeout", "30", env=env)
    assert result.returncode == 0, result.stderr
    assert re.search(rf"^\[\s*\d+\.\ds\] {short} iris v1: .*-> inactive$", result.stderr, re.M)
    (item,) = json.loads(cli("models", "list", "--json", env=env).stdout)
    assert item["state"] == "inactive"

    result = cli("models", "start", short, "--timeout", "30", env=env)
    assert result.returncode == 0, result.stderr
    assert re.search(rf"^\[\s*\d+\.\ds\] {short} iris v1: .*-> active$", result.stderr, re.M)
    assert result.stdout.startswith(f"Started {served} at http")

    assert len(managed(emulator, flavor)) == 1
    result = cli("models", "delete", served, env=env)
    assert_one_error_line(result, "refusing to delete")
    assert len(managed(emulator, flavor)) == 1
    result = cli("models", "delete", "-y", served, "--timeout", "30", env=env)
    assert result.returncode == 0, result.stderr
    assert managed(emulator, flavor) == []
    assert json.loads(cli("models", "list", "--json", env=env).stdout) == []


@pytest.mark.parametrize(
    ("flavor_name", "option", "needle"),
    [
        ("kserve", ["--namespace", "Bad_NS"], "namespace 'Bad_NS' is not a valid Kubernetes name"),
        ("seldon", ["--context", "nosuch"], "nosuch"),
        ("kserve", ["--ingress-url", "not-a-url"], "ingress_base_url"),
        ("seldon", ["--setting", "max_retries=-1"], "max_retries"),
    ],
)
def test_bad_cluster_settings_are_one_error_line(
    tmp_path: Path, flavor_name: str, option: list[str], needle: str
) -> None:
    """Refused before any request: the kubeconfig points at a port nobody listens on."""
    import yaml

    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "http://127.0.0.1:9"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "ctx",
            }
        )
    )
    env = clean_env(tmp_path / "unused-home", KUBECONFIG=str(kubeconfig))
    result = cli("--flavor", flavor_name, *option, "models", "list", env=env)
    assert_one_error_line(result, needle)
