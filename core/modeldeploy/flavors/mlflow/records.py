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

import errno
import json
import os
import tempfile
from collections import deque
from pathlib import Path
from typing import Any

RECORD = "record.json"
DAEMON = "daemon.json"
STATUS = "status.json"
LOG = "server.log"
SUPERVISOR_MODULE = "modeldeploy.flavors.mlflow.supervisor"
DEFAULT_LOG_MAX_BYTES = 10 * 1024 * 1024
#: seconds one scoring request may take (also the bound on a scoring server's first prediction)
DEFAULT_REQUEST_TIMEOUT = 60


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


class DamagedRecordError(ValueError):
    """A state file exists but cannot be used; the message names the file and the fault."""


def read_json_strict(path: Path) -> dict[str, Any] | None:
    """The JSON object in `path`; None if there is no such file. Symbolic links are not
    followed (another user could point one anywhere); those and unreadable or malformed
    files raise `DamagedRecordError`."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise DamagedRecordError(f"{path} is a symbolic link, which is not followed") from None
        raise DamagedRecordError(f"{path} cannot be read: {exc.strerror}") from None
    try:
        with os.fdopen(fd) as handle:
            data = json.load(handle)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DamagedRecordError(f"{path} is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise DamagedRecordError(f"{path} holds a JSON {type(data).__name__}, not an object")
    return data


def read_json(path: Path) -> dict[str, Any] | None:
    """Like `read_json_strict`, but a damaged file reads as missing (status, pid files)."""
    try:
        return read_json_strict(path)
    except DamagedRecordError:
        return None


def tail_lines(path: Path, count: int = 5) -> list[str]:
    """The last `count` non-blank lines of a text file (none if it is missing)."""
    try:
        with path.open("r", errors="replace") as handle:
            return list(deque((line.rstrip() for line in handle if line.strip()), count))
    except OSError:
        return []


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


class RotatingLog:
    """An append-only log file that moves itself to `<name>.1` beyond `max_bytes`.

    One old copy is kept, so the log takes at most about twice `max_bytes`. With
    `redirect_std`, stdout and stderr follow the new file (the supervisor's own
    tracebacks go there). Not thread-safe: callers hold a lock.
    """

    def __init__(self, path: Path, max_bytes: int, redirect_std: bool = False) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.redirect_std = redirect_std
        self._open()

    def _open(self) -> None:
        self._handle = self.path.open("a", buffering=1)
        self._size = self._handle.tell()
        if self.redirect_std:
            for fd in (1, 2):
                os.dup2(self._handle.fileno(), fd)

    def write(self, text: str) -> None:
        if self._size + len(text) > self.max_bytes and self._size > 0:
            self._handle.close()
            os.replace(self.path, self.path.with_name(self.path.name + ".1"))
            self._open()
        self._handle.write(text)
        self._size += len(text.encode(errors="replace"))
