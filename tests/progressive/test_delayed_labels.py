"""Delayed labels: live accuracy or error per variant, joined by request id with what each
variant answered. Sources (file, JSON lines, function, HTTP) and bad input as unit tests of
one function each; then a canary through the real router, whose labels arrive after the
answers and fail the step (with agreement measured on the split's live requests)."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from modeldeploy.errors import InvalidConfigError, PlatformError
from modeldeploy.progressive.analysis import AnalysisConfig
from modeldeploy.progressive.labels import LabelSource, join
from modeldeploy.progressive.queries import ROUTER

from tests.conftest import SavedModels
from tests.progressive.conftest import Serving

ANSWERS = [
    {"request_id": "a", "variant": "champion", "status": 200, "answer": {"predictions": [1]}},
    {"request_id": "a", "variant": "challenger", "status": 200, "answer": {"predictions": [2]}},
    {"request_id": "b", "variant": "champion", "status": 200, "answer": {"predictions": [0, 1]}},
    {"request_id": "c", "variant": "challenger", "status": 200, "answer": {"predictions": [2]}},
    {"request_id": "d", "variant": "challenger", "status": 400, "answer": None},
]
LABELS = {"a": 1, "b": [0, 0], "c": 2, "d": 1}


def fetch_labels(request_ids: list[str]) -> Mapping[str, Any]:
    """A label function as a user writes one (imported by its import string)."""
    return {i: LABELS[i] for i in request_ids if i in LABELS}


def test_labels_are_joined_per_variant_from_a_file_or_json_lines(tmp_path: Path) -> None:
    as_object = tmp_path / "labels.json"
    as_object.write_text(json.dumps(LABELS))
    figures = join(LabelSource(file=as_object, min_labels=2), ANSWERS)
    # champion: a right (1), b one of two rows right; challenger: a wrong, c right
    assert figures["champion"] == {"labelled": 3.0, "live_accuracy": pytest.approx(2 / 3)}
    assert figures["challenger"] == {"labelled": 2.0, "live_accuracy": 0.5}
    lines = tmp_path / "labels.jsonl"
    lines.write_text(
        "".join(json.dumps({"request_id": k, "label": v}) + "\n" for k, v in LABELS.items())
    )
    assert join(LabelSource(file=lines, min_labels=2), ANSWERS) == figures
    # too few labels yet: counted, but not scored
    assert join(LabelSource(file=lines, min_labels=3), ANSWERS)["challenger"] == {"labelled": 2.0}
    # none arrived yet
    assert join(LabelSource(file=tmp_path / "later.json"), ANSWERS) == {}


def test_labels_from_a_function_and_from_http(tmp_path: Path) -> None:
    source = LabelSource(function=f"{__name__}:fetch_labels", task="regression", min_labels=1)
    source.check()
    figures = join(source, ANSWERS)
    assert figures["challenger"]["live_rmse"] == pytest.approx((0.5) ** 0.5)  # errors 1, 0
    assert figures["champion"]["live_mae"] == pytest.approx(1 / 3)

    class Labels(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(LABELS).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Labels)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/labels"
        assert (
            join(LabelSource(url=url, min_labels=2), ANSWERS)["challenger"]["live_accuracy"] == 0.5
        )
    finally:
        server.shutdown()


def test_bad_label_sources_are_refused_with_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="exactly one of url"):
        LabelSource()
    with pytest.raises(ValueError, match="exactly one of url"):
        LabelSource(url="http://127.0.0.1:1/x", file=tmp_path / "x")
    with pytest.raises(ValueError, match="must not carry credentials"):
        LabelSource(url="http://user:hunter22@127.0.0.1:1/labels")
    with pytest.raises(ValueError, match="must not carry credentials"):
        LabelSource(url="http://127.0.0.1:1/labels?token=hunter22")
    with pytest.raises(ValueError, match="import string"):
        LabelSource(function="not a function")
    with pytest.raises(InvalidConfigError, match="cannot be imported"):
        LabelSource(function="no_such_module_here:fetch").check()
    with pytest.raises(InvalidConfigError, match="does not exist"):
        LabelSource(file=tmp_path / "missing" / "labels.json").check()
    with pytest.raises(InvalidConfigError, match="needs delayed labels"):
        AnalysisConfig(rules=["live_accuracy>=0.9"]).check_measurable(mirrors=True, metrics=ROUTER)
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(PlatformError, match="neither a JSON object"):
        join(LabelSource(file=broken), ANSWERS)


@pytest.fixture
def iris_rows() -> Iterator[list[tuple[dict[str, float], int]]]:
    from sklearn.datasets import load_iris

    features, target = load_iris(return_X_y=True, as_frame=True)
    yield list(zip(features.to_dict(orient="records"), (int(y) for y in target), strict=True))


@pytest.mark.slow
def test_a_canary_is_judged_on_delayed_labels_and_live_agreement(
    serving: Serving,
    saved_models: SavedModels,
    iris_rows: list[tuple[dict[str, float], int]],
    tmp_path: Path,
) -> None:
    from modeldeploy.progressive.runner import run_rollout

    labels_file = tmp_path / "labels.json"
    canary = {"kind": "canary", "percents": [50, 100], "bake_seconds": 1}
    analysis = {
        # no probe: agreement can only come from the split's live requests
        "rules": ["live_accuracy>=0.8", "agreement>=0.9"],
        "min_requests": 5,
        "labels": {"file": str(labels_file), "min_labels": 20},
    }
    state = serving.begin(saved_models.second, canary, analysis)
    assert state.phase == "baking" and state.current_step is not None
    assert state.current_step.challenger_percent == 50

    port = urlsplit(serving.url).port
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    truth: dict[str, int] = {}
    for i, (row, label) in enumerate(iris_rows):
        request_id = f"req-{i}"
        body = json.dumps({"dataframe_records": [row]})
        conn.request(
            "POST",
            "/invocations",
            body,
            {"Content-Type": "application/json", "X-Request-Id": request_id},
        )
        response = conn.getresponse()
        assert response.status == 200 and response.getheader("x-request-id") == request_id
        response.read()
        truth[request_id] = label
    conn.close()
    labels_file.write_text(json.dumps(truth))  # the labels arrive after the answers

    state = run_rollout(serving.deployer, "iris", timeout=120)
    assert state.phase == "rolled_back", state.message
    judged = state.history[0].analyses[-1]
    champion_figures, challenger_figures = judged.figures["champion"], judged.figures["challenger"]
    assert champion_figures["live_accuracy"] >= 0.9  # the logistic regression
    assert challenger_figures["live_accuracy"] < 0.5  # always answers 2: a third is right
    assert challenger_figures["labelled"] >= 20 and champion_figures["labelled"] >= 20
    assert challenger_figures["agreement"] is not None and challenger_figures["agreement"] < 0.9
    assert "probe_agreement" not in challenger_figures
    assert "live_accuracy" in state.message and "agreement" in state.message
    server = serving.deployer.find_model_server(model_name="iris")[0]
    assert server.traffic_status().weight_of("challenger") == 0


def test_live_figures_are_shown_beside_the_others() -> None:
    from modeldeploy.progressive.analysis import StepAnalysis
    from modeldeploy.progressive.report import render_analysis

    result = StepAnalysis(
        verdict="failed",
        reason="live_accuracy 0.333 < 0.8",
        window_seconds=3.0,
        figures={"challenger": {"requests": 75.0, "labelled": 75.0, "live_accuracy": 1 / 3}},
    )
    text = "\n".join(render_analysis(0, "challenger 50%", result))
    assert "labelled 75, live accuracy 0.333" in text
