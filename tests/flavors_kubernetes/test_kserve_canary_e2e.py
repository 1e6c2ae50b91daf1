"""A KServe canary end to end: the emulator's KServe controller publishes each route it
reports to the loopback ingress, which splits real predictions between the revisions' real
MLflow scoring servers (tests/k8s_emulator/dataplane.py). Clients see the split the status
reports, then only the promoted model, and never a failed request: in Knative mode
(`canaryTrafficPercent`) and in Standard mode (`spec.canary[]`, routed once ready)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from modeldeploy.progressive.runner import begin_rollout, check_rollout, run_rollout
from modeldeploy.progressive.state import RolloutState

from tests.conftest import SavedModels
from tests.flavors_kubernetes.conftest import Cluster
from tests.k8s_emulator.ingress_client import IngressClient

pytestmark = pytest.mark.slow

FIRST_ANSWER, SECOND_ANSWER = 0, 2  # tests/conftest.py: the two saved models disagree


@pytest.mark.parametrize("mode", ["Knative", "Standard"])
def test_clients_see_the_canary_split_then_only_the_promoted_model(
    cluster: Cluster, make_deployer: Any, saved_models: SavedModels, tmp_path: Path, mode: str
) -> None:
    plane = cluster.requires_emulator().dataplane
    first, second = cluster.good_uri("kserve", 1), cluster.good_uri("kserve", 2)
    plane.register_model(first, str(saved_models.first))
    plane.register_model(second, str(saved_models.second))
    plane.wait_ready(first)
    plane.wait_ready(second)
    kserve = make_deployer("kserve", ingress_base_url=plane.url)
    first_config = cluster.config("kserve", version=1, deployment_mode=mode)
    champion = kserve.deploy_model(first_config, timeout=cluster.timeout)
    rows = saved_models.sample_rows[:1]
    assert champion.predict(rows) == [FIRST_ANSWER]  # the flavor's own path through the ingress

    host = urlsplit(champion.obj["status"]["url"]).hostname
    path = f"/v1/models/{champion.name}:predict"
    parsed, analysis = check_rollout(
        kserve,
        {"kind": "canary", "percents": [50], "bake_seconds": 0},
        {"rules": [], "min_requests": 0},
    )
    config = kserve.parse_config(cluster.config("kserve", version=2, deployment_mode=mode))
    store = kserve.rollout_store()
    seen: dict[int, set[Any]] = {}

    with IngressClient(plane.url, path, {"instances": rows}, {"Host": str(host)}) as client:
        client.wait_for(10)
        state = begin_rollout(
            kserve, champion, config, parsed, analysis, store=store, timeout=cluster.timeout
        )

        def on_progress(state: RolloutState) -> None:
            """Hold each applied step until clients have been answered under it."""
            if state.phase == "baking":
                # one client, one request at a time: only the answer in flight now may have
                # been routed by the previous table
                mark = len(client.timeline) + 1
                client.wait_for(60)
                percent = state.steps[state.step_index].challenger_percent
                seen[percent] = set(client.predictions(mark))

        done = run_rollout(
            kserve, state.model_name, store=store, timeout=cluster.timeout * 3,
            on_progress=on_progress,
        )  # fmt: skip
        assert done.phase == "succeeded", done.message
        mark = len(client.timeline) + 1
        client.wait_for(20)
    assert seen == {50: {FIRST_ANSWER, SECOND_ANSWER}, 100: {SECOND_ANSWER}}
    assert set(client.predictions(mark)) == {SECOND_ANSWER}
    assert client.failures == []
    assert kserve.get_model_server(champion.uuid).predict(rows) == [SECOND_ANSWER]
