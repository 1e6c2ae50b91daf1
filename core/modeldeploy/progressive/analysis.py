"""The analysis run at the end of every step: service health and the model itself.

Figures per variant come from `metrics` (request count, error rate, p50/p99 latency, and
agreement on requests both variants answered). A probe dataset, sent to each variant's own
URL, adds agreement on the same rows and, with its labels, accuracy or rmse/mae per
variant; a source of delayed labels (`labels`) adds live accuracy or error on the
variants' logged answers to live requests.
Thresholds are the gate's rules (`error_rate<=0.01`) applied to the challenger's figures.
"""

from __future__ import annotations

import math
import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from modeldeploy.errors import InvalidConfigError, ModelDeployError
from modeldeploy.gate import CheckResult, Gate, MetricThreshold
from modeldeploy.http import JsonClient
from modeldeploy.progressive.labels import LIVE_METRICS, LabelSource, live_figures
from modeldeploy.progressive.metrics import VariantFigures
from modeldeploy.progressive.queries import FIGURES, NEEDS
from modeldeploy.progressive.scoring import Task, predictions_of, same, score
from modeldeploy.traffic import CHALLENGER, CHAMPION, MetricQueries, TrafficStatus

SERVICE_METRICS = ("requests", "errors", "error_rate", "p50_ms", "p99_ms")
PROBE_METRICS = ("accuracy", "rmse", "mae")
KNOWN_METRICS = (*SERVICE_METRICS, "agreement", *PROBE_METRICS, *LIVE_METRICS)
DEFAULT_RULES = ("error_rate<=0.01",)
Verdict = Literal["passed", "failed", "inconclusive"]


class Probe(BaseModel):
    """Rows (MLflow `dataframe_records`) with their labels, scored on every variant."""

    model_config = ConfigDict(extra="forbid")

    records: list[dict[str, Any]] = Field(min_length=1)
    labels: list[Any] | None = None
    task: Task = "classification"

    @model_validator(mode="after")
    def _labels_match(self) -> Probe:
        if self.labels is not None and len(self.labels) != len(self.records):
            raise ValueError(f"probe has {len(self.records)} records but {len(self.labels)} labels")
        return self


