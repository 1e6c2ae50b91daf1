"""`predict()` speaks each documented protocol (issue 3 item 13): Seldon's v1 predictions,
KServe v1, and the v2 Open Inference Protocol, against loopback servers that implement the
documented bodies, and against a real MLServer for v2."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from modeldeploy.errors import PlatformError

from tests.flavors_kubernetes.conftest import Cluster
from tests.flavors_kubernetes.mlserver import IRIS_ROWS, MLServer, MLServerUnavailable, run_mlserver
from tests.flavors_kubernetes.protocol_servers import ProtocolServer

ROWS = [[1.0, 2.0, 3.0, 4.5], [0.5, 0.5, 0.5, 0.5]]  # sums 10.5 and 2.0 -> [1, 0]


@pytest.fixture
def emulated(cluster: Cluster) -> Cluster:
    cluster.requires_emulator()  # the ingress points at loopback servers, not a real gateway
    return cluster


def _deploy_behind(
    cluster: Cluster, make_deployer: Any, servers: list, flavor: str, name: str, **config: Any
) -> tuple[Any, ProtocolServer]:
    """Deploy `name` with the ingress pointing at a fresh loopback protocol server."""
    host = f"{name}.default.example.com" if flavor == "kserve" else None
    server = ProtocolServer("default", name, host=host)
    server.__enter__()
    servers.append(server)
    deployer = make_deployer(flavor, ingress_base_url=server.url)
    model = deployer.deploy_model(
        cluster.config(flavor, name=name, **config), timeout=cluster.timeout
    )
    return model, server


@pytest.fixture
def servers() -> Iterator[list[ProtocolServer]]:
    started: list[ProtocolServer] = []
    yield started
    for server in started:
        server.__exit__()


def test_seldon_protocol_predictions(emulated: Cluster, make_deployer: Any, servers: list) -> None:
    model, http = _deploy_behind(emulated, make_deployer, servers, "seldon", "iris-seldon")

    assert model.predict(ROWS) == [1, 0]
    assert model.predict(np.array(ROWS)) == [1, 0]

    assert model.prediction_url == f"{http.url}/seldon/default/iris-seldon/api/v1.0/predictions"
    assert http.requests[0]["body"] == {"data": {"ndarray": ROWS}}


def test_seldon_v2_protocol_predictions(
    emulated: Cluster, make_deployer: Any, servers: list
) -> None:
    model, http = _deploy_behind(
        emulated, make_deployer, servers, "seldon", "iris-v2s", protocol="v2"
    )

    assert model.predict(np.array(ROWS)) == [[1], [0]]
    assert model.prediction_url.endswith("/seldon/default/iris-v2s/v2/models/iris-v2s/infer")
    [tensor] = http.requests[0]["body"]["inputs"]
    assert tensor["shape"] == [2, 4] and tensor["datatype"] == "FP64"


def test_seldon2_predictions_through_the_mesh_with_the_seldon_model_header(
    emulated: Cluster, make_deployer: Any, servers: list
) -> None:
    mesh = ProtocolServer("default", "iris-mesh", mesh=True)
    servers.append(mesh.__enter__())
    deployer = make_deployer("seldon2", mesh_url=mesh.url)
    model = deployer.deploy_model(
        emulated.config("seldon2", name="iris-mesh"), timeout=emulated.timeout
    )

    assert model.predict(np.array(ROWS)) == [[1], [0]]
    assert model.prediction_url == f"{mesh.url}/v2/models/iris-mesh/infer"
    [request] = mesh.requests
    assert (
        request["seldon_model"] == "iris-mesh" and request["path"] == "/v2/models/iris-mesh/infer"
    )
    assert request["body"]["inputs"][0]["shape"] == [2, 4]


def test_kserve_v1_predictions_through_the_ingress(
    emulated: Cluster, make_deployer: Any, servers: list
) -> None:
    model, http = _deploy_behind(emulated, make_deployer, servers, "kserve", "iris-kv1")

    assert model.predict(ROWS) == [1, 0]

    assert model.prediction_url == "http://iris-kv1.default.example.com/v1/models/iris-kv1:predict"
    request = http.requests[0]
    assert request["path"] == "/v1/models/iris-kv1:predict"
    assert request["host"] == "iris-kv1.default.example.com"  # routed by the service's host
    assert request["body"] == {"instances": ROWS}


def test_kserve_v2_predictions(emulated: Cluster, make_deployer: Any, servers: list) -> None:
    model, _ = _deploy_behind(
        emulated, make_deployer, servers, "kserve", "iris-kv2", protocol_version="v2"
    )

    assert model.predict(ROWS) == [[1], [0]]
    assert model.prediction_url.endswith("/v2/models/iris-kv2/infer")


def test_a_refused_prediction_quotes_the_servers_error(
    emulated: Cluster, make_deployer: Any, servers: list
) -> None:
    model, _ = _deploy_behind(emulated, make_deployer, servers, "kserve", "iris-bad")
    seldon, _ = _deploy_behind(emulated, make_deployer, servers, "seldon", "iris-bad-s")
    with pytest.raises(PlatformError, match=r"400.*instances"):
        model.predict({"instances": "not rows"})
    with pytest.raises(PlatformError, match=r"400.*expected data\.ndarray"):
        seldon.predict({"data": {"tensor": {}}})


# --- a real Open Inference Protocol runtime ----------------------------------------------


@pytest.fixture(scope="session")
def mlserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MLServer]:
    try:
        with run_mlserver(Path(tmp_path_factory.mktemp("mlserver")), "iris-mls") as server:
            yield server
    except MLServerUnavailable as exc:
        pytest.fail(f"MLServer is needed for the v2 protocol test and is unavailable: {exc}")


def test_kserve_v2_predict_against_a_real_mlserver(
    emulated: Cluster, make_deployer: Any, mlserver: MLServer
) -> None:
    deployer = make_deployer("kserve", ingress_base_url=mlserver.url)
    model = deployer.deploy_model(
        emulated.config("kserve", name=mlserver.model_name, protocol_version="v2"),
        timeout=emulated.timeout,
    )

    predictions = model.predict(np.array(IRIS_ROWS))

    assert predictions == [[label] for label in mlserver.expected]
    assert mlserver.expected == [0, 2]  # setosa, virginica: the model really ran
