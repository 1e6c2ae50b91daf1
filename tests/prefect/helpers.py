"""Helpers for the Prefect collection tests."""

from __future__ import annotations

from datetime import datetime
from typing import Any


def run_logs(flow_run_id: Any) -> list[str]:
    """Messages of a flow run's logs (its tasks' included) as stored by the Prefect API."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=30)
    with get_client(sync_client=True) as client:
        logs = client.read_logs(
            LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])), limit=200
        )
    return [log.message for log in logs]


def flow_run_id(state: Any) -> Any:
    return state.state_details.flow_run_id


def model_events(
    resource_id: str, count: int, timeout: float = 60.0, since: datetime | None = None
) -> list[Any]:
    """The first `count` events about `resource_id` (that occurred `since`, if given),
    oldest first, once the server stored them (sent asynchronously; `timeout` bounds the
    wait, then whatever arrived)."""
    import time

    from prefect.client.orchestration import get_client
    from prefect.events.filters import (
        EventFilter,
        EventOccurredFilter,
        EventOrder,
        EventResourceFilter,
    )
    from prefect.events.worker import EventsWorker

    EventsWorker.drain_all()
    deadline = time.monotonic() + timeout
    query = EventFilter(
        resource=EventResourceFilter(id=[resource_id]),
        order=EventOrder.ASC,
        **({"occurred": EventOccurredFilter(since=since)} if since else {}),
    )
    while True:
        with get_client(sync_client=True) as client:
            events = list(client.read_events(filter=query, limit=50).events)
        if len(events) >= count or time.monotonic() > deadline:
            return events
        time.sleep(0.2)  # the server persists events in the background: nothing to await


def artifacts_of(key: str, flow_run: Any) -> list[Any]:
    """The artifacts of `key` created by a flow run (any run: None), oldest first."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        ArtifactFilterKey,
    )
    from prefect.client.schemas.sorting import ArtifactSort

    with get_client(sync_client=True) as client:
        newest_first = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=[key]),
                flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run]) if flow_run else None,
            ),
            sort=ArtifactSort.CREATED_DESC,
        )
    return list(reversed(newest_first))
