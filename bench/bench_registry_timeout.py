"""How long a rollout takes to fail against an unreachable or hung MLflow registry,
beside its timeout (issue 10 item 6). MLflow alone retries 7 times with exponential
backoff and 120 s reads: a deploy once hung 494 s with timeout=300."""

from __future__ import annotations

import socket
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _table import print_table


def _fail_time(uri: str, timeout: float, home: Path) -> float:
    from modeldeploy.errors import RegistryError
    from modeldeploy.flavors.mlflow.deployer import MLflowModelDeployer
    from modeldeploy.registry import ModelRegistry
    from modeldeploy.rollout import continuous_deploy

    deployer = MLflowModelDeployer({"home": home})
    started = time.monotonic()
    try:
        continuous_deploy(
            deployer,
            {"model_name": "bench", "model_uri": str(home / "no-model")},
            {"accuracy": 1.0},
            None,
            ModelRegistry(uri),
            timeout=timeout,
        )
    except RegistryError:
        return time.monotonic() - started
    raise SystemExit("the rollout did not fail")


def main() -> int:
    import mlflow  # noqa: F401 - imported once up front: its import is not the registry's time

    rows = []
    with tempfile.TemporaryDirectory() as tmp, socket.socket() as closed, socket.socket() as hung:
        home = Path(tmp) / "home"
        closed.bind(("127.0.0.1", 0))
        hung.bind(("127.0.0.1", 0))
        hung.listen(64)  # accepts, never answers
        for label, sock, timeout in (
            ("connection refused", closed, 10.0),
            ("hung server", hung, 10.0),
            ("hung server", hung, 30.0),
        ):
            port = sock.getsockname()[1]
            took = _fail_time(f"http://u:p@127.0.0.1:{port}", timeout, home)
            rows.append(
                (f"{label}, timeout {timeout:g} s", f"{took:.1f} s", f"<= {timeout:g} s",
                 took <= timeout)
            )  # fmt: skip
    print_table("rollout against an unreachable registry", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
