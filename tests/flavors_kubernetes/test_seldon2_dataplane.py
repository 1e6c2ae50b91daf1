"""Seldon Core 2 end to end on the emulator's data plane: the flavor's predictions go to the
mesh with `Seldon-Model`, and the Experiment the flavor writes is what splits, mirrors and
then hands all traffic to the promoted model, answered by real MLflow scoring servers.

The two models answer differently for the sample row (class 0, class 2), so each answer says
which variant served it. Emulator only: a real cluster serves its own models.
"""

from __future__ import annotations

import time
import urllib.request
from collections import Counter
from typing import Any

from modeldeploy.traffic import CHALLENGER, TrafficStatus
from modeldeploy.waiting import Deadline

from tests.conftest import SavedModels
from tests.flavors_kubernetes.conftest import Cluster
from tests.flavors_kubernetes.test_seldon2_traffic import _until

FIRST_ANSWER, SECOND_ANSWER = 0, 2
REQUESTS = 200


def _answers(server: Any, row: list[float], n: int) -> Counter[int]:
    """n predictions through the mesh; any failed request fails the test."""
    return Counter(_first(server.predict([row])) for _ in range(n))


def _first(answer: Any) -> int:
    while isinstance(answer, list):
        answer = answer[0]
    return int(answer)


def test_split_mirror_and_promotion_through_the_mesh(
    cluster: Cluster, make_deployer: Any, saved_models: SavedModels
) -> None:
    emu = cluster.requires_emulator()
    plane = emu.dataplane
    plane.rng.seed(20261202)  # the ingress draws each request's variant reproducibly
    first, second = cluster.good_uri("seldon2", 1), cluster.good_uri("seldon2", 2)
    plane.register_model(first, str(saved_models.first))
    plane.register_model(second, str(saved_models.second))
    plane.wait_ready(first)
    plane.wait_ready(second)
    row = saved_models.sample_rows[0]

    deployer = make_deployer("seldon2", mesh_url=plane.url)
    server = deployer.deploy_model(cluster.config("seldon2", version=1), timeout=cluster.timeout)
    assert _answers(server, row, 5) == {FIRST_ANSWER: 5}

    server.add_challenger(deployer.parse_config(cluster.config("seldon2", version=2)))
    _until(server, lambda s: any(v.ready for v in s.variants[1:]), cluster.timeout, "ready")
    assert _answers(server, row, 5) == {FIRST_ANSWER: 5}  # 0 %: the challenger waits

    server.set_traffic(30)
    _until(server, lambda s: s.weight_of(CHALLENGER) == 30, cluster.timeout, "30 %")
    split = _answers(server, row, REQUESTS)
    assert set(split) == {FIRST_ANSWER, SECOND_ANSWER}
    assert abs(split[SECOND_ANSWER] / REQUESTS - 0.30) <= 0.10, split

    server.set_traffic(0, mirror_percent=100)

    def mirrored(s: TrafficStatus) -> bool:
        return s.mirror_percent == 100 and s.weight_of(CHALLENGER) == 0

    _until(server, mirrored, cluster.timeout, "mirror")
    before = _infer_count(plane.metrics_url, f"{server.challenger_name}_1")
    assert _answers(server, row, 20) == {FIRST_ANSWER: 20}  # clients see the champion only
    # mirrored copies are sent off the clients' path: awaited on the data plane's counters
    deadline = time.monotonic() + cluster.timeout
    while _infer_count(plane.metrics_url, f"{server.challenger_name}_1") < before + 20:
        assert time.monotonic() < deadline, "the challenger did not receive the mirrored copies"
        time.sleep(0.1)

    server.promote_challenger()
    server.wait_until_ready(Deadline(cluster.timeout))
    assert emu.wait_for(
        lambda: [r.model_uri for r in emu.seldon2.routes()[server.name]] == [second],
        timeout=cluster.timeout,
    )
    assert _answers(server, row, 10) == {SECOND_ANSWER: 10}


def _infer_count(metrics_url: str, model_internal: str) -> float:
    """`seldon_model_infer_total` summed over the samples of one model version."""
    with urllib.request.urlopen(metrics_url, timeout=10) as response:
        text = response.read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith("seldon_model_infer_total{") and (
            f'model_internal="{model_internal}"' in line
        ):
            total += float(line.rsplit(" ", 1)[1])
    return total
