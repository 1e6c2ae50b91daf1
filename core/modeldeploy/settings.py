"""The settings contract between a flavor and every surface that configures it.

A flavor declares one pydantic model, its deployer's `settings_class` (a `DeployerSettings`
subclass). Everything a user can set is read from that model, once:

- the field *name* is the key everywhere (CLI `--setting NAME=...`, the environment variable
  `MODELDEPLOY_<FLAVOR>_<NAME>`, an Airflow connection's extra field, a Prefect block field);
- `title` is the label a form shows (default: the name, capitalised) and `description` the
  help text under it;
- a field is *secret* when its type is `SecretStr`/`SecretBytes` or when it is declared with
  `secret_field(...)` (the marker `json_schema_extra={"secret": True}`). Secret fields are
  masked by every surface: left out of `repr`, shown as password fields in the Airflow form,
  stored as `SecretStr`/`SecretDict` by Prefect, masked in Airflow task logs.

Text from forms, environment variables and command lines is turned into settings in one
place, `coerce_settings`, with the engine's `as_bool`, `as_number` and `as_mapping`.
"""

from __future__ import annotations

import ast
import json
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, SecretBytes, SecretStr, model_validator
from pydantic.fields import FieldInfo

from modeldeploy.errors import InvalidConfigError
from modeldeploy.redaction import redact, register_secret, register_secrets_in

SECRET_MARKER = "secret"

SettingKind = Literal["string", "boolean", "integer", "number", "mapping", "list"]

_TRUE = frozenset({"true", "1", "yes", "on", "y", "t"})
_FALSE = frozenset({"false", "0", "no", "off", "n", "f", "none", ""})


def setting_env_var(flavor: str, name: str) -> str:
    """The environment variable the CLI reads a setting from: `MODELDEPLOY_<FLAVOR>_<NAME>`."""
    parts = ("".join(c if c.isalnum() else "_" for c in part).upper() for part in (flavor, name))
    return "_".join(("MODELDEPLOY", *parts))


def secret_field(default: Any = None, **kwargs: Any) -> Any:
    """`Field(...)` for a setting that is secret whatever its type (a dict, a URI...)."""
    extra = dict(kwargs.pop("json_schema_extra", None) or {})
    extra[SECRET_MARKER] = True
    return Field(default, repr=False, json_schema_extra=extra, **kwargs)


class DeployerSettings(BaseModel):
    """Where a flavor's servers live (state directory, cluster, namespace...). No model here.

    Every flavor's settings carry `tracking_uri`: the MLflow tracking server and model
    registry that record candidates and the `champion` alias for this deployer (see
    `modeldeploy.flavors.registry_for`). It is secret: it may carry a password.
    """

    # Validation errors must not quote what was given: settings may be secret.
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    tracking_uri: str | None = secret_field(
        title="MLflow tracking URI",
        description=(
            "MLflow tracking server and model registry (candidates, champion alias, rollback). "
            "Empty: $MLFLOW_TRACKING_URI, else SQLite under the modeldeploy home. Kept "
            "secret: it may carry a password."
        ),
    )

    @model_validator(mode="after")
    def _register_secrets(self) -> DeployerSettings:
        """Hand every secret to the engine's redaction step as soon as settings exist, so no
        message, log line or repr can show it: declared secret fields, passwords inside
        URIs, and strings under secret-sounding keys (a kubeconfig's `token`). A secret URI
        (the tracking URI) hides only its password, so messages still say where."""
        register_secrets_in(self)
        for name in secret_names(type(self)):
            value = reveal(getattr(self, name))
            if isinstance(value, str) and "://" not in value:
                register_secret(value)
            elif not isinstance(value, str):  # a URI's password is registered above
                register_secrets_in(value, "secret")
        return self

    def __repr_args__(self) -> Any:
        hidden = secret_names(type(self))
        return [(k, v) for k, v in super().__repr_args__() if k not in hidden]

    def __repr__(self) -> str:
        return redact(super().__repr__())

    def __str__(self) -> str:
        return redact(super().__str__())

    def revealed(self) -> dict[str, Any]:
        """The settings as plain values, secrets revealed (only to hand them to a client)."""
        return {name: reveal(getattr(self, name)) for name in type(self).model_fields}


