"""Seldon Core 1.17.1's validating webhook for SeldonDeployments.

seldon-core@v1.17.1 ``operator/apis/machinelearning.seldon.io/v1/seldondeployment_webhook.go``
(``ValidateSeldonDeployment``, ``checkTraffic``, ``validateShadow``, ``checkPredictiveUnits``,
:92-166 and :235-245): the prepackaged servers need a ``modelUri`` (but HuggingFace), the
protocol must be known, there is at least one predictor and no two share a name, at most one
predictor is a shadow and its traffic (mirror percentage) is in [0, 100], a shadow cannot be
the only predictor, several non-shadow predictors' traffic sums to 100 and a lone predictor's
traffic, when set, is 100. Its ``field.ErrorList`` is returned as an
``Invalid`` status, which the API server relays with the webhook's name (HTTP 422).
"""

from __future__ import annotations

from typing import Any

from .errors import ApiError, status_body

WEBHOOK = "v1.vseldondeployment.kb.io"
PREPACKAGED = {
    "SKLEARN_SERVER",
    "XGBOOST_SERVER",
    "TENSORFLOW_SERVER",
    "MLFLOW_SERVER",
    "TRITON_SERVER",
    "HUGGINGFACE_SERVER",
    "TEMPO_SERVER",
}
PROTOCOLS = {"", "seldon", "tensorflow", "kfserving", "v2"}


def _graph_errors(node: dict[str, Any], path: str, errs: list[str]) -> None:
    impl = node.get("implementation") or ""
    if impl in PREPACKAGED and impl != "HUGGINGFACE_SERVER" and not node.get("modelUri"):
        errs.append(
            f'{path}: Invalid value: "{node.get("name", "")}": '
            f"Predictive unit modelUri required when using standalone servers"
        )
    for i, child in enumerate(node.get("children") or []):
        if isinstance(child, dict):
            _graph_errors(child, f"{path}.children[{i}]", errs)


def _traffic_errors(preds: list[dict[str, Any]], errs: list[str]) -> None:
    """checkTraffic: shadows are not counted in the sum; one shadow at most, its traffic
    (the mirror percentage) in [0, 100]; several routed predictors sum to 100; a lone
    predictor (no shadow either) with traffic set must have 100."""
    total = 0
    shadows = 0
    for p in preds:
        traffic = int(p.get("traffic") or 0)
        if p.get("shadow"):
            shadows += 1
            if shadows > 1:
                errs.append(
                    f'spec: Invalid value: "{p.get("name", "")}": Multiple shadows are not allowed'
                )
            if not 0 <= traffic <= 100:
                errs.append(
                    f'spec: Invalid value: "{p.get("name", "")}": shadow traffic is illegal, '
                    "the traffic number should be between [0, 100]"
                )
        else:
            total += traffic
    first = preds[0].get("name", "") if preds else ""
    if total != 100 and len(preds) - shadows > 1:
        errs.append(
            f'spec: Invalid value: "{first}": Traffic must sum to 100 for multiple predictors'
        )
    if 0 < total < 100 and len(preds) == 1:
        errs.append(
            f'spec: Invalid value: "{first}": Traffic must sum be 100 for a single predictor '
            "when set"
        )


def validate(obj: dict[str, Any], old: dict[str, Any] | None = None) -> ApiError | None:
    spec = obj.get("spec") or {}
    name = (obj.get("metadata") or {}).get("name", "")
    errs: list[str] = []
    protocol = spec.get("protocol") or ""
    if protocol not in PROTOCOLS:
        errs.append(f'spec: Invalid value: "{protocol}": Invalid protocol')
    preds = [p for p in spec.get("predictors") or [] if isinstance(p, dict)]
    if len(preds) == 1 and preds[0].get("shadow"):
        errs.append(
            f'spec.predictors[0]: Invalid value: "{preds[0].get("name", "")}": '
            "Shadow can not exist as only predictor"
        )
    if not preds:
        errs.append('spec: Invalid value: "": Graph contains no predictors')
    seen: set[str] = set()
    for i, p in enumerate(preds):
        pname = str(p.get("name", ""))
        if pname in seen:
            errs.append(f'spec.predictors[{i}]: Invalid value: "{pname}": Duplicate predictor name')
        seen.add(pname)
        graph = p.get("graph")
        if isinstance(graph, dict):
            _graph_errors(graph, f"spec.predictors[{i}].graph", errs)
    _traffic_errors(preds, errs)
    if not errs:
        return None
    detail = errs[0] if len(errs) == 1 else "[" + ", ".join(errs) + "]"
    return ApiError(
        status_body(
            422,
            "Invalid",
            f'admission webhook "{WEBHOOK}" denied the request: '
            f'SeldonDeployment.machinelearning.seldon.io "{name}" is invalid: {detail}',
        )
    )
