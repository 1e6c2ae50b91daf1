"""What both progressive benches measure and print (the local flavor, bench_progressive.py,
and the Kubernetes flavors, bench_kubernetes_progressive.py), so the two tables read alike.

A steady client's `timeline` (tests/progressive/helpers.py) says when each answer came and
which model gave it; the two saved models (bench_mlflow_local.save_models) disagree on the
sample row, so an answer names the variant that served it.
"""

from __future__ import annotations

import logging
import math
import os
import time
from typing import Any

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")

SHARE_REQUESTS = 1000
SHARE_TOLERANCE = 5.0
#: the first saved model answers class 0 for the sample row, the second (constant) class 2
FIRST_ANSWER, SECOND_ANSWER = 0, 2
#: what a challenger that fails every prediction answers: errors only
NO_ANSWER = object()
#: a bad challenger has all traffic back on the champion this soon after the verdict
BACK_TARGET_SECONDS = 2.0
GAP_TARGET_SECONDS = 1.0
Row = tuple[str, str, str, bool | None]


def share_of(client: Any, since: int, answer: Any) -> tuple[float, int]:
    """Percent of the answered requests from the `since`-th on that gave `answer`."""
    window = [a for a in client.timeline[since:] if a.ok]
    if not window:
        return float("nan"), 0
    return 100 * sum(a.prediction == answer for a in window) / len(window), len(window)


def share_rows(
    shares: list[tuple[int, float, int]], prefix: str = "", minimum: int = SHARE_REQUESTS
) -> list[Row]:
    """(asked, measured, requests) per step, as table rows against the tolerance."""
    return [
        (
            f"{prefix}share at the {asked}% step ({count} requests)",
            f"{share:.1f}%",
            f"{asked} +/- {SHARE_TOLERANCE:.0f}",
            abs(share - asked) <= SHARE_TOLERANCE and count >= minimum,
        )
        for asked, share, count in shares
    ]


def steady_rows(label: str, client: Any) -> list[Row]:
    """Failed requests (and how many were resent) and the longest silence of one client."""
    gap = client.longest_gap()
    return [
        (
            f"{label}: failed requests",
            f"{client.failed} of {client.sent} ({client.retried} resent)",
            "0",
            not client.failed,
        ),
        (
            f"{label}: longest gap without an answer",
            f"{gap * 1000:.0f} ms",
            f"< {GAP_TARGET_SECONDS * 1000:.0f} ms",
            gap < GAP_TARGET_SECONDS,
        ),
    ]


def client_back(client: Any, challenger: Any, verdict_at: float) -> float:
    """Seconds from the verdict to the client's last answer from the challenger (its
    prediction, or an error: only a failing challenger answers with errors); 0 if none came
    after the verdict. Sampled: at a small share, the last one may come well before."""
    times = [a.at for a in client.timeline if (not a.ok) or a.prediction == challenger]
    if math.isnan(verdict_at):  # no verdict was seen: nothing to measure from
        return verdict_at
    return max(0.0, times[-1] - verdict_at) if times else 0.0


def back_row(label: str, seconds: float, source: str) -> Row:
    return (
        f"{label}: verdict to all traffic on the champion ({source})",
        f"{seconds:.2f} s",
        f"< {BACK_TARGET_SECONDS:.0f} s",
        seconds < BACK_TARGET_SECONDS,
    )


def stray_row(label: str, client: Any, challenger: Any, done_at: float) -> Row:
    """Did the client meet the challenger (its answer or an error) once the rollout had
    returned as finished? One request at a time: the first answer after `done_at` may have
    been routed before, so it is not counted."""
    after = [a for a in client.timeline if a.at > done_at][1:]
    strays = [a for a in after if (not a.ok) or a.prediction == challenger]
    lag = f", the last {1000 * (strays[-1].at - done_at):.0f} ms after" if strays else ""
    return (
        f"{label}: challenger answers or errors once finished ({len(after)} requests)",
        f"{len(strays)}{lag}",
        "0",
        not strays and len(after) > 0,
    )


class VerdictClock(logging.Handler):
    """Notes (monotonic) when the runner logs a failed step verdict: the moment the
    analysis decided, before the rollback starts moving traffic."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.failed_at: float | None = None

    def emit(self, record: logging.LogRecord) -> None:
        # "<kind> rollout of <model>, step i/n (<step>): <verdict> — <reason>", read as
        # formatted: modeldeploy's redacting filter has folded the arguments in already
        message = record.getMessage()
        if self.failed_at is None and "rollout of" in message and "): failed " in message:
            self.failed_at = time.monotonic()

    def __enter__(self) -> VerdictClock:
        logger = logging.getLogger("modeldeploy")
        logger.addHandler(self)
        self._level = logger.level
        if not logger.isEnabledFor(logging.INFO):
            logger.setLevel(logging.INFO)
        return self

    def __exit__(self, *_: object) -> None:
        logger = logging.getLogger("modeldeploy")
        logger.removeHandler(self)
        logger.setLevel(self._level)
