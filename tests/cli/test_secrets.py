"""The CLI names an unreachable registry with its password hidden, on stdout and stderr,
with and without --debug (whose traceback quotes MLflow's own error text)."""

from __future__ import annotations

import secrets
import socket

from tests.cli.conftest import assert_one_error_line


def test_rollback_against_an_unreachable_registry_hides_the_password(run_cli) -> None:
    canary = "canary" + secrets.token_hex(8)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    uri = f"http://deployer:{canary}@127.0.0.1:{port}"

    result = run_cli("rollback", "iris", "--tracking-uri", uri, "--timeout", "10")
    assert_one_error_line(result, f"deployer:***@127.0.0.1:{port}", "model iris")
    assert canary not in result.stdout + result.stderr

    debug = run_cli("rollback", "iris", "--tracking-uri", uri, "--timeout", "10", "--debug")
    assert debug.returncode == 1 and "Traceback" in debug.stderr
    assert canary not in debug.stdout + debug.stderr
