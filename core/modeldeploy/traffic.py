"""The traffic seam between rollout strategies (engine) and flavors (platforms).

A progressive rollout runs two *variants* of one model server behind one public URL:
`champion` (what serves now) and `challenger` (the candidate). A flavor that can split or
mirror traffic declares it in `ModelDeployer.capabilities` and its servers implement
`TrafficControl`. Strategies in the engine only ever talk to this protocol, so a new
strategy needs no flavor change and a new flavor needs no strategy change.

Contract for implementers:
- every method writes and returns; readiness is read with `traffic_status()`;
- the public `prediction_url` of the server never changes while variants come and go;
- `set_traffic` applies atomically: each request is routed by one consistent table;
- mirrored (shadow) requests never delay or fail the client's request;
- `promote_challenger` and `remove_challenger` leave zero failed client requests.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from modeldeploy.config import ServiceConfig

CHAMPION = "champion"
CHALLENGER = "challenger"


class Capability(StrEnum):
    """What a flavor's platform can do beyond an in-place update."""

    TRAFFIC_SPLIT = "traffic_split"  # weighted routing between champion and challenger
    MIRROR = "mirror"  # copy of live requests to the challenger, answers discarded
    SIDE_BY_SIDE = "side_by_side"  # a second server beside the first (blue/green)
    #: on a split, copies of live requests to the other variant give agreement figures
    SPLIT_AGREEMENT = "split_agreement"
    #: each variant has its own scoring URL (`VariantStatus.url`), so the analysis can send
    #: its probe rows to the champion and the challenger apart
    VARIANT_URLS = "variant_urls"


class VariantStatus(BaseModel):
    """One variant as the platform reports it."""

    model_config = ConfigDict(protected_namespaces=())

    name: str
    model_version: str | None = None
    model_uri: str | None = None
    ready: bool = False
    weight: int = Field(default=0, ge=0, le=100)
    last_error: str | None = None
    #: the variant's own scoring URL, bypassing the router (probe requests of the analysis)
    url: str | None = None
    #: PromQL label matchers that select this variant's series among the platform's own
    #: request metrics (`MetricQueries`), e.g. `namespace_name="ns",revision_name="r-00002"`;
    #: None on the local router, whose series the engine selects by `metrics_url`
    metric_selector: str | None = None


class TrafficStatus(BaseModel):
    """The routing table as applied, plus where per-variant metrics can be read."""

    variants: list[VariantStatus] = []
    mirror_to: str | None = None
    mirror_percent: int = Field(default=0, ge=0, le=100)
    sticky_header: str | None = None
    #: Prometheus text-format endpoint with per-variant request metrics (label `variant`)
    metrics_url: str | None = None
    #: JSON lines of recent answers per variant, by request id, for joining delayed labels
    #: (`modeldeploy.progressive.labels`); None when the platform keeps no such log
    predictions_url: str | None = None

    def weight_of(self, variant: str) -> int:
        return next((v.weight for v in self.variants if v.name == variant), 0)


class MetricQueries(BaseModel):
    """Where a platform's per-variant request figures come from: PromQL templates, one per
    figure, that the analysis asks once per variant with that variant's `metric_selector`.

    Figures: `requests`, `errors` (counts in the window), `p50_seconds`, `p99_seconds`
    (latency quantiles), `agreed`, `compared` (answers compared with the champion's). A
    figure without a template is not measured on that platform. Placeholders: `{selector}`
    (label matchers, never empty) and `{window}` (the step's window in whole seconds).
    Defaults per platform live in `modeldeploy.progressive.queries`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    platform: str
    templates: dict[str, str]
    #: the server's `TrafficStatus.metrics_url` can be read without a Prometheus
    scrapable: bool = False


@runtime_checkable
class ServerMetrics(Protocol):
    """Optional beside `TrafficControl`: this server's request figures come from elsewhere
    than its flavor's `ModelDeployer.metric_queries` (one flavor, two platforms: KServe's
    Knative and Standard modes). The engine asks it once it knows the server."""

    @property
    def metric_queries(self) -> MetricQueries | None: ...


@runtime_checkable
class TrafficControl(Protocol):
    """Implemented by the `ModelServer` of a flavor that declares TRAFFIC_SPLIT or MIRROR."""

    def add_challenger(self, config: ServiceConfig) -> None:
        """Start the challenger beside the champion with 0 % of the traffic."""
        ...

    def set_traffic(
        self,
        challenger_percent: int,
        *,
        mirror_percent: int = 0,
        sticky_header: str | None = None,
    ) -> None:
        """Route `challenger_percent` of requests to the challenger, the rest to the
        champion; mirror `mirror_percent` of the champion's requests to the challenger."""
        ...

    def traffic_status(self) -> TrafficStatus:
        """Ask the platform what is routed where and which variants are ready."""
        ...

    def promote_challenger(self) -> None:
        """The challenger becomes the champion (100 %); the old champion is retired."""
        ...

    def remove_challenger(self) -> None:
        """All traffic back to the champion, then the challenger is removed."""
        ...
