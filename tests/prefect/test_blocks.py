"""Blocks: Prefect's standard suite, registration surface, secrets, and the deployers they
hand out. The save/load round trips run against the test harness's API server."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from abc import ABC
from urllib.error import URLError

import prefect_modeldeploy
import pytest
from prefect.blocks.core import Block
from prefect.testing.standard_test_suites import BlockStandardTestSuite
from prefect_modeldeploy.blocks import (
    BLOCK_TYPES,
    AzureStorageCredentials,
    GCSStorageCredentials,
    KubernetesCredentials,
    MLflowDeployer,
    S3StorageCredentials,
    SeldonDeployer,
)

from tests.prefect import samples


class TestBlockStandards(BlockStandardTestSuite):
    """Prefect's own checks for every block type of the collection."""

    @pytest.fixture(params=BLOCK_TYPES, ids=lambda cls: cls.__name__)
    def block(self, request: pytest.FixtureRequest) -> type[Block]:
        return request.param

    def test_has_a_valid_image(self, block: type[Block]) -> None:
        """The only standard check that may skip: it downloads the logo."""
        if block._logo_url is None:
            pytest.skip("no logo published (_logo_url is optional); nothing to download")
        try:
            super().test_has_a_valid_image(block)
        except URLError as exc:  # pragma: no cover - offline machines
            pytest.skip(f"offline, cannot download the logo: {exc}")


def test_block_register_finds_every_block_type_at_the_package_top() -> None:
    """`prefect block register -m prefect_modeldeploy` registers what inspect.getmembers
    finds at the top of the module, minus interfaces (ABC bases) -- exactly our types."""
    found = {
        cls
        for _, cls in inspect.getmembers(prefect_modeldeploy)
        if Block.is_block_class(cls) and ABC not in cls.__bases__
    }
    assert found == set(BLOCK_TYPES)
    slugs = [cls.get_block_type_slug() for cls in BLOCK_TYPES]
    assert len(set(slugs)) == len(slugs)
    assert all(slug.startswith("modeldeploy-") for slug in slugs)


def test_collection_entry_point_loads() -> None:
    from importlib.metadata import entry_points

    from prefect.plugins import load_prefect_collections

    (entry,) = [e for e in entry_points(group="prefect.collections") if e.name == "modeldeploy"]
    assert entry.value == "prefect_modeldeploy"
    assert load_prefect_collections()["modeldeploy"] is prefect_modeldeploy