@dataclass(frozen=True)
class SettingField:
    """One setting as a form or a command line shows it."""

    name: str
    label: str
    description: str
    kind: SettingKind
    secret: bool
    required: bool
    default: Any = None
    choices: tuple[str, ...] = ()


# --- reading the model ------------------------------------------------------------------


def _members(annotation: Any) -> list[Any]:
    """The types of a union (`X | None` gives [X]); other annotations as one member."""
    origin = get_origin(annotation)
    if origin is typing.Annotated:
        return _members(get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        out: list[Any] = []
        for arg in get_args(annotation):
            if arg is not type(None):
                out.extend(_members(arg))
        return out
    return [annotation]


def _kind(annotation: Any) -> tuple[SettingKind, tuple[str, ...]]:
    members = _members(annotation)
    choices: list[str] = []
    kinds: set[SettingKind] = set()
    for member in members:
        origin = get_origin(member) or member
        if origin is Literal:
            choices.extend(str(a) for a in get_args(member))
            kinds.add("string")
        elif origin is bool:
            kinds.add("boolean")
        elif origin is int:
            kinds.add("integer")
        elif origin is float:
            kinds.add("number")
        elif origin in (dict, Mapping) or (
            isinstance(origin, type) and issubclass(origin, BaseModel)
        ):
            kinds.add("mapping")
        elif origin in (list, tuple, set, frozenset):
            kinds.add("list")
        else:  # str, Path, SecretStr, URLs...
            kinds.add("string")
    for kind in ("mapping", "list", "boolean", "integer", "number"):
        if kinds == {kind} or (kind in kinds and "string" not in kinds):
            return kind, tuple(choices)
    return "string", tuple(choices)


def is_secret(info: FieldInfo) -> bool:
    extra = info.json_schema_extra
    if isinstance(extra, dict) and extra.get(SECRET_MARKER):
        return True
    return any(m in (SecretStr, SecretBytes) for m in _members(info.annotation))


def secret_names(settings_class: type[BaseModel]) -> frozenset[str]:
    """Names of the secret settings of a settings model."""
    return frozenset(n for n, info in settings_class.model_fields.items() if is_secret(info))


def setting_fields(settings_class: type[BaseModel]) -> list[SettingField]:
    """The settings a flavor declares, in declaration order, as forms and CLIs show them."""
    fields = []
    for name, info in settings_class.model_fields.items():
        kind, choices = _kind(info.annotation)
        default = None if info.is_required() else info.get_default(call_default_factory=True)
        if isinstance(default, Path):
            default = str(default)
        if isinstance(default, BaseModel | SecretStr | SecretBytes):
            default = None
        fields.append(
            SettingField(
                name=name,
                label=info.title or name.replace("_", " ").capitalize(),
                description=" ".join((info.description or "").split()),
                kind=kind,
                secret=is_secret(info),
                required=info.is_required(),
                default=default,
                choices=choices,
            )
        )
    return fields


# --- text into values: the one place ----------------------------------------------------


def as_bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise InvalidConfigError(f"{name} must be true or false, got {value!r}")


def as_number(value: Any, name: str) -> float:
    if isinstance(value, bool):
        raise InvalidConfigError(f"{name} must be a number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InvalidConfigError(f"{name} must be a number, got {value!r}") from None


def as_integer(value: Any, name: str) -> int:
    number = as_number(value, name)
    if not number.is_integer():
        raise InvalidConfigError(f"{name} must be a whole number, got {value!r}")
    return int(number)


def as_mapping(value: Any, name: str, *, secret: bool = False) -> dict[str, Any]:
    """A dict given as such, or as JSON, a Python literal (what Jinja renders) or YAML."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return {}
    if isinstance(value, str):
        value = _parse_text(value, name, secret=secret, kind="mapping (dict or JSON object)")
    if not isinstance(value, Mapping):
        raise InvalidConfigError(f"{name} must be a mapping, got {type(value).__name__}")
    return dict(value)


def _parse_text(text: str, name: str, *, secret: bool, kind: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        pass
    try:
        import yaml

        parsed = yaml.safe_load(text)
    except Exception:
        parsed = None
    if isinstance(parsed, dict | list):
        return parsed
    shown = "(secret, not shown)" if secret else repr(text[:200])
    raise InvalidConfigError(
        f"{name} must be a {kind}, written as JSON or YAML; got text that is neither {shown}"
    )


def coerce_setting(field: SettingField, value: Any, where: str = "") -> Any:
    """One setting from what a form, the environment or a command line gave."""
    name = f"{where}{field.name}"
    if isinstance(value, SecretStr | SecretBytes):
        value = value.get_secret_value()
    if not isinstance(value, str):
        return value
    if field.kind == "boolean":
        return as_bool(value, name)
    if field.kind == "integer":
        return as_integer(value, name)
    if field.kind == "number":
        return as_number(value, name)
    if field.kind == "mapping":
        return as_mapping(value, name, secret=field.secret)
    if field.kind == "list":
        parsed = _parse_text(value, name, secret=field.secret, kind="list (JSON array)")
        if not isinstance(parsed, list):
            raise InvalidConfigError(f"{name} must be a list, got {type(parsed).__name__}")
        return parsed
    return value


def coerce_settings(
    settings_class: type[BaseModel], raw: Mapping[str, Any], where: str = ""
) -> dict[str, Any]:
    """Settings from text: empty values dropped (the default applies), the rest parsed by
    each field's kind. Unknown names are left for the model to refuse; `where` prefixes
    messages (e.g. "connection 'x': ")."""
    fields = {f.name: f for f in setting_fields(settings_class)}
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if value is None or (isinstance(value, str) and value.strip() == ""):
            continue
        field = fields.get(key)
        out[key] = coerce_setting(field, value, where) if field else value
    return out


def reveal(value: Any) -> Any:
    """A secret's value (recursively); other values unchanged."""
    if isinstance(value, SecretStr | SecretBytes):
        return value.get_secret_value()
    get = getattr(value, "get_secret_value", None)
    if callable(get):  # Prefect's SecretDict and friends
        return reveal(get())
    if isinstance(value, BaseModel):
        return {k: reveal(getattr(value, k)) for k in type(value).model_fields}
    if isinstance(value, Mapping):
        return {k: reveal(v) for k, v in value.items()}
    if isinstance(value, Path):
        return str(value)
    return value


def secret_values(
    settings: BaseModel | Mapping[str, Any], settings_class: type[BaseModel]
) -> list[str]:
    """The text of every secret setting (to mask in logs), leaves of mappings included."""
    data = settings if isinstance(settings, Mapping) else dict(settings)
    found: list[str] = []

    def collect(value: Any) -> None:
        value = reveal(value)
        if isinstance(value, Mapping):
            for item in value.values():
                collect(item)
        elif isinstance(value, list | tuple):
            for item in value:
                collect(item)
        elif value not in (None, "") and not isinstance(value, bool | int | float):
            found.append(str(value))

    for name in secret_names(settings_class):
        if name in data:
            collect(data[name])
    return found


def validate_settings(
    settings_class: type[DeployerSettings], raw: Mapping[str, Any], flavor: str
) -> DeployerSettings:
    """The model from text or values; an error names the setting, never its (secret) value."""
    from pydantic import ValidationError

    try:
        return settings_class.model_validate(coerce_settings(settings_class, raw))
    except ValidationError as exc:
        first = exc.errors(include_input=False, include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "settings"
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            known = ", ".join(settings_class.model_fields)
            message = f"{flavor} has no such setting; its settings are: {known}"
        raise InvalidConfigError(
            f"invalid {flavor} deployer settings: {where}: {message}"
        ) from None
