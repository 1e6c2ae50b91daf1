"""Progressive delivery on the local flavor, each figure printed beside its target.

- failed requests under a steady client through a canary 10 -> 50 -> 100 and an abort
  (a request an idle keep-alive connection dropped unanswered is resent once, as urllib3
  does, and counted as resent);
- the longest gap without an answer in either;
- the traffic share the client measured at each canary step against the share asked for
  (at least 1,000 requests a step);
- how long after the failed verdict a bad challenger (every answer an error) has all
  traffic back on the champion, and whether a client meets it once the rollout finished.

Real scoring servers behind the router, a real MLflow registry on SQLite.
Run: .venv/bin/python bench/bench_progressive.py
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _progressive import (  # noqa: E402
    NO_ANSWER,
    SECOND_ANSWER,
    SHARE_REQUESTS,
    Row,
    VerdictClock,
    back_row,
    client_back,
    share_of,
    share_rows,
    steady_rows,
    stray_row,
)
from _table import print_table  # noqa: E402
from bench_mlflow_local import save_models  # noqa: E402

from tests.progressive.helpers import SteadyClient, save_erroring_model  # noqa: E402

BASE = {"model_name": "bench", "pipeline_name": "bench", "step_name": "deploy"}


def setup(home: Path, first: Path) -> tuple[Any, Any, str]:
    from modeldeploy.flavors.mlflow.deployer import MLflowModelDeployer
    from modeldeploy.registry import ModelRegistry
    from modeldeploy.rollout import continuous_deploy

    uri = f"sqlite:///{home / 'mlflow.db'}"
    deployer = MLflowModelDeployer({"home": home, "tracking_uri": uri})
    registry = ModelRegistry(uri)
    outcome = continuous_deploy(
        deployer, {**BASE, "model_uri": str(first)}, {}, registry=registry, timeout=120
    )
    assert outcome.server is not None and outcome.server.prediction_url
    return deployer, registry, outcome.server.prediction_url


def start(deployer: Any, registry: Any, model: Path, strategy: dict, analysis: dict) -> None:
    """Register the candidate and start it beside the champion (no traffic yet)."""
    from modeldeploy.progressive.runner import advance_rollout, begin_rollout, check_rollout

    parsed, config = check_rollout(deployer, strategy, analysis)
    version = registry.register_candidate("bench", str(model)).version
    service = deployer.parse_config({**BASE, "model_uri": str(model), "model_version": version})
    champion = deployer.find_model_server(model_name="bench")[0]
    state = begin_rollout(deployer, champion, service, parsed, config, candidate_version=version)
    while state.phase == "starting":
        time.sleep(0.1)
        state = advance_rollout(deployer, "bench", registry)


def canary_with_shares(deployer: Any, registry: Any, url: str, body: dict, second: Path) -> list:
    """Walk 10 -> 50 -> 100 by hand so each step gets >= 1,000 client requests."""
    from modeldeploy.progressive.runner import advance_rollout, rollout_status

    rows = []
    canary = {"kind": "canary", "percents": [10, 50, 100], "bake_seconds": 0}
    with SteadyClient(url, body, pause=0.0) as client:
        client.wait_for(50)
        start(deployer, registry, second, canary, {"min_requests": 10})
        while not (state := rollout_status(deployer, "bench")).done:
            asked = state.steps[state.step_index].challenger_percent
            since = len(client.timeline)
            client.wait_for(SHARE_REQUESTS, timeout=300)
            rows.append((asked, *share_of(client, since, SECOND_ANSWER)))
            advance_rollout(deployer, "bench", registry)
        client.wait_for(50)
    return [state.phase, client, rows]


def abort_under_load(deployer: Any, registry: Any, url: str, body: dict, second: Path) -> Any:
    from modeldeploy.progressive.runner import abort_rollout

    with SteadyClient(url, body) as client:
        client.wait_for(50)
        start(deployer, registry, second, {"kind": "canary", "percents": [50]}, {})
        client.wait_for(300)
        abort_rollout(deployer, "bench", registry)
        client.wait_for(100)
    return client


def bad_challenger(deployer: Any, registry: Any, url: str, body: dict, bad: Path) -> list[Row]:
    """A challenger failing every prediction at 20 %, rolled back by the analysis."""
    from modeldeploy.progressive.runner import run_rollout

    bake = 3.0
    with SteadyClient(url, body) as client, VerdictClock() as clock:
        client.wait_for(50)
        start(
            deployer, registry, bad, {"kind": "canary", "percents": [20], "bake_seconds": bake}, {}
        )
        state = run_rollout(deployer, "bench", registry)
        done_at = time.monotonic()
        client.wait_for(200)
    errors = [a.at for a in client.timeline if not a.ok]
    verdict_at = clock.failed_at if clock.failed_at is not None else float("nan")
    first = errors[0] if errors else float("nan")
    return [
        ("bad challenger: outcome", state.phase, "rolled_back", state.phase == "rolled_back"),
        back_row("bad challenger", client_back(client, NO_ANSWER, verdict_at), "last error"),
        stray_row("bad challenger", client, NO_ANSWER, done_at),
        (
            "bad challenger: first error to the verdict",
            f"{verdict_at - first:.2f} s",
            f"bake {bake:g} s + one analysis",
            None,
        ),
    ]


def main() -> int:
    warnings.simplefilter("ignore")
    from modeldeploy.flavors.mlflow.deployer import MLflowModelDeployer

    with tempfile.TemporaryDirectory(prefix="bench-progressive-") as tmp:
        root = Path(tmp)
        home = root / "home"
        home.mkdir()
        os.environ["MODELDEPLOY_HOME"] = str(home)
        first, second, body = save_models(root)
        bad = save_erroring_model(root)
        try:
            deployer, registry, url = setup(home, first)
            phase, canary_client, shares = canary_with_shares(deployer, registry, url, body, second)
            # back to the logistic regression as champion for the next two
            deployer, registry, url = setup_again(deployer, registry, first)
            abort_client = abort_under_load(deployer, registry, url, body, second)
            bad_rows = bad_challenger(deployer, registry, url, body, bad)
        finally:
            for server in MLflowModelDeployer({"home": home}).find_model_server():
                server.delete(force=True)
    rows: list[Row] = [
        ("canary 10->50->100: outcome", phase, "succeeded", phase == "succeeded"),
        *steady_rows("canary", canary_client),
        *share_rows(shares),
        *steady_rows("abort at 50%", abort_client),
        *bad_rows,
    ]
    print_table("progressive delivery on the local flavor", rows)
    for name, client in (("canary", canary_client), ("abort", abort_client)):
        for failure in client.failures[:5]:
            print(f"{name}: failed request: {failure}")
    return 0


def setup_again(deployer: Any, registry: Any, first: Path) -> tuple[Any, Any, str]:
    """Make the logistic regression the champion again, in place (same URL)."""
    from modeldeploy.rollout import continuous_deploy

    outcome = continuous_deploy(
        deployer, {**BASE, "model_uri": str(first)}, {}, registry=registry, timeout=120
    )
    assert outcome.server is not None and outcome.server.prediction_url
    return deployer, registry, outcome.server.prediction_url


if __name__ == "__main__":
    sys.exit(main())
