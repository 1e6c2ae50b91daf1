"""Typed errors: every message says what failed, where, and what to do next."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modeldeploy.redaction import redact

if TYPE_CHECKING:
    from modeldeploy.records import DeploymentRecord


class ModelDeployError(Exception):
    """Base class of every error the engine raises on purpose.

    Its message passes through `redact`, so a password in a URI (ours, or one quoted by
    MLflow, requests or kubernetes in a text we pass on) never reaches a log or a UI.
    """

    #: when a change failed and the engine undid it before raising: the record of that
    #: rollback (`modeldeploy.records`), for a skin to publish before its task fails
    record: DeploymentRecord | None = None

    def __init__(self, *args: object) -> None:
        super().__init__(*(redact(a) if isinstance(a, str) else a for a in args))


class InvalidConfigError(ModelDeployError, ValueError):
    """Bad input, refused before anything was changed."""


class FlavorNotFoundError(InvalidConfigError):
    """No flavor of that name is installed under the `modeldeploy.flavors` entry points."""


class ModelServerNotFoundError(ModelDeployError, LookupError):
    """No model server with that identity exists (any more)."""


class ConflictError(ModelDeployError):
    """Someone else changed the same object; re-read and retry, or stop the other writer."""


class DeploymentTimeoutError(ModelDeployError, TimeoutError):
    """The platform did not report ready before the deadline; the last state is in the message."""


class PlatformError(ModelDeployError):
    """The serving platform reported a terminal failure; the message carries its own reason."""


class RegistryError(ModelDeployError):
    """The model registry refused or could not answer a request."""
