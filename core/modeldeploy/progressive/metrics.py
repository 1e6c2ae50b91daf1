"""Per-variant service figures from a Prometheus-compatible source.

Two sources give the same `VariantFigures`:
- `PrometheusSource` asks a real Prometheus over its HTTP API with PromQL (`increase` over
  the step's window, `histogram_quantile` for latency), from templates a user may replace;
- `scrape` + `figures_between` read the flavor's metrics endpoint directly when no
  Prometheus is configured: two scrapes, the counters' difference is the step's traffic.

The templates and the label matchers of each variant come from the flavor
(`modeldeploy.progressive.queries`); the direct scrape knows the local router's names.
"""

from __future__ import annotations

import json
import math
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict

from modeldeploy.errors import PlatformError

REQUESTS = "modeldeploy_requests_total"
DURATION_BUCKET = "modeldeploy_request_duration_seconds_bucket"
AGREEMENT = "modeldeploy_agreement_total"
_OURS = (REQUESTS, DURATION_BUCKET, AGREEMENT)
_HTTP_TIMEOUT = 10.0
SCRAPE_PATIENCE = 5.0


class VariantFigures(BaseModel):
    """What one variant did during a step's window."""

    requests: float = 0.0
    errors: float = 0.0
    p50_ms: float | None = None
    p99_ms: float | None = None
    agreed: float = 0.0
    compared: float = 0.0

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests > 0 else None

    @property
    def agreement(self) -> float | None:
        return self.agreed / self.compared if self.compared > 0 else None


class Sample(NamedTuple):
    name: str
    labels: dict[str, str]
    value: float


_LINE = re.compile(r"^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"')


def parse_text(text: str) -> list[Sample]:
    """Samples of the Prometheus text exposition format (comments and timestamps ignored)."""
    samples = []
    for line in text.splitlines():
        match = _LINE.match(line)
        if not match or line.startswith("#"):
            continue
        name, labels, value = match.groups()
        try:
            number = float(value)
        except ValueError:
            continue
        pairs = {
            k: v.replace('\\"', '"').replace("\\\\", "\\") for k, v in _LABEL.findall(labels or "")
        }
        samples.append(Sample(name, pairs, number))
    return samples


def _key(sample: Sample) -> str:
    return json.dumps([sample.name, sorted(sample.labels.items())])


def scrape(metrics_url: str, patience: float = SCRAPE_PATIENCE) -> dict[str, float]:
    """Our series at `metrics_url` now, as a JSON-ready snapshot (series key -> value).

    Retried for `patience` seconds: while a server switches between routed and direct
    serving, a connection may briefly reach a process without the endpoint.
    """
    deadline = time.monotonic() + patience
    while True:
        try:
            with urllib.request.urlopen(metrics_url, timeout=_HTTP_TIMEOUT) as response:
                text = response.read().decode()
            break
        except (urllib.error.URLError, OSError) as exc:
            if time.monotonic() >= deadline:
                raise PlatformError(f"cannot read metrics at {metrics_url}: {exc}") from None
            time.sleep(0.1)
    return {_key(s): s.value for s in parse_text(text) if s.name in _OURS}


def figures_between(before: dict[str, float], after: dict[str, float]) -> dict[str, VariantFigures]:
    """Per-variant figures from two snapshots; a counter that went down was reset."""
    figures: dict[str, VariantFigures] = defaultdict(VariantFigures)
    buckets: dict[str, dict[float, float]] = defaultdict(lambda: defaultdict(float))
    for key, value in after.items():
        name, items = json.loads(key)
        labels = dict(items)
        old = before.get(key, 0.0)
        delta = value - old if value >= old else value
        variant = labels.get("variant", "")
        fig = figures[variant]
        if name == REQUESTS:
            fig.requests += delta
            if not labels.get("code", "").startswith("2"):
                fig.errors += delta
        elif name == AGREEMENT:
            fig.compared += delta
            if labels.get("result") == "agree":
                fig.agreed += delta
        elif name == DURATION_BUCKET:
            buckets[variant][float(labels["le"])] += delta
    for variant, counts in buckets.items():
        figures[variant].p50_ms = _quantile(0.5, counts)
        figures[variant].p99_ms = _quantile(0.99, counts)
    return dict(figures)


def _quantile(q: float, cumulative: dict[float, float]) -> float | None:
    """`histogram_quantile` over cumulative buckets, in milliseconds."""
    bounds = sorted(cumulative)
    if not bounds or cumulative[bounds[-1]] <= 0:
        return None
    rank = q * cumulative[bounds[-1]]
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = cumulative[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower * 1000
            share = (rank - below) / (count - below) if count > below else 1.0
            return (lower + (bound - lower) * share) * 1000
        lower, below = bound, count
    return lower * 1000


class PrometheusSource(BaseModel):
    """A Prometheus (or compatible) HTTP API and the PromQL templates to ask it."""

    model_config = ConfigDict(extra="forbid")

    url: str
    #: figure -> template (see `modeldeploy.traffic.MetricQueries`)
    templates: dict[str, str]

    def figures(
        self, selectors: dict[str, str], window_seconds: float
    ) -> dict[str, VariantFigures]:
        """Each template asked once per variant (variant -> its label matchers). Counts of
        several series add up; of several latency quantiles the highest is kept."""
        window = max(1, math.ceil(window_seconds))
        figures: dict[str, VariantFigures] = defaultdict(VariantFigures)
        for variant, selector in selectors.items():
            fig = figures[variant]
            for figure, template in self.templates.items():
                values = [
                    v
                    for v in self._query(template.format(selector=selector, window=window))
                    if not math.isnan(v)
                ]
                if not values:
                    continue
                if figure.endswith("_seconds"):
                    setattr(fig, figure.replace("_seconds", "_ms"), max(values) * 1000)
                else:
                    setattr(fig, figure, sum(values))
        return dict(figures)

    def _query(self, query: str) -> list[float]:
        address = f"{self.url.rstrip('/')}/api/v1/query?" + urllib.parse.urlencode({"query": query})
        try:
            with urllib.request.urlopen(address, timeout=_HTTP_TIMEOUT) as response:
                body = json.load(response)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise PlatformError(
                f"Prometheus at {self.url} did not answer {query!r}: {exc}; check "
                "analysis.prometheus_url"
            ) from None
        if body.get("status") != "success":
            raise PlatformError(f"Prometheus at {self.url} refused {query!r}: {body.get('error')}")
        result = body["data"]["result"]
        if body["data"].get("resultType") == "scalar":
            return [float(result[1])]
        return [float(item["value"][1]) for item in result]


def _unescape(value: str) -> str:
    return value.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")
