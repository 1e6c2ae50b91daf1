"""KServe's ClusterServingRuntimes and its runtime selection, as the controller applies them.

The table is what kserve@v0.20.0 ships in ``config/runtimes/kserve-*.yaml`` (name,
``supportedModelFormats[].{name, version, autoSelect, priority}``, ``protocolVersions``).
Selection follows ``pkg/apis/serving/v1beta1/predictor_model.go`` (``GetSupportingRuntimes``,
``RuntimeSupportsModel``, ``sortSupportedRuntimeByPriority``, ``GetProtocol``) and the
failure texts of ``pkg/controller/v1beta1/inferenceservice/components/predictor.go``
(``reconcileModel``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Format:
    name: str
    version: str | None
    auto_select: bool
    priority: int | None


@dataclass(frozen=True)
class Runtime:
    name: str
    formats: tuple[Format, ...]
    protocols: tuple[str, ...]
    image: str
    args: tuple[str, ...] = ()


def _f(name: str, version: str | None, priority: int | None = None) -> Format:
    return Format(name, version, True, priority)


#: kserve@v0.20.0 config/runtimes/*.yaml (single-model, single-node runtimes)
RUNTIMES: tuple[Runtime, ...] = (
    Runtime(  # config/runtimes/kserve-sklearnserver.yaml
        "kserve-sklearnserver",
        (_f("sklearn", "1", 3),),
        ("v1", "v2"),
        "kserve/sklearnserver",
        ("--model_name={{.Name}}", "--model_dir=/mnt/models", "--http_port=8080"),
    ),
    Runtime(  # config/runtimes/kserve-xgbserver.yaml
        "kserve-xgbserver",
        (_f("xgboost", "1", 3), _f("xgboost", "2", 3)),
        ("v1", "v2"),
        "kserve/xgbserver",
        ("--model_name={{.Name}}", "--model_dir=/mnt/models", "--http_port=8080"),
    ),
    Runtime(  # config/runtimes/kserve-lgbserver.yaml
        "kserve-lgbserver",
        (_f("lightgbm", "4", 3),),
        ("v1", "v2"),
        "kserve/lgbserver",
        ("--model_name={{.Name}}", "--model_dir=/mnt/models", "--http_port=8080"),
    ),
    Runtime(  # config/runtimes/kserve-mlserver.yaml
        "kserve-mlserver",
        (
            _f("sklearn", "0", 2),
            _f("sklearn", "1", 2),
            _f("xgboost", "1", 2),
            _f("xgboost", "2", 2),
            _f("lightgbm", "3", 2),
            _f("lightgbm", "4", 2),
            _f("mlflow", "1", 1),
            _f("mlflow", "2", 1),
        ),
        ("v2",),
        "docker.io/seldonio/mlserver",
    ),
    Runtime(  # config/runtimes/kserve-tensorflow-serving.yaml
        "kserve-tensorflow-serving",
        (_f("tensorflow", "1", 2), _f("tensorflow", "2", 2)),
        ("v1", "grpc-v1"),
        "tensorflow/serving",
        ("--model_name={{.Name}}", "--model_base_path=/mnt/models", "--rest_api_port=8080"),
    ),
    Runtime(  # config/runtimes/kserve-tritonserver.yaml
        "kserve-tritonserver",
        (
            Format("tensorrt", "8", True, 1),
            Format("tensorflow", "1", False, 1),
            Format("tensorflow", "2", False, 1),
            Format("onnx", "1", True, 1),
            Format("pytorch", "1", False, 1),
            Format("triton", "2", True, 1),
        ),
        ("v2", "grpc-v2"),
        "nvcr.io/nvidia/tritonserver",
        ("tritonserver", "--model-store=/mnt/models", "--http-port=8080"),
    ),
    Runtime(  # config/runtimes/kserve-torchserve.yaml
        "kserve-torchserve",
        (_f("pytorch", "1", 2),),
        ("v1", "v2", "grpc-v2"),
        "pytorch/torchserve-kfs",
        ("torchserve", "--start", "--model-store=/mnt/models/model-store"),
    ),
    Runtime(  # config/runtimes/kserve-pmmlserver.yaml
        "kserve-pmmlserver",
        (_f("pmml", "3", 1), _f("pmml", "4", 1)),
        ("v1", "v2"),
        "kserve/pmmlserver",
    ),
    Runtime(  # config/runtimes/kserve-paddleserver.yaml
        "kserve-paddleserver",
        (_f("paddle", "2", 1),),
        ("v1", "v2"),
        "kserve/paddleserver",
    ),
    Runtime(  # config/runtimes/kserve-huggingfaceserver.yaml
        "kserve-huggingfaceserver",
        (_f("huggingface", "1", 1),),
        ("v2", "v1"),
        "kserve/huggingfaceserver",
        ("--model_name={{.Name}}",),
    ),
)

_PROTOCOL_ORDER = {"v1": 1, "v2": 2, "grpc-v1": 3, "grpc-v2": 4}


class RuntimeError_(Exception):
    """Runtime resolution failed: ``reason`` and ``message`` go to modelStatus.lastFailureInfo."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def _labels(model: dict[str, Any], runtime: Runtime, explicit: bool) -> set[str]:
    """getServingRuntimeSupportedModelFormatLabelSet: with no runtime named, only formats
    with autoSelect count."""
    out: set[str] = set()
    for f in runtime.formats:
        if explicit or f.auto_select:
            out.add("mt:" + f.name)
            if f.version is not None:
                out.add(f"mt:{f.name}:{f.version}")
    return out


