"""Progressive delivery through the Kubernetes emulator's loopback ingress, each figure
printed beside its target (the local bench's figures, bench_progressive.py, per platform).

For each platform's routing (KServe by Host, Seldon Core 1 by path, Seldon Core 2 by the
`Seldon-Model` header on the mesh), under a steady keep-alive client:
- failed requests through a canary 10 -> 50 -> 100 (then the old variant withdrawn) and
  through an abort at 50 % (a request an idle keep-alive connection dropped unanswered is
  resent once, as urllib3 does, and counted as resent);
- the longest gap without an answer in either;
- the share of client requests the challenger answered at each step against the share
  asked for (at least 1,000 requests a step).

Real MLflow scoring servers behind the data plane (tests/k8s_emulator/dataplane.py). The
splits are published to the data plane directly, as the emulator's controllers publish
them: this measures the ingress and the table swaps, not a flavor's controller loop.
Run: .venv/bin/python bench/bench_kubernetes_progressive.py [kserve|seldon|seldon2 ...]
"""

from __future__ import annotations

import sys
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _table import print_table  # noqa: E402
from bench_mlflow_local import save_models  # noqa: E402
from bench_progressive import CHALLENGER_ANSWER, SHARE_REQUESTS, share_rows  # noqa: E402

from tests.k8s_emulator.dataplane import Backend, DataPlane  # noqa: E402
from tests.k8s_emulator.dataplane_metrics import (  # noqa: E402
    knative_labels,
    seldon2_labels,
    seldon_labels,
)
from tests.k8s_emulator.ingress_client import IngressClient  # noqa: E402

CHAMPION_URI, CHALLENGER_URI = "s3://bench/iris/1", "s3://bench/iris/2"
Row = tuple[str, str, str, bool | None]


@dataclass(frozen=True)
class Platform:
    """How clients reach one model server on a platform, and its two variants."""

    name: str
    route_key: str
    path: str
    headers: dict[str, str]
    body: Callable[[list[list[float]]], dict[str, Any]]
    variants: Callable[[int], list[Backend]]  # challenger percent -> backends


def _kserve(pct: int) -> list[Backend]:
    names = ("bench-predictor-00001", "bench-predictor-00002")
    return _pair(pct, names, lambda r: knative_labels("default", "bench-predictor", r))


def _pair(
    pct: int, names: tuple[str, str], labels: Callable[[str], dict[str, str]]
) -> list[Backend]:
    """Champion and challenger with `pct` percent of the traffic on the challenger."""
    return [
        Backend(names[0], CHAMPION_URI, 100 - pct, metric_labels=labels(names[0])),
        Backend(names[1], CHALLENGER_URI, pct, metric_labels=labels(names[1])),
    ]


def _seldon(pct: int) -> list[Backend]:
    return _pair(pct, ("champion", "challenger"), lambda p: seldon_labels("bench", p))


def _seldon2(pct: int) -> list[Backend]:
    return _pair(pct, ("bench_1", "bench-2_1"), lambda m: seldon2_labels(m, "mlserver"))


def _tensor(rows: list[list[float]]) -> dict[str, Any]:
    flat = [x for row in rows for x in row]
    shape = [len(rows), len(rows[0])]
    return {"inputs": [{"name": "input-0", "shape": shape, "datatype": "FP64", "data": flat}]}


PLATFORMS = {
    p.name: p
    for p in (
        Platform(
            "kserve",
            "bench.default.example.com",
            "/v1/models/bench:predict",
            {"Host": "bench.default.example.com"},
            lambda rows: {"instances": rows},
            _kserve,
        ),
        Platform(
            "seldon",
            "default/bench",
            "/seldon/default/bench/api/v1.0/predictions",
            {},
            lambda rows: {"data": {"ndarray": rows}},
            _seldon,
        ),
        Platform(
            "seldon2",
            "bench",
            "/v2/models/bench/infer",
            {"Seldon-Model": "bench"},
            _tensor,
            _seldon2,
        ),
    )
}


def served(backends: list[Backend]) -> list[Backend]:
    """Only the variants that take traffic: a withdrawn one is gone from the route."""
    return [b for b in backends if b.weight > 0]


def client(plane: DataPlane, platform: Platform, rows: list[list[float]], pause: float) -> Any:
    return IngressClient(plane.url, platform.path, platform.body(rows), platform.headers, pause)


def canary(plane: DataPlane, platform: Platform, rows: list[list[float]]) -> tuple[Any, list]:
    """10 -> 50 -> 100, >= 1,000 client requests a step, then the champion withdrawn."""
    shares = []
    plane.publish(platform.name, platform.route_key, served(platform.variants(0)))
    with client(plane, platform, rows, 0.0) as steady:
        steady.wait_for(50)
        for asked in (10, 50, 100):
            plane.publish(platform.name, platform.route_key, platform.variants(asked))
            since = len(steady.timeline)
            steady.wait_for(SHARE_REQUESTS, timeout=600)
            window = [a for a in steady.timeline[since:] if a.ok]
            share = 100 * sum(a.prediction == CHALLENGER_ANSWER for a in window) / len(window)
            shares.append((asked, share, len(window)))
        plane.publish(platform.name, platform.route_key, served(platform.variants(100)))
        steady.wait_for(50)
    return steady, shares


def abort(plane: DataPlane, platform: Platform, rows: list[list[float]]) -> Any:
    plane.publish(platform.name, platform.route_key, served(platform.variants(0)))
    with client(plane, platform, rows, 0.002) as steady:
        steady.wait_for(50)
        plane.publish(platform.name, platform.route_key, platform.variants(50))
        steady.wait_for(300)
        plane.publish(platform.name, platform.route_key, served(platform.variants(0)))
        steady.wait_for(100)
    return steady


def figures(platform: str, canary_client: Any, shares: list, abort_client: Any) -> list[Row]:
    rows: list[Row] = []
    for what, steady in (("canary 10->50->100", canary_client), ("abort at 50%", abort_client)):
        gap = steady.longest_gap()
        rows += [
            (
                f"{platform} {what}: failed requests",
                f"{steady.failed} of {steady.sent} ({steady.retried} resent)",
                "0",
                not steady.failed,
            ),
            (f"{platform} {what}: longest gap", f"{gap * 1000:.0f} ms", "< 1000 ms", gap < 1.0),
        ]
    return rows + share_rows(shares, f"{platform} ")


def main(argv: list[str]) -> int:
    warnings.simplefilter("ignore")
    names = argv or list(PLATFORMS)
    unknown = [n for n in names if n not in PLATFORMS]
    if unknown:
        print(f"unknown platform(s) {unknown}; choose from {list(PLATFORMS)}", file=sys.stderr)
        return 2
    table: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench-k8s-progressive-") as tmp:
        first, second, body = save_models(Path(tmp))
        rows = [body["dataframe_split"]["data"][0]]
        plane = DataPlane()
        try:
            plane.register_model(CHAMPION_URI, str(first))
            plane.register_model(CHALLENGER_URI, str(second))
            plane.wait_ready(CHAMPION_URI)
            plane.wait_ready(CHALLENGER_URI)
            for name in names:
                platform = PLATFORMS[name]
                canary_client, shares = canary(plane, platform, rows)
                abort_client = abort(plane, platform, rows)
                table += figures(name, canary_client, shares, abort_client)
        finally:
            plane.close()
    print_table("progressive delivery through the emulator's ingress (publish driven)", table)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
