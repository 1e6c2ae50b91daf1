"""The Istio VirtualService Seldon Core 1's operator writes for a SeldonDeployment.

seldon-core@v1.17.1 operator/controllers/seldondeployment_controller.go createIstioResources
(:303-411) builds one VirtualService named after the SeldonDeployment (`seldonId`,
`GetSeldonDeploymentName`: hashed past 63 characters) with two HTTP routes, REST by URI
prefix and gRPC by headers; each routed predictor is a destination (host = its predictor
service, subset = its name, weight = its `traffic`), a shadow predictor the route's `mirror`
with `mirrorPercentage` = its traffic when above 0. createIstioServices creates or updates
it (controller reference on the SeldonDeployment) and sets `istioVirtualServicesReady`.
"""

from __future__ import annotations

from typing import Any

from .resources import ResourceType

#: networking.istio.io v1alpha3, the client-go package the operator imports
GROUP, VERSION, PLURAL = "networking.istio.io", "v1alpha3", "virtualservices"
#: the operator's defaults: ISTIO_GATEWAY env, ANNOTATION_ISTIO_HOST, engine ports
GATEWAY = "seldon-gateway"
HTTP_PORT, GRPC_PORT = 8000, 5001
GRPC_MATCH = "/(seldon.protos.*|tensorflow.serving.*)/.*"
#: the status condition and its reasons (seldon_deployment_status.go:56,72-74)
CONDITION = "istioVirtualServicesReady"
READY_REASON = "All VirtualServices created"
NOT_DEFINED_REASON = "No VirtualServices defined"

#: Istio's CRD keeps spec and status as free-form objects
_FREE = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}


def resource_type() -> ResourceType:
    return ResourceType(
        GROUP,
        VERSION,
        PLURAL,
        "VirtualService",
        "virtualservice",
        status_subresource=True,
        short_names=["vs"],
        schema={"type": "object", "properties": {"spec": _FREE, "status": _FREE}},
        printer_columns=[
            {"name": "Gateways", "type": "string", "jsonPath": ".spec.gateways"},
            {"name": "Hosts", "type": "string", "jsonPath": ".spec.hosts"},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        ],
        categories=["istio-io", "networking-istio-io"],
    )


def virtual_service_spec(
    ns: str, sdep: str, routes: list[tuple[str, str, int, bool]]
) -> dict[str, Any]:
    """The spec for `routes` = [(predictor, predictor service, traffic, shadow)]."""
    http: dict[str, Any] = {
        "match": [{"uri": {"prefix": f"/seldon/{ns}/{sdep}/"}}],
        "rewrite": {"uri": "/"},
    }
    grpc: dict[str, Any] = {
        "match": [
            {
                "uri": {"regex": GRPC_MATCH},
                "headers": {"seldon": {"exact": sdep}, "namespace": {"exact": ns}},
            }
        ]
    }
    for route, port in ((http, HTTP_PORT), (grpc, GRPC_PORT)):
        route["route"] = []
        for pred, svc, traffic, shadow in routes:
            dest = {"host": svc, "subset": pred, "port": {"number": port}}
            if shadow:
                route["mirror"] = dest
                if traffic > 0:
                    route["mirrorPercentage"] = {"value": float(traffic)}
                continue
            entry: dict[str, Any] = {"destination": dest}
            if traffic:  # protobuf JSON leaves a zero weight out
                entry["weight"] = traffic
            route["route"].append(entry)
    return {"hosts": ["*"], "gateways": [GATEWAY], "http": [http, grpc]}
