"""Helpers for the Prefect collection tests."""

from __future__ import annotations

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
