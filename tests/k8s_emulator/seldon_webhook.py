"""Seldon Core 1.17.1's validating webhook for SeldonDeployments.

seldon-core@v1.17.1 ``operator/apis/machinelearning.seldon.io/v1/seldondeployment_webhook.go``
(``ValidateSeldonDeployment`` and helpers, :92-166 and :235-245): the prepackaged servers
need a ``modelUri`` (but HuggingFace), the protocol must be known, at most one predictor is
a shadow, a shadow cannot be alone, one predictor's traffic is 0 or 100 and several
non-shadow predictors' traffic sums to 100. Its ``field.ErrorList`` is returned as an
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


def validate(obj: dict[str, Any]) -> ApiError | None:
    spec = obj.get("spec") or {}
    name = (obj.get("metadata") or {}).get("name", "")
    errs: list[str] = []
    protocol = spec.get("protocol") or ""
    if protocol not in PROTOCOLS:
        errs.append(f'spec.protocol: Invalid value: "{protocol}": Invalid protocol')
    preds = [p for p in spec.get("predictors") or [] if isinstance(p, dict)]
    shadows = [p for p in preds if p.get("shadow")]
    if len(shadows) > 1:
        errs.append('spec.predictors: Invalid value: "": Multiple shadows are not allowed')
    if preds and len(shadows) == len(preds):
        errs.append('spec.predictors: Invalid value: "": Shadow can not exist alone')
    main = [p for p in preds if not p.get("shadow")]
    if len(main) == 1 and int(main[0].get("traffic") or 0) not in (0, 100):
        errs.append(
            f'spec.predictors[0].traffic: Invalid value: "{main[0].get("name", "")}": '
            "Traffic must be zero or 100 for a single predictor"
        )
    if len(main) > 1 and sum(int(p.get("traffic") or 0) for p in main) != 100:
        errs.append(
            'spec.predictors: Invalid value: "": Traffic must sum to 100 for multiple predictors'
        )
    for i, p in enumerate(preds):
        graph = p.get("graph")
        if isinstance(graph, dict):
            _graph_errors(graph, f"spec.predictors[{i}].graph", errs)
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
