"""Connection types generated from the installed flavors: `modeldeploy_<flavor>` each.

The form's fields are the flavor's settings model (`modeldeploy.settings`): names, labels,
descriptions; secret settings become password fields, which Airflow stores encrypted and
masks. Nothing here names a flavor: a flavor installed from another distribution gets its
connection type from its `modeldeploy.flavors` entry point alone.
"""

from __future__ import annotations

import logging
from typing import Any

CONN_TYPE_PREFIX = "modeldeploy_"
#: a generated `ModelDeployHook` subclass declaring the flavor's own connection type
HOOK_CLASS_OF_FLAVOR = "modeldeploy_provider.hooks.by_flavor.{flavor}"
#: the connection's own fields: every setting is an extra field
HIDDEN_FIELDS = ["host", "schema", "login", "password", "port", "extra"]

log = logging.getLogger(__name__)

_JSON_TYPES = {
    "string": "string",
    "boolean": "boolean",
    "integer": "integer",
    "number": "number",
    "mapping": "string",  # JSON (or YAML) text in the form
    "list": "string",
}


def conn_type_of(flavor: str) -> str:
    return f"{CONN_TYPE_PREFIX}{flavor}"


def hook_name_of(flavor: str) -> str:
    from modeldeploy.flavors import flavor_title

    return f"modeldeploy: {flavor_title(flavor)}"


def flavor_of(conn_type: str | None) -> str | None:
    """The flavor a connection type names, or None if it is not a modeldeploy type."""
    if not conn_type or not conn_type.startswith(CONN_TYPE_PREFIX):
        return None
    return conn_type.removeprefix(CONN_TYPE_PREFIX) or None


def conn_field(field: Any) -> dict[str, Any]:
    """One `conn-fields` entry from a `modeldeploy.settings.SettingField`."""
    schema: dict[str, Any] = {"type": [_JSON_TYPES[field.kind], "null"]}
    if field.secret:
        schema["format"] = "password"  # Airflow: sensitive, masked, encrypted
    elif field.default is not None and not isinstance(field.default, dict | list):
        schema["default"] = field.default
    if field.choices:
        schema["enum"] = list(field.choices)
    description = field.description
    if field.kind in ("mapping", "list"):
        description = f"{description} (JSON)".strip()
    return {"label": field.label, "description": description, "schema": schema}


def connection_type(flavor: str) -> dict[str, Any]:
    """The `connection-types` entry of one installed flavor."""
    from modeldeploy.flavors import settings_class_of
    from modeldeploy.settings import setting_fields

    fields = setting_fields(settings_class_of(flavor))
    placeholders = {f.name: f.default for f in fields if isinstance(f.default, str) and f.default}
    return {
        "connection-type": conn_type_of(flavor),
        "hook-class-name": HOOK_CLASS_OF_FLAVOR.format(flavor=flavor),
        "hook-name": hook_name_of(flavor),
        "conn-fields": {f.name: conn_field(f) for f in fields},
        "ui-field-behaviour": {
            "hidden-fields": HIDDEN_FIELDS,
            "relabeling": {},
            "placeholders": placeholders,
        },
    }


def connection_types() -> list[dict[str, Any]]:
    """One connection type per installed flavor; a flavor that cannot load is left out
    (the CLI's `modeldeploy flavors` says why) so the others still show."""
    from modeldeploy.flavors import DEFAULT_FLAVOR, available_flavors

    types = []
    # the default flavor first: Airflow's form opens on the first type of a provider
    for flavor in sorted(available_flavors(), key=lambda f: (f != DEFAULT_FLAVOR, f)):
        try:
            types.append(connection_type(flavor))
        except Exception as exc:
            log.warning("modeldeploy flavor %s has no connection type: %s", flavor, exc)
    return types