class AnalysisConfig(BaseModel):
    """How each step is judged. Rules apply to the challenger's figures of the step."""

    model_config = ConfigDict(extra="forbid")

    rules: list[str] = list(DEFAULT_RULES)
    #: fewer challenger requests than this in a step's window makes it inconclusive
    min_requests: int = Field(default=20, ge=0)
    #: what an inconclusive step does: wait (re-check every `recheck_seconds` up to
    #: `max_wait_seconds`), extend (bake once more, up to `max_extensions`), or fail
    on_inconclusive: Literal["wait", "extend", "fail"] = "extend"
    max_extensions: int = Field(default=2, ge=0)
    recheck_seconds: float = Field(default=1.0, gt=0)
    max_wait_seconds: float = Field(default=600.0, gt=0)
    #: a Prometheus HTTP API; without one the server's metrics endpoint is scraped directly
    prometheus_url: str | None = None
    #: PromQL templates replacing the flavor's defaults (`modeldeploy.progressive.queries`),
    #: per figure; placeholders `{selector}` (one variant's label matchers) and `{window}`
    queries: dict[str, str] = {}
    probe: Probe | None = None
    #: delayed labels of live requests, joined with each variant's logged answers
    labels: LabelSource | None = None

    @field_validator("rules", mode="before")
    @classmethod
    def _split(cls, rules: Any) -> Any:
        if isinstance(rules, str):
            return [r for r in rules.split(",") if r.strip()]
        return rules

    @field_validator("rules")
    @classmethod
    def _known(cls, rules: list[str]) -> list[str]:
        for rule in rules:
            metric = MetricThreshold.parse(rule).metric
            if metric not in KNOWN_METRICS:
                raise ValueError(
                    f"analysis rule {rule!r} names {metric!r}; the analysis measures "
                    f"{', '.join(KNOWN_METRICS)}"
                )
        return rules

    @field_validator("queries")
    @classmethod
    def _templates(cls, queries: dict[str, str]) -> dict[str, str]:
        for figure, template in queries.items():
            if figure not in FIGURES:
                raise ValueError(
                    f"unknown Prometheus query {figure!r}; known: {', '.join(FIGURES)}"
                )
            try:
                template.format(selector='variant="x"', window=60)
            except (KeyError, IndexError, ValueError) as exc:
                raise ValueError(
                    f"query {figure!r} is not a template with only {{selector}} and {{window}} "
                    f"(write a literal brace twice: {{{{ }}}}): {exc!r}"
                ) from None
        return queries

    def thresholds(self) -> list[MetricThreshold]:
        return [MetricThreshold.parse(r) for r in self.rules]

    def templates(self, metrics: MetricQueries | None) -> dict[str, str]:
        """The flavor's PromQL templates with this analysis's replacements."""
        return {**(metrics.templates if metrics is not None else {}), **self.queries}

    def check_measurable(
        self,
        mirrors: bool,
        metrics: MetricQueries | None,
        live: bool = True,
        no_probe: str | None = None,
    ) -> None:
        """Refuse rules no step of this rollout could measure, before anything changes.

        `mirrors`: some step has live requests both variants answer (mirror or compare);
        `metrics` is where the flavor's request figures come from (None: nowhere); `live`
        says whether any step sends the challenger requests (split or mirror); `no_probe`
        says why the flavor cannot send the probe to each variant (None: it can)."""
        if self.labels is not None:
            self.labels.check()
        if no_probe is not None and self.probe is not None:
            raise InvalidConfigError(f"analysis.probe cannot be judged: {no_probe}. {_NO_PROBE}")
        source = self._service_source(metrics)
        templates = self.templates(metrics) if source else {}
        for rule, t in zip(self.rules, self.thresholds(), strict=True):
            if t.metric in LIVE_METRICS and self.labels is None:
                raise InvalidConfigError(
                    f"analysis rule on {t.metric} needs delayed labels: give analysis.labels "
                    "(a url, file or function answering {request_id: label})"
                )
            needs_probe = t.metric in PROBE_METRICS or (
                t.metric == "agreement" and not (mirrors and _has(templates, t.metric))
            )
            if no_probe is not None and needs_probe:
                raise InvalidConfigError(
                    f"analysis rule {rule!r} needs the probe, which cannot be sent here: "
                    f"{no_probe}. {_NO_PROBE}"
                )
            if t.metric in PROBE_METRICS and (self.probe is None or self.probe.labels is None):
                raise InvalidConfigError(
                    f"analysis rule on {t.metric} needs labels: give analysis.probe with "
                    "records and labels"
                )
            if t.metric == "agreement":
                if self.probe is None and not (mirrors and _has(templates, t.metric)):
                    raise InvalidConfigError(
                        "analysis rule on agreement needs requests both variants answered: "
                        + (
                            "use the shadow strategy (mirrored requests), a flavor that compares "
                            "split requests, or give analysis.probe"
                            if _has(templates, t.metric) or metrics is None or metrics.scrapable
                            else f"{_platform(metrics)} exports no agreement metric, so give "
                            "analysis.probe (rows sent to each variant's own URL)"
                        )
                    )
            elif t.metric in SERVICE_METRICS and not source:
                raise InvalidConfigError(_no_source(f"analysis rule {rule!r}", metrics, no_probe))
            elif t.metric in SERVICE_METRICS and not _has(templates, t.metric):
                missing = [f for f in NEEDS[t.metric] if f not in templates]
                raise InvalidConfigError(
                    f"analysis rule {rule!r} cannot be measured: {_platform(metrics)} exports no "
                    f"per-variant {' or '.join(missing)}; give analysis.queries."
                    f"{missing[0]} (a PromQL template) or drop the rule"
                )
        if live and self.min_requests > 0 and not source:
            raise InvalidConfigError(
                _no_source(f"analysis.min_requests={self.min_requests}", metrics, no_probe)
                + ("" if no_probe else ", with min_requests=0")
            )

    def _service_source(self, metrics: MetricQueries | None) -> bool:
        return metrics is not None and (metrics.scrapable or self.prometheus_url is not None)


def _platform(metrics: MetricQueries | None) -> str:
    return metrics.platform if metrics is not None else "this flavor"


def _has(templates: dict[str, str], metric: str) -> bool:
    return all(f in templates for f in NEEDS[metric])


#: what to do when the probe cannot be sent to each variant (`check_measurable`)
_NO_PROBE = (
    "Judge this rollout by request figures through Prometheus (analysis.prometheus_url; "
    "rules on requests, errors, error_rate, p50_ms, p99_ms), by delayed labels of live "
    "requests if you have them (analysis.labels; rules on live_accuracy, live_rmse, live_mae)"
)
_PROBE_ALONE = "judge by the probe alone (analysis.probe, rules on agreement/accuracy/rmse/mae)"


def _no_source(what: str, metrics: MetricQueries | None, no_probe: str | None = None) -> str:
    """Why `what` cannot be measured without request metrics, and what to do instead."""
    instead = f"the probe cannot be sent either ({no_probe})" if no_probe else _PROBE_ALONE
    if metrics is None:
        return f"{what} reads request metrics, which this flavor does not export; {instead}"
    if not metrics.templates:
        return (
            f"{what} reads request metrics, and {metrics.platform} exports none per variant: "
            "set analysis.prometheus_url and analysis.queries (PromQL over your model "
            f"server's own metrics; {{selector}} picks one variant's pods), or {instead}"
        )
    return (
        f"{what} reads request metrics, which {metrics.platform} exports only to Prometheus: "
        "set analysis.prometheus_url to a Prometheus that scrapes them (see "
        "docs/progressive-delivery.md, Analysis on Kubernetes)"
        + ("" if no_probe else f", or {_PROBE_ALONE}")
    )


