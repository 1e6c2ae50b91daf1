"""Request metrics of the data plane, under each platform's own names and labels.

What a real Prometheus scrapes from a cluster's serving pods (FIDELITY.md, rows D-*):
- `kserve` (Knative queue-proxy beside each revision's pod): `revision_app_request_count`
  and the histogram `revision_app_request_latencies` (milliseconds), labelled
  `namespace_name, service_name, configuration_name, revision_name, pod_name,
  container_name, response_code, response_code_class`;
- `seldon` (Seldon Core 1 executor of each predictor): the histogram
  `seldon_api_executor_server_requests_seconds`, labelled `deployment_name, predictor_name,
  predictor_version, service, method, code`;
- `seldon2` (agent beside each Server replica): counters `seldon_model_infer_total` and
  `seldon_model_infer_seconds_total`, labelled `server, server_replica, model,
  model_internal, method_type, code` (`model` is the name the client asked for in
  `Seldon-Model`, `model_internal` the model that answered), and the histogram
  `seldon_model_infer_api_seconds` labelled `server, server_replica, method, code`.

A backend's own labels come from `Backend.metric_labels` (helpers below build them); the
request's (code, the asked model) are added here. A request that never reached a backend
(refused, reset) is counted nowhere, as no pod saw it.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass

PLATFORMS = ("kserve", "seldon", "seldon2")

KNATIVE_MS_BUCKETS = (
    5, 10, 20, 40, 60, 80, 100, 150, 200, 250, 300, 350, 400, 450, 500, 600,
    700, 800, 900, 1000, 2000, 5000, 10000, 20000, 50000, 100000,
)  # fmt: skip
SELDON_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)


def knative_labels(namespace: str, service: str, revision: str, pod: str = "") -> dict[str, str]:
    """Labels of a KServe (Knative mode) revision; `service` is the ksvc, `<isvc>-predictor`."""
    return {
        "namespace_name": namespace,
        "service_name": service,
        "configuration_name": service,
        "revision_name": revision,
        "pod_name": pod or f"{revision}-deployment-0",
        "container_name": "queue-proxy",
    }


def seldon_labels(deployment: str, predictor: str, version: str = "") -> dict[str, str]:
    """Labels of a Seldon Core 1 predictor (`version`: its `version` annotation)."""
    return {
        "deployment_name": deployment,
        "predictor_name": predictor,
        "predictor_version": version,
    }


def seldon2_labels(model_internal: str, server: str, replica: int = 0) -> dict[str, str]:
    """Labels of a Seldon Core 2 model version (`model_internal` is `<model>_<version>`)."""
    return {"model_internal": model_internal, "server": server, "server_replica": str(replica)}


@dataclass(frozen=True)
class Family:
    name: str
    kind: str  # counter | histogram | sum (a counter of seconds)
    help: str
    buckets: tuple[float, ...] = ()
    scale: float = 1.0  # seconds -> the family's unit


FAMILIES: dict[str, tuple[Family, ...]] = {
    "kserve": (
        Family(
            "revision_app_request_count",
            "counter",
            "The number of requests that are routed to user-container",
        ),
        Family(
            "revision_app_request_latencies",
            "histogram",
            "The response time in millisecond",
            KNATIVE_MS_BUCKETS,
            1000.0,
        ),
    ),
    "seldon": (
        Family(
            "seldon_api_executor_server_requests_seconds",
            "histogram",
            "A histogram of latencies for executor server",
            SELDON_BUCKETS,
        ),
    ),
    "seldon2": (
        Family("seldon_model_infer_total", "counter", "A count of server inference calls"),
        Family(
            "seldon_model_infer_seconds_total", "sum", "A sum of server inference call latencies"
        ),
        Family(
            "seldon_model_infer_api_seconds",
            "histogram",
            "A histogram of latencies for inference server",
            SELDON_BUCKETS,
        ),
    ),
}


def request_labels(
    platform: str, family: Family, backend_labels: Mapping[str, str], code: int, asked: str
) -> tuple[tuple[str, str], ...]:
    """The full label set of one observation in one family."""
    labels = dict(backend_labels)
    if platform == "kserve":
        labels |= {"response_code": str(code), "response_code_class": f"{code // 100}xx"}
    elif platform == "seldon":
        labels |= {"service": "predictions", "method": "post", "code": str(code)}
    elif family.kind == "histogram":  # seldon2: promhttp's handler labels, no model
        labels = {k: v for k, v in labels.items() if k in ("server", "server_replica")}
        labels |= {"method": "post", "code": str(code)}
    else:
        labels.setdefault("model", asked)
        labels |= {"method_type": "rest", "code": str(code)}
    return tuple(sorted(labels.items()))


class MetricStore:
    """Counters and histograms of every backend; written by the ingress, read by scrapes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[tuple[str, tuple[tuple[str, str], ...]], list[float]] = {}
        self._families: dict[str, Family] = {}

    def observe(
        self,
        platform: str,
        backend_labels: Mapping[str, str],
        code: int,
        seconds: float,
        asked: str,
    ) -> None:
        """One answer of one backend (client or mirrored request alike)."""
        with self._lock:
            for family in FAMILIES[platform]:
                self._families[family.name] = family
                key = (family.name, request_labels(platform, family, backend_labels, code, asked))
                value = seconds * family.scale
                if family.kind == "histogram":
                    slots = self._values.setdefault(key, [0.0] * (len(family.buckets) + 2))
                    index = next(
                        (i for i, bound in enumerate(family.buckets) if value <= bound),
                        len(family.buckets),
                    )
                    slots[index] += 1
                    slots[-1] += value
                else:
                    slots = self._values.setdefault(key, [0.0])
                    slots[0] += value if family.kind == "sum" else 1

    def render(self) -> bytes:
        """Prometheus text exposition format 0.0.4."""
        with self._lock:
            values = {key: list(v) for key, v in self._values.items()}
            families = dict(self._families)
        out: list[str] = []
        for name in sorted(families):
            family = families[name]
            kind = "counter" if family.kind == "sum" else family.kind
            out += [f"# HELP {name} {family.help}", f"# TYPE {name} {kind}"]
            for (fname, labels), slots in sorted(values.items()):
                if fname != name:
                    continue
                if family.kind != "histogram":
                    out.append(f"{name}{{{_labels(labels)}}} {_num(slots[0])}")
                    continue
                running = 0.0
                for bound, n in zip((*family.buckets, math.inf), slots[:-1], strict=True):
                    running += n
                    le = "+Inf" if bound == math.inf else _num(float(bound))
                    out.append(f"{name}_bucket{{{_labels((*labels, ('le', le)))}}} {_num(running)}")
                out.append(f"{name}_sum{{{_labels(labels)}}} {_num(slots[-1])}")
                out.append(f"{name}_count{{{_labels(labels)}}} {_num(running)}")
        return ("\n".join(out) + "\n").encode()


def _labels(labels: tuple[tuple[str, str], ...]) -> str:
    def escape(value: str) -> str:
        return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')

    return ",".join(f'{k}="{escape(v)}"' for k, v in labels)


def _num(value: float) -> str:
    return str(int(value)) if value == int(value) and abs(value) < 1e15 else repr(value)
