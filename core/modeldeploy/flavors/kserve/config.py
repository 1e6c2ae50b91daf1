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
    protocol_version: Literal["v1", "v2"] = Field(
        default="v1", description="v1 (/v1/models/<name>:predict) or v2 (Open Inference)."
    )
    min_replicas: int = Field(default=1, ge=0, le=1000)
    max_replicas: int | None = Field(default=None, ge=1, le=1000)

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

    def resolved_format(self) -> str | None:
        if self.model_format:
            return self.model_format
        return FORMAT_FOR_MODEL_TYPE.get((self.model_type or "").strip().lower())
