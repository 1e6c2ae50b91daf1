"""Default PromQL per platform, and the label matchers that pick one variant's series.

The analysis asks each template once per variant, with that variant's `metric_selector`
(from `TrafficStatus`) in place of `{selector}`, so it never needs to know the flavor.
A flavor names its set with `ModelDeployer.metric_queries` and fills
`VariantStatus.metric_selector` with the helpers below; `analysis.queries` overrides any
template. Every metric and label name is the platform's own, cited from upstream source
(also in docs/progressive-delivery.md, "Analysis on Kubernetes").

No platform exports an agreement figure: on Kubernetes, agreement comes from the probe
dataset sent to each variant's own URL (`VariantStatus.url`).
"""

from __future__ import annotations

import re

from modeldeploy.traffic import MetricQueries

#: every figure a template may give
FIGURES = ("requests", "errors", "p50_seconds", "p99_seconds", "agreed", "compared")
#: analysis metric -> the figures it is computed from
NEEDS: dict[str, tuple[str, ...]] = {
    "requests": ("requests",),
    "errors": ("errors",),
    "error_rate": ("requests", "errors"),
    "p50_ms": ("p50_seconds",),
    "p99_ms": ("p99_seconds",),
    "agreement": ("agreed", "compared"),
}


def _increase(metric: str, matchers: str = "") -> str:
    return f"sum(increase({metric}{{{{{{selector}}{matchers}}}}}[{{window}}s]))"


def _quantile(q: float, bucket: str, scale: str = "") -> str:
    return (
        f"histogram_quantile({q}, sum by (le) "
        f"(increase({bucket}{{{{{{selector}}}}}}[{{window}}s]))){scale}"
    )


#: the engine's own router (local mlflow flavor), docs/progressive-delivery.md
ROUTER = MetricQueries(
    platform="modeldeploy router",
    scrapable=True,
    templates={
        "requests": _increase("modeldeploy_requests_total"),
        "errors": _increase("modeldeploy_requests_total", ',code!~"2.."'),
        "p50_seconds": _quantile(0.5, "modeldeploy_request_duration_seconds_bucket"),
        "p99_seconds": _quantile(0.99, "modeldeploy_request_duration_seconds_bucket"),
        "agreed": _increase("modeldeploy_agreement_total", ',result="agree"'),
        "compared": _increase("modeldeploy_agreement_total"),
    },
)

#: KServe in Knative (Serverless) mode: the queue-proxy beside every revision's pod counts
#: each non-probe request to the model container: `app_request_count` and
#: `app_request_latencies` in MILLISECONDS, buckets 5..100000 (knative/serving@1ae44c1
#: pkg/queue/metrics/request_metric.go:38-40,51-58; `NewAppRequestMetricsHandler`,
#: `appRequestMetricsHandler.ServeHTTP`), exported with the `revision_` prefix; labels
#: `namespace_name`, `revision_name`, `response_code`, `response_code_class`
#: (knative/serving@0b112e8 pkg/metrics/key.go:29-40).
KNATIVE = MetricQueries(
    platform="KServe (Knative queue-proxy)",
    templates={
        "requests": _increase("revision_app_request_count"),
        "errors": _increase("revision_app_request_count", ',response_code_class!="2xx"'),
        "p50_seconds": _quantile(0.5, "revision_app_request_latencies_bucket", " / 1000"),
        "p99_seconds": _quantile(0.99, "revision_app_request_latencies_bucket", " / 1000"),
    },
)

#: Seldon Core 1: the executor (service orchestrator) of each predictor observes every
#: request in the histogram `seldon_api_executor_server_requests_seconds` (seconds) with
#: labels `deployment_name`, `predictor_name`, `predictor_version`, `service`, `method`,
#: `code` (SeldonIO/seldon-core@0120285 executor/api/metric/constants.go:4-14,25;
#: @00bd281 executor/api/metric/server.go:23-33). REST codes are HTTP statuses, gRPC ones names
#: such as "OK". A shadow predictor counts its mirrored copies under its own name.
SELDON_CORE_1 = MetricQueries(
    platform="Seldon Core 1 (executor)",
    templates={
        "requests": _increase("seldon_api_executor_server_requests_seconds_count"),
        "errors": _increase("seldon_api_executor_server_requests_seconds_count", ',code!~"2..|OK"'),
        "p50_seconds": _quantile(0.5, "seldon_api_executor_server_requests_seconds_bucket"),
        "p99_seconds": _quantile(0.99, "seldon_api_executor_server_requests_seconds_bucket"),
    },
)

#: Seldon Core 2: the agent beside each Server replica counts inferences per model in
#: `seldon_model_infer_total` (their summed latency in `seldon_model_infer_seconds_total`)
#: with labels `model` (the name asked for), `model_internal` (`<model>_<version>` that
#: answered, so an Experiment's candidate or mirror shows its own name there), `server`,
#: `server_replica`, `method_type`, `code` (SeldonIO/seldon-core@311dc02
#: scheduler/pkg/metrics/agent.go:22-24,39-47, `createModelInferCounter`,
#: `addInferCount`; docs/examples/local-experiments.md, the mirror experiment's output).
#: Its latency histogram `seldon_model_infer_api_seconds` carries no model label, so
#: p50/p99 per variant are not measured (give `analysis.queries` templates if you have them).
SELDON_CORE_2 = MetricQueries(
    platform="Seldon Core 2 (agent)",
    templates={
        "requests": _increase("seldon_model_infer_total"),
        "errors": _increase("seldon_model_infer_total", ',code!~"2..|OK"'),
    },
)

#: KServe Standard (RawDeployment) mode: no Knative queue-proxy runs beside the predictor
#: pods, and KServe's HTTPRoute/Ingress export nothing per backend, so there is no per-variant
#: request figure by default. Each variant's selector picks its Deployment's pods
#: (`pod_selector`), so `analysis.queries` can point at the model server's own metrics.
KSERVE_STANDARD = MetricQueries(platform="KServe Standard mode (no queue-proxy)", templates={})


def quote(value: str) -> str:
    """A PromQL string literal."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def router_selector(instance: str, variant: str) -> str:
    return f"instance={quote(instance)},variant={quote(variant)}"


def knative_selector(namespace: str, revision: str) -> str:
    """One Knative revision (KServe Serverless mode: one revision per variant)."""
    return f"namespace_name={quote(namespace)},revision_name={quote(revision)}"


def pod_selector(namespace: str, deployment: str) -> str:
    """The pods of one Deployment, as a Kubernetes pod scrape labels them
    (`<deployment>-<replicaset hash>-<suffix>`)."""
    pods = re.escape(deployment) + "-[a-z0-9]+-[a-z0-9]+"
    return f"namespace={quote(namespace)},pod=~{quote(pods)}"


def seldon_selector(deployment: str, predictor: str) -> str:
    """One predictor of a SeldonDeployment (the executor exports no namespace label)."""
    return f"deployment_name={quote(deployment)},predictor_name={quote(predictor)}"


def seldon2_selector(model: str) -> str:
    """Every version of one Seldon Core 2 Model, whichever name the request asked for."""
    return f"model_internal=~{quote(re.escape(model) + '_[0-9]+')}"
