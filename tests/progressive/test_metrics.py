"""Reading per-variant figures from Prometheus text: parsing, counter deltas, quantiles."""

from __future__ import annotations

import pytest
from modeldeploy.progressive.metrics import _key, figures_between, parse_text

BEFORE = """
# TYPE modeldeploy_requests_total counter
modeldeploy_requests_total{variant="champion",code="200",mirror="false"} 100
modeldeploy_requests_total{variant="challenger",code="200",mirror="false"} 10
"""
AFTER = """
modeldeploy_requests_total{variant="champion",code="200",mirror="false"} 190
modeldeploy_requests_total{variant="challenger",code="200",mirror="false"} 28
modeldeploy_requests_total{variant="challenger",code="500",mirror="false"} 2
modeldeploy_request_duration_seconds_bucket{variant="challenger",mirror="false",le="0.001"} 0
modeldeploy_request_duration_seconds_bucket{variant="challenger",mirror="false",le="0.01"} 10
modeldeploy_request_duration_seconds_bucket{variant="challenger",mirror="false",le="0.1"} 20
modeldeploy_request_duration_seconds_bucket{variant="challenger",mirror="false",le="+Inf"} 20
modeldeploy_agreement_total{variant="challenger",result="agree"} 9
modeldeploy_agreement_total{variant="challenger",result="disagree"} 1
something_else{variant="challenger"} 5
"""


def _snapshot(text: str) -> dict[str, float]:
    return {_key(s): s.value for s in parse_text(text) if s.name.startswith("modeldeploy_")}


def test_parse_text_reads_labels_and_values() -> None:
    samples = parse_text('m{a="x\\"y",b="2"} 3.5 1700000000\n# HELP m h\nbad line\n')
    assert [(s.name, s.labels, s.value) for s in samples] == [("m", {"a": 'x"y', "b": "2"}, 3.5)]


def test_figures_are_the_difference_between_two_scrapes() -> None:
    figures = figures_between(_snapshot(BEFORE), _snapshot(AFTER))
    assert figures["champion"].requests == 90
    challenger = figures["challenger"]
    assert (challenger.requests, challenger.errors) == (20, 2)
    assert challenger.error_rate == 0.1
    assert challenger.agreement == 0.9
    # half the requests took at most 10 ms; 99 % fall in the 10..100 ms bucket
    assert challenger.p50_ms == pytest.approx(10.0)
    assert 90 < challenger.p99_ms < 100


def test_a_counter_that_went_down_was_reset() -> None:
    after = _snapshot('modeldeploy_requests_total{variant="champion",code="200",mirror="false"} 7')
    assert figures_between(_snapshot(BEFORE), after)["champion"].requests == 7
