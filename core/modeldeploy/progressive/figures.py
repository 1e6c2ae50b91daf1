"""Where a step's per-variant request figures come from, without knowing the flavor.

With `analysis.prometheus_url`, Prometheus is asked the flavor's templates
(`ModelDeployer.metric_queries`, overridden by `analysis.queries`) once per variant, with
the label matchers the platform reports for it (`VariantStatus.metric_selector`). Without
one, a flavor whose servers expose `TrafficStatus.metrics_url` (the local router) is
scraped at the start and the end of the step. Otherwise there are no request figures, and
`AnalysisConfig.check_measurable` has already refused rules that would need them.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from modeldeploy.progressive.analysis import AnalysisConfig
from modeldeploy.progressive.metrics import (
    PrometheusSource,
    VariantFigures,
    figures_between,
    scrape,
)
from modeldeploy.progressive.queries import router_selector
from modeldeploy.traffic import CHALLENGER, CHAMPION, MetricQueries, TrafficStatus


def _scraped(
    metrics: MetricQueries | None, analysis: AnalysisConfig, status: TrafficStatus
) -> bool:
    return (
        analysis.prometheus_url is None
        and metrics is not None
        and metrics.scrapable
        and bool(status.metrics_url)
    )


def baseline(
    metrics: MetricQueries | None, analysis: AnalysisConfig, status: TrafficStatus
) -> dict[str, float]:
    """The counters at the start of a step, when the step's figures come from scrapes."""
    if _scraped(metrics, analysis, status):
        assert status.metrics_url is not None
        return scrape(status.metrics_url)
    return {}


def service_figures(
    metrics: MetricQueries | None,
    analysis: AnalysisConfig,
    status: TrafficStatus,
    start: dict[str, float],
    window: float,
) -> dict[str, VariantFigures]:
    """Requests, errors and latency per variant over the step's `window` seconds."""
    if _scraped(metrics, analysis, status):
        assert status.metrics_url is not None
        return figures_between(start, scrape(status.metrics_url))
    if metrics is None or analysis.prometheus_url is None:
        return {}
    source = PrometheusSource(url=analysis.prometheus_url, templates=analysis.templates(metrics))
    return source.figures(selectors(status), window)


def selectors(status: TrafficStatus) -> dict[str, str]:
    """Label matchers per variant; the local router's are its scrape target and `variant`.
    A variant the platform gives no matchers for is not asked."""
    instance = urlsplit(status.metrics_url).netloc if status.metrics_url else None
    found = {}
    for variant in status.variants:
        if variant.name not in (CHAMPION, CHALLENGER):
            continue
        if variant.metric_selector:
            found[variant.name] = variant.metric_selector
        elif instance:
            found[variant.name] = router_selector(instance, variant.name)
    return found