def _model_label(model: dict[str, Any]) -> str:
    fmt = model.get("modelFormat") or {}
    if fmt.get("version") is not None:
        return f"mt:{fmt.get('name')}:{fmt['version']}"
    return f"mt:{fmt.get('name')}"


def _priority(runtime: Runtime, fmt_name: str) -> int | None:
    for f in runtime.formats:
        if f.name == fmt_name and f.priority is not None:
            return f.priority
    return None


def select(model: dict[str, Any], runtimes: tuple[Runtime, ...] = RUNTIMES) -> tuple[str, str]:
    """(runtime name, protocol) for ``spec.predictor.model``, or ``RuntimeError_``."""
    by_name = {r.name: r for r in runtimes}
    protocol = model.get("protocolVersion")
    name = model.get("runtime")
    if name:
        r = by_name.get(name)
        if r is None:
            raise RuntimeError_("RuntimeNotRecognized", "Waiting for runtime to become available")
        if protocol is not None and protocol not in r.protocols:
            raise RuntimeError_(
                "NoSupportingRuntime",
                "Specified runtime does not support specified protocol version",
            )
        if _model_label(model) not in _labels(model, r, explicit=True):
            raise RuntimeError_(
                "NoSupportingRuntime",
                "Specified runtime does not support specified framework/version",
            )
        chosen = r
    else:
        wanted = protocol or "v1"  # ModelSpec.GetProtocol: v1 when unset
        candidates = [
            r
            for r in runtimes
            if _model_label(model) in _labels(model, r, explicit=False) and wanted in r.protocols
        ]
        # sortClusterServingRuntimeList (lowest protocol first), then by format priority desc
        candidates.sort(key=lambda r: min(_PROTOCOL_ORDER.get(p, 9) for p in r.protocols))
        fmt_name = str((model.get("modelFormat") or {}).get("name"))
        candidates.sort(key=lambda r: -(_priority(r, fmt_name) or 0))
        if not candidates:
            raise RuntimeError_(
                "NoSupportingRuntime", "No runtime found to support specified framework/version"
            )
        chosen = candidates[0]
    if protocol is None:  # reconcileModel: the runtime's preferred protocol
        protocol = min(chosen.protocols, key=lambda p: _PROTOCOL_ORDER.get(p, 9))
    return chosen.name, str(protocol)