class StepAnalysis(BaseModel):
    """One step's verdict, the figures it read and each check against its threshold."""

    verdict: Verdict
    reason: str
    window_seconds: float
    figures: dict[str, dict[str, float | None]] = {}
    checks: list[CheckResult] = []


def analyse(
    config: AnalysisConfig,
    service: dict[str, VariantFigures],
    traffic: TrafficStatus,
    window_seconds: float,
    live_challenger: bool,
) -> StepAnalysis:
    """Judge one step from its service figures (and the probe, sent now).

    `live_challenger` says whether the challenger received requests in this step (split or
    mirror); at 0 % (blue/green's first step) only the probe can judge it.
    """
    figures = {v: _flatten(service.get(v, VariantFigures())) for v in (CHAMPION, CHALLENGER)}
    challenger = figures[CHALLENGER]
    if config.probe is not None:
        for variant, values in _probe(config.probe, traffic).items():
            figures[variant].update(values)
        if challenger.get("agreement") is None:
            challenger["agreement"] = challenger.get("probe_agreement")
    if config.labels is not None and live_challenger:
        since = time.time() - window_seconds
        for variant, values in live_figures(config.labels, traffic.predictions_url, since).items():
            if variant in figures:
                figures[variant].update(values)
    measured = {k: v for k, v in challenger.items() if v is not None}
    live_only = (*SERVICE_METRICS, *LIVE_METRICS)
    rules = [t for t in config.thresholds() if live_challenger or t.metric not in live_only]
    gate = Gate(thresholds=rules)
    decision = gate.evaluate(measured)
    thin = live_challenger and (challenger["requests"] or 0) < config.min_requests
    unmeasured = [c for c in decision.checks if not c.passed and c.name not in measured]
    judged = [c for c in decision.checks if c.name in measured]
    failed = [c for c in judged if not c.passed]
    if failed:
        verdict: Verdict = "failed"
        reason = "; ".join(c.detail for c in failed)
    elif thin or unmeasured:
        verdict = "inconclusive"
        why = [f"{challenger['requests'] or 0:.0f} challenger requests < {config.min_requests}"]
        reason = "; ".join(
            (why if thin else []) + [f"{c.name} not measured yet" for c in unmeasured]
        )
    else:
        verdict = "passed"
        reason = "; ".join(c.detail for c in judged) or "no rule applies at this step"
    return StepAnalysis(
        verdict=verdict,
        reason=reason,
        window_seconds=round(window_seconds, 3),
        figures=figures,
        checks=decision.checks,
    )


def _flatten(fig: VariantFigures) -> dict[str, float | None]:
    return {
        "requests": round(fig.requests, 3),
        "errors": round(fig.errors, 3),
        "error_rate": fig.error_rate,
        "p50_ms": fig.p50_ms,
        "p99_ms": fig.p99_ms,
        "agreement": fig.agreement,
    }


def _probe(probe: Probe, traffic: TrafficStatus) -> dict[str, dict[str, float | None]]:
    """Send the probe rows to each variant's own URL; score agreement and labels."""
    client = JsonClient(timeout=30.0)
    answers: dict[str, list[Any]] = {}
    try:
        for variant in traffic.variants:
            if variant.name not in (CHAMPION, CHALLENGER) or not variant.url:
                continue
            url = variant.url
            if not url.rstrip("/").endswith("/invocations"):
                url = url.rstrip("/") + "/invocations"
            try:
                body = client.post_json(url, {"dataframe_records": probe.records})
            except ModelDeployError:
                if variant.name == CHALLENGER:
                    # the challenger failing the probe is a finding, not a broken analysis
                    return _probe_failed(probe)
                raise
            answers[variant.name] = predictions_of(body)
    finally:
        client.close()
    results: dict[str, dict[str, float | None]] = {}
    for name, predictions in answers.items():
        labels = probe.labels or []
        results[name] = dict(score(probe.task, predictions, labels))
    if CHAMPION in answers and CHALLENGER in answers:
        agreed = sum(
            same(a, b) for a, b in zip(answers[CHAMPION], answers[CHALLENGER], strict=False)
        )
        results[CHALLENGER]["probe_agreement"] = agreed / len(probe.records)
    return results


def _probe_failed(probe: Probe) -> dict[str, dict[str, float | None]]:
    failed: dict[str, float | None] = {"probe_agreement": 0.0}
    if probe.labels is not None:
        failed.update(accuracy=0.0, rmse=math.inf, mae=math.inf)
    return {CHALLENGER: failed}
