"""What a KServe model server serves: a model format on a serving runtime, v1 or v2 protocol."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from modeldeploy.flavors.kubernetes.config import KubernetesServiceConfig

FORMAT_FOR_MODEL_TYPE = {
    "sklearn": "sklearn",
    "scikit-learn": "sklearn",
    "xgboost": "xgboost",
    "lightgbm": "lightgbm",
    "tensorflow": "tensorflow",
    "pytorch": "pytorch",
    "onnx": "onnx",
    "mlflow": "mlflow",
    "pyfunc": "mlflow",
    "triton": "triton",
    "huggingface": "huggingface",
    "transformers": "huggingface",
    "pmml": "pmml",
    "paddle": "paddle",
}


# Formats whose only auto-selectable runtimes in kserve@v0.20.0 config/runtimes/*.yaml speak
# v2 (kserve-mlserver: mlflow; kserve-tritonserver: onnx, tensorrt, triton). KServe's runtime
# selection asks for v1 when protocolVersion is unset (predictor_model.go GetProtocol), so
# for these the flavor writes v2; the webhook also defaults triton to v2
# (inference_service_defaults.go, SetTritonDefaults).
V2_ONLY_FORMATS = frozenset({"mlflow", "onnx", "tensorrt", "triton"})
# ...and the formats whose selected runtime then speaks v2 (the runtime's preferred
# protocol is assigned when none is set: components/predictor.go reconcileModel).
V2_FORMATS = V2_ONLY_FORMATS


class KServeConfig(KubernetesServiceConfig):
    """An `InferenceService` whose predictor is `predictor.model` (the model-format form)."""

    flavor: ClassVar[str] = "kserve"

    model_format: str | None = Field(
        default=None,
        description="predictor.model.modelFormat.name (sklearn, xgboost, mlflow...); "
        "default from model_type.",
    )
    model_format_version: str | None = None
    runtime: str | None = Field(
        default=None, description="ServingRuntime to use; default: KServe picks one."
    )
    protocol_version: Literal["v1", "v2"] | None = Field(
        default=None,
        description=(
            "v1 (/v1/models/<name>:predict) or v2 (Open Inference); default: the protocol "
            "KServe picks for the model format's runtime."
        ),
    )
    served_model_name: str | None = Field(
        default=None,
        description=(
            "Name the runtime serves the model under, used in prediction paths; default the "
            "InferenceService's name (KServe's own servers, MLServer). Triton and TorchServe "
            "serve models under the names in their model repository: give that name."
        ),
    )
    min_replicas: int = Field(default=1, ge=0, le=1000)
    max_replicas: int | None = Field(default=None, ge=1, le=1000)
    deployment_mode: Literal["Knative", "Standard"] | None = Field(
        default=None,
        description=(
            "annotation serving.kserve.io/deploymentMode: Knative (canaryTrafficPercent "
            "rollouts) or Standard (Deployments; spec.canary rollouts, KServe 0.20+); default: "
            "the cluster's (inferenceservice-config deploy.defaultDeploymentMode). KServe "
            "refuses a change of mode on an existing server."
        ),
    )

    @field_validator("model_format")
    @classmethod
    def _lower(cls, value: str | None) -> str | None:
        return value.strip().lower() if value else None

    @model_validator(mode="after")
    def _check(self) -> KServeConfig:
        if self.max_replicas is not None and self.max_replicas < self.min_replicas:
            raise ValueError(
                f"max_replicas ({self.max_replicas}) is below min_replicas ({self.min_replicas})"
            )
        if self.resolved_format() is None:
            raise ValueError(
                f"no KServe model format for model_type {self.model_type!r}: set model_format "
                f"(e.g. sklearn) or a model_type KServe serves "
                f"({', '.join(sorted(FORMAT_FOR_MODEL_TYPE))})"
            )
        return self

    def written_protocol(self) -> str | None:
        """`protocolVersion` to write: the user's, else only where KServe's default (v1,
        `ModelSpec.GetProtocol`) would find no runtime for the format."""
        if self.protocol_version or self.runtime:
            return self.protocol_version
        fmt = self.resolved_format() or ""
        return "v2" if fmt in V2_ONLY_FORMATS else None

    def resolved_protocol(self, spec_protocol: str | None = None) -> str:
        """The protocol the server speaks: the user's, the one on the object (the webhook
        defaults Triton to v2), else what KServe picks for the format."""
        if self.protocol_version:
            return self.protocol_version
        if spec_protocol in ("v1", "v2"):
            return spec_protocol
        fmt = self.resolved_format() or ""
        return "v2" if fmt in V2_FORMATS else "v1"

    def resolved_format(self) -> str | None:
        if self.model_format:
            return self.model_format
        return FORMAT_FOR_MODEL_TYPE.get((self.model_type or "").strip().lower())
