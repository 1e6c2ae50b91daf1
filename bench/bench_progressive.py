"""Progressive delivery on the local flavor, each figure printed beside its target.

- failed requests under a steady client through a canary 10 -> 50 -> 100 and an abort
  (a request an idle keep-alive connection dropped unanswered is resent once, as urllib3
  does, and counted as resent);
- the longest gap without an answer in either;
- the traffic share the client measured at each canary step against the share asked for
  (at least 1,000 requests a step);
- how long after the analysis window closes a bad challenger (every answer an error) has
  all traffic back on the champion, and how long after its first error.

Real scoring servers behind the router, a real MLflow registry on SQLite.
Run: .venv/bin/python bench/bench_progressive.py
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _table import print_table  # noqa: E402
from bench_mlflow_local import save_models  # noqa: E402

from tests.progressive.helpers import SteadyClient, save_erroring_model  # noqa: E402

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
SHARE_REQUESTS = 1000
SHARE_TOLERANCE = 5.0
CHAMPION_ANSWER, CHALLENGER_ANSWER = 0, 2
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
            window = [a for a in client.timeline[since:] if a.ok]
            share = 100 * sum(a.prediction == CHALLENGER_ANSWER for a in window) / len(window)
            rows.append((asked, share, len(window)))
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


def bad_challenger(deployer: Any, registry: Any, url: str, body: dict, bad: Path) -> dict:
    """Wall-clock times: first client error, analysis window closed, last client error."""
    from modeldeploy.progressive.runner import rollout_status, run_rollout

    bake = 3.0
    offset = time.time() - time.monotonic()
    with SteadyClient(url, body) as client:
        client.wait_for(50)
        start(
            deployer, registry, bad, {"kind": "canary", "percents": [20], "bake_seconds": bake}, {}
        )
        runner = threading.Thread(target=run_rollout, args=(deployer, "bench", registry))
        runner.start()
        runner.join()
        client.wait_for(200)
    state = rollout_status(deployer, "bench")
    errors = [a.at + offset for a in client.timeline if not a.ok]
    return {
        "phase": state.phase,
        "first_error": errors[0] if errors else float("nan"),
        "last_error": errors[-1] if errors else float("nan"),
        "window_closed": state.history[0].started_at + bake,
        "after": [a for a in client.timeline if a.at + offset > state.finished_at],
    }


def share_rows(
    shares: list[tuple[int, float, int]], prefix: str = ""
) -> list[tuple[str, str, str, bool | None]]:
    """(asked, measured, requests) per step, as table rows against the tolerance."""
    return [
        (
            f"{prefix}share at the {asked}% step ({count} requests)",
            f"{share:.1f}%",
            f"{asked} +/- {SHARE_TOLERANCE:.0f}",
            abs(share - asked) <= SHARE_TOLERANCE and count >= SHARE_REQUESTS,
        )
        for asked, share, count in shares
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
            bad_run = bad_challenger(deployer, registry, url, body, bad)
        finally:
            for server in MLflowModelDeployer({"home": home}).find_model_server():
                server.delete(force=True)
    rows: list[tuple[str, str, str, bool | None]] = [
        ("canary 10->50->100: outcome", phase, "succeeded", phase == "succeeded"),
        (
            "canary: failed requests",
            f"{canary_client.failed} of {canary_client.sent} ({canary_client.retried} resent)",
            "0",
            not canary_client.failed,
        ),
        (
            "canary: longest gap without an answer",
            f"{canary_client.longest_gap() * 1000:.0f} ms",
            "< 1000 ms",
            canary_client.longest_gap() < 1.0,
        ),
    ]
    rows += share_rows(shares)
    rows += [
        (
            "abort at 50%: failed requests",
            f"{abort_client.failed} of {abort_client.sent} ({abort_client.retried} resent)",
            "0",
            not abort_client.failed,
        ),
        (
            "abort: longest gap without an answer",
            f"{abort_client.longest_gap() * 1000:.0f} ms",
            "< 1000 ms",
            abort_client.longest_gap() < 1.0,
        ),
    ]
    back = bad_run["last_error"] - bad_run["window_closed"]
    rows += [
        (
            "bad challenger: outcome",
            bad_run["phase"],
            "rolled_back",
            bad_run["phase"] == "rolled_back",
        ),
        (
            "bad challenger: all traffic on the champion, after the window closed",
            f"{back:.2f} s",
            "< 2 s",
            back < 2.0,
        ),
        (
            "bad challenger: first error to all traffic on the champion",
            f"{bad_run['last_error'] - bad_run['first_error']:.2f} s",
            "bake 3 s + the above",
            None,
        ),
        (
            "bad challenger: failed requests after the rollback",
            str(sum(not a.ok for a in bad_run["after"])),
            "0",
            all(a.ok for a in bad_run["after"]),
        ),
    ]
    print_table("progressive delivery on the local flavor", rows)
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
