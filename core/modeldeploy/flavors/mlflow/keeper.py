"""Restarts a model server's supervisor when it dies: the `restart_policy="on-failure"`
of the mlflow flavor.

Run as `python -m modeldeploy.flavors.mlflow.keeper <server-dir>` in a session of its own,
in place of the supervisor. It runs the supervisor as its child (same process group, so
a forced stop kills both) and starts it again, with backoff, whenever it exits other than
cleanly, for as long as the record asks for that policy. A clean exit (a stop, a deleted
record) ends it too. Stdlib only, like the supervisor.
"""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from modeldeploy.flavors.mlflow.records import RECORD, SUPERVISOR_MODULE, read_json

RESTART_POLICY = "on-failure"
BACKOFF = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
#: a supervisor that ran this long before dying starts the backoff over
STABLE_SECONDS = 60.0


def wanted(server_dir: Path) -> bool:
    record = read_json(server_dir / RECORD)
    return record is not None and record.get("config", {}).get("restart_policy") == RESTART_POLICY


def describe(code: int) -> str:
    return f"signal {-code}" if code < 0 else f"exit code {code}"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m modeldeploy.flavors.mlflow.keeper SERVER_DIR", file=sys.stderr)
        return 2
    server_dir = Path(args[0]).resolve()
    crashes = 0
    while True:
        started = time.monotonic()
        code = subprocess.call(
            [sys.executable, "-m", SUPERVISOR_MODULE, str(server_dir)], stdin=subprocess.DEVNULL
        )
        if code == 0 or not wanted(server_dir):
            return 0 if code == 0 else 1
        crashes = 0 if time.monotonic() - started > STABLE_SECONDS else crashes + 1
        delay = BACKOFF[min(crashes, len(BACKOFF)) - 1] if crashes else BACKOFF[0]
        print(
            f"{datetime.now(UTC).isoformat()} [modeldeploy] supervisor ended with "
            f"{describe(code)}; restarting it in {delay:g}s (restart_policy {RESTART_POLICY})",
            flush=True,
        )
        time.sleep(delay)


if __name__ == "__main__":
    sys.exit(main())
