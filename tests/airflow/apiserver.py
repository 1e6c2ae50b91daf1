"""A real `airflow api-server` on a copy of the migrated SQLite database, for UI tests.

Simple auth manager with everyone admin, so the form and the API need no login. Extra
environment (e.g. a PYTHONPATH holding a flavor installed for one test) goes to the server.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass
class ApiServer:
    url: str
    process: subprocess.Popen[str]
    log: list[str]
    env: dict[str, str]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def api_server(
    home: Path,
    migrated_template: Path,
    extra_env: dict[str, str] | None = None,
    apps: str = "core",
) -> Iterator[ApiServer]:
    """`apps="core,execution"` also serves the task execution API (for a real scheduler)."""
    shutil.copyfile(migrated_template, home / "airflow.db")
    port = free_port()
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "PYTHONUNBUFFERED": "1",
        **(extra_env or {}),
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "airflow",
            "api-server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--apps",
            apps,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    log: list[str] = []
    started = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            log.append(line)
            if "Uvicorn running on" in line:  # printed once the socket listens
                started.set()
        started.set()  # the process ended: stop waiting

    threading.Thread(target=read, daemon=True).start()
    try:
        assert started.wait(120), "api-server did not start in 120 s:\n" + "".join(log[-30:])
        assert process.poll() is None, "api-server exited:\n" + "".join(log[-30:])
        yield ApiServer(f"http://127.0.0.1:{port}", process, log, env)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
