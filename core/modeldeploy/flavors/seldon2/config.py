"""What a Seldon Core 2 model server serves: a `Model` matched to a `Server` by capability."""

from __future__ import annotations

import re
from typing import ClassVar

from pydantic import Field, field_validator, model_validator

from modeldeploy.flavors.kubernetes.config import KubernetesServiceConfig

# Capabilities the Servers Seldon Core 2 installs advertise (SELDON_SERVER_CAPABILITIES of
# the mlserver and triton ServerConfigs); `modelType` is added to the model's requirements
# by the operator (operator/apis/mlops/v1alpha1/model_types.go AsSchedulerModel), so it must
# be one of them.
CAPABILITY_FOR_MODEL_TYPE = {
    "sklearn": "sklearn",
    "scikit-learn": "sklearn",
    "xgboost": "xgboost",
    "lightgbm": "lightgbm",
    "mlflow": "mlflow",
    "pyfunc": "mlflow",
    "huggingface": "huggingface",
    "transformers": "huggingface",
    "python": "python",
    "tensorflow": "tensorflow",
    "pytorch": "pytorch",
    "onnx": "onnx",
    "triton": "triton",
}
QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?([KMGTPE]i?|[mk])?$")


class Seldon2Config(KubernetesServiceConfig):
    """A `Model`: storage URI, what its Server must be able to do, how many replicas."""

    flavor: ClassVar[str] = "seldon2"

    requirements: list[str] = Field(
        default_factory=list,
        description=(
            "Capabilities the Server must advertise (e.g. sklearn, mlserver-1.3.4); with "
            "model_type, its capability is added (sklearn, xgboost, mlflow...)."
        ),
    )
    replicas: int = Field(default=1, ge=1, le=1000)
    server: str | None = Field(default=None, description="Pin the model to this Server.")
    memory: str | None = Field(
        default=None, description="Memory the model needs on its Server, e.g. 100Ki, 2Gi."
    )

    @field_validator("requirements")
    @classmethod
    def _strip(cls, value: list[str]) -> list[str]:
        out = [r.strip() for r in value if r.strip()]
        for r in out:
            if "," in r:
                raise ValueError(f"requirement {r!r}: give one capability per item")
        return out

    @field_validator("memory")
    @classmethod
    def _check_memory(cls, value: str | None) -> str | None:
        if value is not None and not QUANTITY.match(value.strip()):
            raise ValueError(f"memory {value!r} is not a Kubernetes quantity such as 100Ki or 2Gi")
        return value.strip() if value else None

    @model_validator(mode="after")
    def _something_to_match(self) -> Seldon2Config:
        if self.model_type and not self.requirements and not self.model_type_capability():
            known = ", ".join(sorted(CAPABILITY_FOR_MODEL_TYPE))
            raise ValueError(
                f"model_type {self.model_type!r} is no Seldon Core 2 capability: use one "
                f"of {known}, or give requirements that your Server advertises"
            )
        if not self.model_type and not self.requirements:
            raise ValueError(
                "give model_type (e.g. sklearn) or requirements, so Seldon can pick a Server "
                "that serves the model"
            )
        return self

    def model_type_capability(self) -> str | None:
        """`spec.modelType`: the capability of `model_type`, when it is one."""
        return CAPABILITY_FOR_MODEL_TYPE.get((self.model_type or "").strip().lower())
