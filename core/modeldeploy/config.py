"""What to serve and where it came from; flavors subclass `ServiceConfig` with their own fields."""

from __future__ import annotations

import re
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from modeldeploy.errors import InvalidConfigError

_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_LINEAGE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._:-]{0,249}$")
_PRINTABLE = re.compile(r"^[\x21-\x7e][\x20-\x7e]{0,249}$")

DEFAULT_PIPELINE = "default"
DEFAULT_STEP = "deploy"


class ServiceConfig(BaseModel):
    """Flavor-independent description of one model server.

    Servers of the same `pipeline_name`, `step_name` and `model_name` are *equivalent*:
    continuous deployment updates one of them in place instead of starting another.
    Holds no secrets, so it can be stored beside the server and shown to anyone.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())

    flavor: ClassVar[str] = ""

    model_name: str = Field(description="Registered model name; letters, digits, '.', '_', '-'.")
    model_uri: str = Field(
        description="Where the model lives (runs:/, models:/, file path, s3://...)."
    )
    model_version: str | None = Field(default=None, description="Registry version being served.")
    model_type: str | None = Field(default=None, description="Framework, e.g. sklearn, xgboost.")
    pipeline_name: str = Field(default=DEFAULT_PIPELINE, description="DAG id or flow name.")
    run_id: str | None = Field(default=None, description="Pipeline run that produced the model.")
    step_name: str = Field(default=DEFAULT_STEP, description="Task or step that deployed it.")
    description: str | None = None

    @field_validator("model_name")
    @classmethod
    def _check_model_name(cls, value: str) -> str:
        if not _MODEL_NAME.match(value):
            raise ValueError(
                f"model_name {value!r} is not valid: use 1-128 letters, digits, '.', '_' or '-',"
                " starting with a letter or digit"
            )
        return value

    @field_validator("pipeline_name", "step_name")
    @classmethod
    def _check_lineage_name(cls, value: str) -> str:
        value = value.strip()
        if not _LINEAGE_NAME.match(value):
            raise ValueError(
                f"{value!r} is not a valid pipeline or step name: use up to 250 letters, digits,"
                " spaces, '.', '_', ':' or '-', starting with a letter or digit"
            )
        return value

    @field_validator("run_id")
    @classmethod
    def _check_run_id(cls, value: str | None) -> str | None:
        if value is not None and not _PRINTABLE.match(value):
            raise ValueError(f"run_id {value!r} must be 1-250 printable ASCII characters")
        return value

    @field_validator("model_uri")
    @classmethod
    def _check_model_uri(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("model_uri is empty: pass the URI or path of a saved model")
        return value

    def equivalence_key(self) -> tuple[str, str, str]:
        return (self.pipeline_name, self.step_name, self.model_name)

    def to_record(self) -> dict[str, Any]:
        """JSON-ready form stored beside the server (annotation, state file)."""
        return {"flavor": self.flavor, **self.model_dump(mode="json")}


C = TypeVar("C", bound=ServiceConfig)


def parse_config(config_class: type[C], data: dict[str, Any] | ServiceConfig) -> C:
    """Validate user input into a flavor config, turning pydantic errors into one clear line."""
    from pydantic import ValidationError

    if isinstance(data, config_class):
        return data
    if isinstance(data, ServiceConfig):
        data = data.model_dump(exclude_unset=True)
    payload = {k: v for k, v in dict(data).items() if k != "flavor"}
    try:
        return config_class.model_validate(payload)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'config'}: {err['msg']}"
            for err in exc.errors()
        )
        raise InvalidConfigError(
            f"invalid {config_class.flavor or 'service'} config: {problems}"
        ) from None
