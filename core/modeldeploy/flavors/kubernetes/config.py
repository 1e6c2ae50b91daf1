"""Config fields shared by the Kubernetes flavors, and checks made before anything is written."""

from __future__ import annotations

import re
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, field_validator

from modeldeploy.config import ServiceConfig
from modeldeploy.errors import InvalidConfigError
from modeldeploy.flavors.kubernetes.naming import check_dns1123_label, check_server_name

# A Kubernetes quantity: 100m, 0.5, 1Gi, 2e3...
_QUANTITY = re.compile(r"^[+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+|[numkMGTPE]i?|Ki)?$")


class ResourceRequirements(BaseModel):
    """CPU, memory and accelerator requests/limits, as Kubernetes quantities."""

    model_config = ConfigDict(extra="forbid")

    requests: dict[str, str] = Field(default_factory=dict)
    limits: dict[str, str] = Field(default_factory=dict)

    @field_validator("requests", "limits", mode="before")
    @classmethod
    def _stringify(cls, value: object) -> object:
        if isinstance(value, dict):
            return {str(k): str(v) for k, v in value.items()}
        return value

    @field_validator("requests", "limits")
    @classmethod
    def _check_quantities(cls, value: dict[str, str]) -> dict[str, str]:
        for key, quantity in value.items():
            if not _QUANTITY.match(quantity):
                raise ValueError(
                    f"{key}={quantity!r} is not a Kubernetes quantity (e.g. 500m, 1, 512Mi, 2Gi)"
                )
        return value

    def to_k8s(self) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {}
        if self.requests:
            out["requests"] = dict(self.requests)
        if self.limits:
            out["limits"] = dict(self.limits)
        return out


class KubernetesServiceConfig(ServiceConfig):
    """What both Kubernetes flavors add to a service config."""

    name: str | None = Field(
        default=None,
        description=(
            "Name of the custom resource (DNS-1035, at most 45 characters); default: the "
            "model name plus part of the server's uuid. Used when the server is created; "
            "in-place updates keep the existing name."
        ),
    )
    resources: ResourceRequirements | None = None
    service_account_name: str | None = Field(
        default=None, description="ServiceAccount the model server's pods run as."
    )

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str | None) -> str | None:
        return None if value is None else check_server_name(value)

    @field_validator("service_account_name")
    @classmethod
    def _check_service_account(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return check_dns1123_label(value, "service_account_name", max_length=253)


MLFLOW_URI = re.compile(r"^(runs|models|mlflow-artifacts):", re.IGNORECASE)


def check_model_uri(uri: str, schemes: tuple[str, ...], flavor: str) -> None:
    """Refuse URIs the platform's storage initializer cannot fetch, before anything is written."""
    if MLFLOW_URI.match(uri):
        raise InvalidConfigError(
            f"model_uri {uri!r} is an MLflow URI, which the {flavor} storage initializer "
            "cannot resolve; pass the artifact's storage URI instead (e.g. the s3:// or gs:// "
            "location shown by `mlflow artifacts download`/the run's artifact_uri)"
        )
    parsed = urlparse(uri)
    scheme = parsed.scheme.lower()
    if not scheme or len(scheme) == 1 or uri.startswith(("/", ".", "~")) or scheme == "file":
        raise InvalidConfigError(
            f"model_uri {uri!r} is a local path; a {flavor} model server runs in the cluster "
            f"and reads models from storage it can reach: {', '.join(s + '://' for s in schemes)}"
        )
    if scheme not in schemes:
        raise InvalidConfigError(
            f"model_uri {uri!r} uses the scheme {scheme!r}, which the {flavor} storage "
            f"initializer does not read; use one of {', '.join(s + '://' for s in schemes)}"
        )
    if not parsed.netloc:
        raise InvalidConfigError(f"model_uri {uri!r} has no bucket or host after '{scheme}://'")
