"""The lifecycle of a model server, as observed on its platform."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class ServiceState(StrEnum):
    INACTIVE = "inactive"
    PENDING_STARTUP = "pending_startup"
    ACTIVE = "active"
    PENDING_SHUTDOWN = "pending_shutdown"
    ERROR = "error"


def utcnow() -> datetime:
    return datetime.now(UTC)


class ServiceStatus(BaseModel):
    """What the platform last said about a server.

    `generation` is what we last wrote; `observed_generation` is what the platform has
    acted on. A server is only ready for a deploy when both match, so a Ready left over
    from the previous model is never mistaken for the new one.
    """

    model_config = ConfigDict(extra="forbid")

    state: ServiceState = ServiceState.INACTIVE
    last_error: str | None = None
    generation: int = 0
    observed_generation: int | None = None
    revision: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)

    @property
    def is_current(self) -> bool:
        return self.observed_generation is None or self.observed_generation >= self.generation
