"""Keeping the mlflow flavor's home safe and small: who may write it, which interface a
server may listen on, and model copies no generation uses any more."""

from __future__ import annotations

import os
import shutil
import socket
import stat
from pathlib import Path
from typing import Any

from modeldeploy.errors import InvalidConfigError
from modeldeploy.status import ServiceState, ServiceStatus


def check_private_dir(path: Path, what: str) -> None:
    """Refuse a directory others may write: they could plant records that run programs.

    A missing directory is fine (it is created private); a symbolic link is refused, as
    nothing inside the home is followed.
    """
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(info.st_mode):
        raise InvalidConfigError(
            f"{what} {path} is a symbolic link, which is not followed; point the setting at "
            "the real directory"
        )
    if not stat.S_ISDIR(info.st_mode):
        raise InvalidConfigError(f"{what} {path} is not a directory")
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise InvalidConfigError(
            f"{what} {path} is writable by its group or by everyone (mode "
            f"{stat.S_IMODE(info.st_mode):04o}); another user could plant a record there that "
            f"this deployer would run. Make it private with `chmod go-w {path}`, or choose "
            "another directory"
        )
    if info.st_uid != os.geteuid():
        raise InvalidConfigError(
            f"{what} {path} belongs to another user (uid {info.st_uid}); use a directory of "
            "your own"
        )


def check_host(host: str) -> None:
    """Refuse an interface this machine cannot listen on, before anything is written."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise InvalidConfigError(
            f"cannot listen on host {host!r}: {reason}; use an address of this machine, "
            "e.g. 127.0.0.1 (this machine only) or 0.0.0.0 (every interface)"
        ) from None


def prune_models(server_dir: Path, record: dict[str, Any], status: ServiceStatus) -> None:
    """Remove `models/<generation>` copies that nothing serves or will serve.

    Only when nothing is in flight (the supervisor serves the generation recorded, or no
    supervisor runs): then the record's model folder, and a challenger's beside it
    (`record["traffic"]`), are the only ones in use. Folders of
    generations newer than the record belong to a deploy being written, and stay.
    """
    # An ERROR with an observed generation means the supervisor lives and may still
    # serve an older generation; without one, nothing runs.
    idle = status.state == ServiceState.INACTIVE or (
        status.state == ServiceState.ERROR and status.observed_generation is None
    )
    settled = (
        status.state == ServiceState.ACTIVE
        and status.observed_generation is not None
        and status.is_current
    )
    if not (idle or settled):
        return
    challenger = (record.get("traffic") or {}).get("challenger") or {}
    keep = {
        Path(str(launch.get("model_dir", ""))).name
        for launch in (record.get("launch") or {}, challenger.get("launch") or {})
    }
    generation = int(record.get("generation", 0))
    models = server_dir / "models"
    if not models.is_dir():
        return
    for folder in models.iterdir():
        if folder.name.isdigit() and folder.name not in keep and int(folder.name) <= generation:
            if folder.is_symlink():
                folder.unlink()
            else:
                shutil.rmtree(folder, ignore_errors=True)