def test_importing_the_collection_loads_no_heavy_library() -> None:
    """Prefect imports collections whenever it loads blocks: it must stay cheap. (The
    registry's module is light, mlflow is imported when a registry is used, and a rollout's
    saved state names its approvals, so it may load; MLflow itself must not.)"""
    code = (
        "import sys, prefect_modeldeploy\n"
        "heavy = ['mlflow', 'sklearn', 'kubernetes', 'modeldeploy.rollout']\n"
        "print([m for m in heavy if m in sys.modules])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("name", list(samples.every_block()))
def test_secrets_stay_out_of_repr_str_and_json(name: str) -> None:
    block = samples.every_block()[name]
    shown = [
        repr(block),
        str(block),
        block.model_dump_json(),
        json.dumps(block.model_dump(mode="json")),
    ]
    for text in shown:
        for secret in samples.SECRETS:
            assert secret not in text, f"{secret!r} shown by {name}"
    # ...yet what `save()` sends to the API (include_secrets) carries them.
    revealed = json.dumps(block.model_dump(mode="json", context={"include_secrets": True}))
    if name not in ("mlflow",):
        assert any(secret in revealed for secret in samples.SECRETS)


def test_secret_fields_are_declared_to_prefect() -> None:
    def secret_fields(cls: type[Block]) -> set[str]:
        return set(cls.model_json_schema()["secret_fields"])

    assert secret_fields(KubernetesCredentials) == {"kubeconfig.*"}
    assert secret_fields(S3StorageCredentials) == {"aws_access_key_id", "aws_secret_access_key"}
    assert secret_fields(GCSStorageCredentials) == {"service_account_info.*"}
    assert secret_fields(AzureStorageCredentials) == {"storage_account_key", "client_secret"}
    # generated deployer blocks: the secret settings declared once, in the flavor's model
    assert secret_fields(SeldonDeployer) == {
        "tracking_uri",
        "kubeconfig.*",
        "storage_credentials.*",
    }
    assert secret_fields(MLflowDeployer) == {"tracking_uri"}


@pytest.mark.parametrize(
    ("factory", "kwargs", "expected"),
    [
        (S3StorageCredentials, {"aws_access_key_id": samples.AWS_KEY_ID}, "aws_secret_access_key"),
        (
            S3StorageCredentials,
            {
                "aws_access_key_id": samples.AWS_KEY_ID,
                "aws_secret_access_key": samples.AWS_SECRET,
                "endpoint_url": "ftp://nowhere",
            },
            "endpoint_url",
        ),
        (AzureStorageCredentials, {"storage_account_key": samples.AZURE_KEY}, "account_name"),
        (AzureStorageCredentials, {"client_secret": samples.AZURE_CLIENT_SECRET}, "client_id"),
        (AzureStorageCredentials, {}, "service principal"),
        (GCSStorageCredentials, {"service_account_info": "[" + samples.GCS_PRIVATE_KEY}, "YAML"),
        (
            KubernetesCredentials,
            {"kubeconfig": samples.kubeconfig(), "in_cluster": True},
            "not both",
        ),
        (
            SeldonDeployer,
            {
                "storage_credentials": {
                    "type": "s3",
                    "access_key_id": samples.AWS_KEY_ID,
                    "secret_access_key": samples.AWS_SECRET,
                    "endpoint": "ftp://nowhere",
                }
            },
            "storage_credentials.s3.endpoint",
        ),
    ],
)
def test_bad_blocks_are_refused_without_quoting_secrets(
    factory: type[Block], kwargs: dict, expected: str
) -> None:
    with pytest.raises(ValueError) as caught:
        factory(**kwargs)
    message = str(caught.value)
    assert expected in message
    for secret in samples.SECRETS:
        assert secret not in message


def test_kubeconfig_accepts_pasted_yaml_and_files(tmp_path) -> None:
    import yaml

    text = yaml.safe_dump(samples.kubeconfig())
    assert KubernetesCredentials(kubeconfig=text).kubeconfig.get_secret_value() == (
        samples.kubeconfig()
    )
    path = tmp_path / "config"
    path.write_text(text)
    loaded = KubernetesCredentials.from_file(path, context="ctx")
    assert loaded.to_settings() == {  # no namespace: the context's own, as kubectl does
        "in_cluster": False,
        "kubeconfig": samples.kubeconfig(),
        "context": "ctx",
    }


def test_kubernetes_blocks_hand_out_configured_core_deployers() -> None:
    from modeldeploy.flavors.kserve.deployer import KServeModelDeployer
    from modeldeploy.flavors.kubernetes.credentials import GCSCredentials, S3Credentials
    from modeldeploy.flavors.seldon.deployer import SeldonModelDeployer

    blocks = samples.every_block()
    seldon = blocks["seldon"].get_deployer()
    try:
        assert isinstance(seldon, SeldonModelDeployer)
        s = seldon.settings
        assert (s.namespace, s.context, s.secret_name) == ("models", "ctx", "iris-storage")
        assert s.ingress_base_url == "http://ingress.example.com"
        assert s.kubeconfig == samples.kubeconfig()
        assert isinstance(s.storage_credentials, S3Credentials)
        assert s.storage_credentials.secret_access_key.get_secret_value() == samples.AWS_SECRET
        assert s.storage_credentials.endpoint == "http://minio.minio:9000"
        for secret in samples.SECRETS:
            assert secret not in repr(seldon)
    finally:
        seldon.close()
    kserve = blocks["kserve"].get_deployer()
    try:
        assert isinstance(kserve, KServeModelDeployer)
        assert kserve.settings.namespace == "kserve-models"  # the block's override wins
        assert isinstance(kserve.settings.storage_credentials, GCSCredentials)
        key = json.loads(
            kserve.settings.storage_credentials.service_account_json.get_secret_value()
        )
        assert key["private_key"] == samples.GCS_PRIVATE_KEY
    finally:
        kserve.close()
    azure = SeldonDeployer(storage_credentials=samples.azure_principal()).deployer_settings()
    assert azure["storage_credentials"] == {
        "type": "azure",
        "tenant_id": "tenant",
        "client_id": "client",
        "client_secret": samples.AZURE_CLIENT_SECRET,
    }


def test_mlflow_block_hands_out_a_deployer_and_its_registry(tmp_path, monkeypatch) -> None:
    from modeldeploy.flavors.mlflow.deployer import MLflowModelDeployer

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    block = MLflowDeployer(home=str(tmp_path / "home"))
    deployer = block.get_deployer()
    assert isinstance(deployer, MLflowModelDeployer)
    assert deployer.home == (tmp_path / "home").resolve()
    # With only a state directory, candidates are registered beside the servers.
    registry = block.get_registry()
    assert registry.tracking_uri == f"sqlite:///{(tmp_path / 'home').resolve() / 'mlflow.db'}"
    explicit = MLflowDeployer(home=str(tmp_path), tracking_uri="sqlite:////elsewhere/x.db")
    assert explicit.get_registry().tracking_uri == "sqlite:////elsewhere/x.db"
    assert explicit.get_deployer().tracking_uri == "sqlite:////elsewhere/x.db"


@pytest.mark.usefixtures("prefect_harness")
@pytest.mark.parametrize("name", list(samples.every_block()))
def test_save_and_load_round_trip_keeps_secrets_secret(name: str) -> None:
    from prefect.client.orchestration import get_client

    block = samples.every_block()[name]
    document = f"round-trip-{name}"
    block.save(document, overwrite=True)

    loaded = type(block).load(document)
    assert loaded.model_dump(context={"include_secrets": True}) == block.model_dump(
        context={"include_secrets": True}
    )
    if hasattr(block, "deployer_settings"):
        assert loaded.deployer_settings() == block.deployer_settings()
    # A generic load by "<slug>/<name>" finds the same class (the collection is registered).
    generic = Block.load(f"{type(block).get_block_type_slug()}/{document}")
    assert type(generic) is type(block)

    # What the API hands to anyone reading the document (the UI): secrets masked.
    with get_client(sync_client=True) as client:
        stored = client.read_block_document_by_name(
            document, type(block).get_block_type_slug(), include_secrets=False
        )
    shown = json.dumps(stored.data, default=str)
    for secret in samples.SECRETS:
        assert secret not in shown
    if name != "mlflow":
        assert "********" in shown


def test_a_flavor_found_by_entry_point_gets_its_block_without_code_of_its_own() -> None:
    """The seldon2 flavor ships no Prefect code: its block is generated from its settings."""
    from modeldeploy.flavors.seldon2.deployer import Seldon2ModelDeployer
    from prefect_modeldeploy import Seldon2Deployer

    assert Seldon2Deployer in BLOCK_TYPES
    block = Seldon2Deployer(mesh_url="http://127.0.0.1:9000", namespace="models")
    deployer = block.get_deployer()
    try:
        assert isinstance(deployer, Seldon2ModelDeployer)
        assert (deployer.settings.mesh_url, deployer.settings.namespace) == (
            "http://127.0.0.1:9000",
            "models",
        )
    finally:
        deployer.close()
