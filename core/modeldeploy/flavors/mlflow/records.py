"""On-disk records of local servers: one folder per server, every file written atomically.

Layout under `<home>/servers/<uuid>/`:
  record.json   desired state: config, generation, launch spec (written by the deployer)
  daemon.json   pid and start time of the supervisor (written by the supervisor itself)
  status.json   what the supervisor serves now (written by the supervisor)
  server.log    supervisor and scoring-server output
  models/<gen>  the model's files, downloaded once so a restart needs no network

Kept stdlib-only: the supervisor imports it too, and it must start fast.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

RECORD = "record.json"
DAEMON = "daemon.json"
STATUS = "status.json"
LOG = "server.log"
SUPERVISOR_MODULE = "modeldeploy.flavors.mlflow.supervisor"


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write-then-rename, so a reader sees the old file or the new one, never half of one."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2, sort_keys=True, default=str)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        with path.open() as handle:
            data = json.load(handle)
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def process_start_time(pid: int) -> int | None:
    """Kernel start time of `pid` in clock ticks; tells a reused pid from the original."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name may contain spaces and parentheses; fields follow the last ')'.
    fields = stat[stat.rfind(")") + 2 :].split()
    if fields and fields[0] == "Z":
        return None  # a zombie is gone for our purposes
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def process_cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def daemon_identity(pid: int) -> dict[str, Any]:
    return {"pid": pid, "start_time": process_start_time(pid)}


def live_daemon_pid(server_dir: Path) -> int | None:
    """The supervisor's pid if the recorded process is still that supervisor, else None.

    A pid alone is not enough: after a crash the kernel may hand it to another program,
    which we must never signal.
    """
    info = read_json(server_dir / DAEMON)
    if not info or not isinstance(info.get("pid"), int):
        return None
    pid: int = info["pid"]
    if process_start_time(pid) != info.get("start_time"):
        return None
    cmdline = process_cmdline(pid)
    if SUPERVISOR_MODULE not in cmdline or str(server_dir) not in cmdline:
        return None
    return pid
