"""What a Seldon Core 1 model server serves: a prepackaged server or a custom container."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from modeldeploy.flavors.kubernetes.config import KubernetesServiceConfig

PREPACKAGED_SERVERS = (
    "SKLEARN_SERVER",
    "XGBOOST_SERVER",
    "MLFLOW_SERVER",
    "TENSORFLOW_SERVER",
    "TRITON_SERVER",
    "HUGGINGFACE_SERVER",
    "TEMPO_SERVER",
)

# Prepackaged servers that Seldon Core 1.17.1 ships only for protocol v2: its default
# `predictor_servers` map (helm-charts/seldon-core-operator/values.yaml) has no `seldon`
# image for them, so the operator would resolve an empty image.
V2_ONLY_SERVERS = frozenset({"TRITON_SERVER", "HUGGINGFACE_SERVER", "TEMPO_SERVER"})

SERVER_FOR_MODEL_TYPE = {
    "sklearn": "SKLEARN_SERVER",
    "scikit-learn": "SKLEARN_SERVER",
    "xgboost": "XGBOOST_SERVER",
    "mlflow": "MLFLOW_SERVER",
    "pyfunc": "MLFLOW_SERVER",
    "tensorflow": "TENSORFLOW_SERVER",
    "triton": "TRITON_SERVER",
    "huggingface": "HUGGINGFACE_SERVER",
    "transformers": "HUGGINGFACE_SERVER",
}


class CustomContainer(BaseModel):
    """A container with your own predict code (Seldon's Python wrapper or any image).

    `env` is stored with the config on the cluster: put no secrets in it.
    """

    model_config = ConfigDict(extra="forbid")

    image: str = Field(min_length=1)
    command: list[str] | None = None
    args: list[str] | None = None
    env: dict[str, str] = Field(default_factory=dict)


class SeldonConfig(KubernetesServiceConfig):
    """A `SeldonDeployment` with one predictor whose graph is one model node."""

    flavor: ClassVar[str] = "seldon"

    implementation: str | None = Field(
        default=None,
        description=(
            "Prepackaged server (SKLEARN_SERVER, XGBOOST_SERVER, MLFLOW_SERVER, "
            "TENSORFLOW_SERVER, TRITON_SERVER, HUGGINGFACE_SERVER, TEMPO_SERVER); default from "
            "model_type."
        ),
    )
    protocol: Literal["seldon", "v2"] | None = Field(
        default=None,
        description=(
            "Seldon protocol or v2 (Open Inference Protocol); default v2 for TRITON_SERVER, "
            "HUGGINGFACE_SERVER and TEMPO_SERVER (Seldon ships them for v2 only), else seldon."
        ),
    )
    replicas: int = Field(default=1, ge=1, le=1000)
    container: CustomContainer | None = Field(
        default=None, description="Custom container instead of a prepackaged server."
    )

    @field_validator("implementation")
    @classmethod
    def _check_implementation(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip().upper()
        if value not in PREPACKAGED_SERVERS:
            raise ValueError(
                f"implementation {value!r} is not a Seldon prepackaged server; use one of "
                f"{', '.join(PREPACKAGED_SERVERS)}, or give a custom container"
            )
        return value

    @model_validator(mode="after")
    def _one_server(self) -> SeldonConfig:
        if self.container is not None and self.implementation is not None:
            raise ValueError("give either implementation or container, not both")
        implementation = self.resolved_implementation()
        if self.container is None and implementation is None:
            known = ", ".join(sorted(SERVER_FOR_MODEL_TYPE))
            raise ValueError(
                f"no Seldon server for model_type {self.model_type!r}: set implementation "
                f"(e.g. SKLEARN_SERVER), a model_type Seldon serves ({known}), or a container"
            )
        if self.protocol == "seldon" and implementation in V2_ONLY_SERVERS:
            raise ValueError(
                f"Seldon Core ships {implementation} for protocol v2 only; set protocol to v2 "
                "(or leave it unset)"
            )
        return self

    def resolved_protocol(self) -> str:
        if self.protocol:
            return self.protocol
        return "v2" if self.resolved_implementation() in V2_ONLY_SERVERS else "seldon"

    def resolved_implementation(self) -> str | None:
        if self.container is not None:
            return None
        if self.implementation:
            return self.implementation
        return SERVER_FOR_MODEL_TYPE.get((self.model_type or "").strip().lower())
