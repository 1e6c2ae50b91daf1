"""The real `modeldeploy` console script against real MLflow scoring servers on loopback.

Servers are deployed through the core API, then driven only through the CLI in
subprocesses. Each test (or module, for the read-only ones) has its own MODELDEPLOY_HOME
and SQLite tracking store; every server started is deleted at teardown.
"""

from __future__ import annotations

import contextlib
import json
import os
import pty
import queue
import re
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import CLIModels, assert_one_error_line, clean_env, cli_command

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

HEAVY = ("mlflow", "pandas", "sklearn", "requests", "kubernetes")


@dataclass
class Deployed:
    home: Path
    tracking_uri: str
    uuid: str
    url: str
    env: dict[str, str]
    columns: list[str]
    rows: list[list[float]]

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*cli_command(), *args],
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def server_dir(self) -> Path:
        return self.home / "servers" / self.uuid


def _deployer(home: Path, tracking_uri: str):
    from modeldeploy.flavors import create_deployer

    return create_deployer("mlflow", {"home": home, "tracking_uri": tracking_uri})


def _teardown(home: Path, tracking_uri: str) -> None:
    for server in _deployer(home, tracking_uri).find_model_server():
        with contextlib.suppress(Exception):
            server.delete(force=True)


@contextlib.contextmanager
def deployed(home: Path, cli_models: CLIModels, model_name: str = "iris") -> Iterator[Deployed]:
    home.mkdir(parents=True, exist_ok=True)
    tracking_uri = f"sqlite:///{home / 'mlflow.db'}"
    try:
        server = _deployer(home, tracking_uri).deploy_model(
            {
                "model_name": model_name,
                "model_uri": str(cli_models.first),
                "model_version": "1",
                "pipeline_name": "train",
                "step_name": "ship",
            },
            timeout=180,
        )
        yield Deployed(
            home=home,
            tracking_uri=tracking_uri,
            uuid=str(server.uuid),
            url=server.prediction_url,
            env=clean_env(home, tracking_uri),
            columns=cli_models.columns,
            rows=cli_models.sample_rows,
        )
    finally:
        _teardown(home, tracking_uri)


def predict(d: Deployed, url: str | None = None) -> list[Any]:
    body = json.dumps({"dataframe_split": {"columns": d.columns, "data": d.rows[:2]}}).encode()
    request = urllib.request.Request(
        url or d.url, data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())["predictions"]


def refuses_connections(url: str) -> bool:
    try:
        urllib.request.urlopen(url.replace("/invocations", "/ping"), timeout=5)
    except urllib.error.URLError as exc:
        return isinstance(exc.reason, ConnectionRefusedError)
    return False


def processes_mentioning(text: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(int(proc.name))
    return found


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory, cli_models: CLIModels) -> Iterator[Deployed]:
    """One active server for the tests that only look (or are refused before changing)."""
    with deployed(tmp_path_factory.mktemp("cli-shared") / "home", cli_models) as d:
        yield d


# --- looking ----------------------------------------------------------------------------


def test_list_table(shared: Deployed) -> None:
    result = shared.cli("models", "list")
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split() == [
        "UUID",
        "FLAVOR",
        "MODEL",
        "VERSION",
        "PIPELINE",
        "STEP",
        "STATE",
        "URL",
    ]
    assert len(rows) == 1
    assert rows[0].split() == [
        shared.uuid,
        "mlflow",
        "iris",
        "1",
        "train",
        "ship",
        "active",
        shared.url,
    ]
    assert header.index("URL") == rows[0].index("http://")
    assert header.index("STATE") == rows[0].index("active")


def test_list_json_and_filters(shared: Deployed) -> None:
    result = shared.cli(
        "models",
        "list",
        "--json",
        "--running",
        "--pipeline",
        "train",
        "--step",
        "ship",
        "--model",
        "iris",
    )
    assert result.returncode == 0, result.stderr
    (item,) = json.loads(result.stdout)
    assert {
        k: item[k]
        for k in (
            "uuid",
            "flavor",
            "model_name",
            "model_version",
            "pipeline_name",
            "step_name",
            "state",
            "prediction_url",
        )
    } == {
        "uuid": shared.uuid,
        "flavor": "mlflow",
        "model_name": "iris",
        "model_version": "1",
        "pipeline_name": "train",
        "step_name": "ship",
        "state": "active",
        "prediction_url": shared.url,
    }
    for flt in (["--model", "other"], ["--pipeline", "other"], ["--step", "other"]):
        result = shared.cli("models", "list", "--json", *flt)
        assert (result.returncode, json.loads(result.stdout)) == (0, []), flt
    result = shared.cli("models", "list", "--model", "other")
    assert (result.returncode, result.stdout) == (0, "")
    # says where it looked: the home directory of the mlflow flavor
    where = f"home {shared.home.resolve()}"
    assert result.stderr.strip() == f"No mlflow model servers found in {where}."


def test_home_option_beats_the_environment(shared: Deployed, tmp_path: Path) -> None:
    env = clean_env(tmp_path / "elsewhere")
    result = subprocess.run(
        [*cli_command(), "--home", str(shared.home), "models", "list", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert [i["uuid"] for i in json.loads(result.stdout)] == [shared.uuid]
    result = subprocess.run(
        [*cli_command(), "models", "list", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert json.loads(result.stdout) == []


def test_listing_imports_no_heavy_library(shared: Deployed) -> None:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "modeldeploy.cli.main", "models", "list"],
        env=shared.env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0 and shared.uuid in result.stdout
    imported = {
        line.split("|")[-1].strip().split(".")[0]
        for line in result.stderr.splitlines()
        if line.startswith("import time:")
    }
    assert "modeldeploy" in imported and "pydantic" in imported
    assert not imported & set(HEAVY), imported & set(HEAVY)


def test_describe_and_get_url(shared: Deployed) -> None:
    result = shared.cli("models", "describe", shared.uuid)
    assert result.returncode == 0, result.stderr
    assert re.search(rf"^UUID:\s+{shared.uuid}$", result.stdout, re.M)
    assert re.search(r"^State:\s+active$", result.stdout, re.M)
    assert re.search(r"^Model URI:\s+\S+$", result.stdout, re.M)
    port = shared.url.split(":")[2].split("/")[0]
    assert re.search(rf"^  port: {port}$", result.stdout, re.M)
    result = shared.cli("models", "describe", shared.uuid[:8], "--json")
    assert json.loads(result.stdout)["config"]["port"] == int(port)
    result = shared.cli("models", "get-url", shared.uuid)
    assert (result.returncode, result.stdout) == (0, shared.url + "\n")
    assert predict(shared, result.stdout.strip()) == [0, 0]


def test_logs_tail(shared: Deployed) -> None:
    log = (shared.server_dir() / "server.log").read_text().splitlines()
    assert len(log) >= 3
    result = shared.cli("models", "logs", shared.uuid, "-n", "3")
    assert result.returncode == 0, result.stderr
    # The server may append (a request line) while we look: the CLI's answer must be the
    # last 3 lines of the file as it was at some moment between our two reads.
    after = (shared.server_dir() / "server.log").read_text().splitlines()
    shown = result.stdout.splitlines()
    assert len(shown) == 3
    assert any(after[n - 3 : n] == shown for n in range(len(log), len(after) + 1))
    result = shared.cli("models", "logs", shared.uuid)
    assert result.stdout.splitlines()[: len(log)] == log


def _reader(stream: Any) -> queue.Queue[str | None]:
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        for line in stream:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def _wait_for(lines: queue.Queue[str | None], pattern: str, timeout: float = 60) -> list[str]:
    seen: list[str] = []
    while True:
        line = lines.get(timeout=timeout)
        if line is None:
            raise AssertionError(f"output ended before {pattern!r}; saw {seen}")
        seen.append(line)
        if re.search(pattern, line):
            return seen


def test_logs_follow_shows_new_lines_and_ctrl_c_exits_130(shared: Deployed) -> None:
    last = (shared.server_dir() / "server.log").read_text().splitlines()[-1]
    child = subprocess.Popen(
        [*cli_command(), "models", "logs", shared.uuid, "-f", "-n", "1"],
        env=shared.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = _reader(child.stdout)
        assert lines.get(timeout=60) == last
        predict(shared)  # the scoring server logs the request after we started following
        seen = _wait_for(lines, r'"POST /invocations HTTP/1\.1" 200')
        assert len(seen) >= 1
        child.send_signal(signal.SIGINT)
        assert child.wait(timeout=30) == 130
        assert child.stderr.read() == ""
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_delete_without_yes_refuses_when_not_interactive(shared: Deployed) -> None:
    result = shared.cli("models", "delete", shared.uuid)
    line = assert_one_error_line(result, "refusing to delete", shared.uuid, "-y")
    assert result.returncode == 2, line
    assert shared.server_dir().is_dir()
    assert predict(shared) == [0, 0]


def test_delete_asks_on_a_terminal_and_no_keeps_the_server(shared: Deployed) -> None:
    master, slave = pty.openpty()
    try:
        child = subprocess.Popen(
            [*cli_command(), "models", "delete", shared.uuid],
            env=shared.env,
            stdin=slave,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        os.write(master, b"n\n")
        out, err = child.communicate(timeout=60)
    finally:
        os.close(slave)
        os.close(master)
    assert child.returncode == 1
    assert re.search(rf"Delete mlflow model server {shared.uuid} \(model iris v1, .*\[y/N\]", err)
    assert "Aborted; nothing was deleted." in err
    assert out == ""
    assert shared.server_dir().is_dir() and predict(shared) == [0, 0]


# --- changing ---------------------------------------------------------------------------


def test_stop_start_then_delete_leaves_nothing(tmp_path: Path, cli_models: CLIModels) -> None:
    with deployed(tmp_path / "home", cli_models) as d:
        short = d.uuid[:8]
        result = d.cli("models", "stop", d.uuid, "--timeout", "60")
        assert result.returncode == 0, result.stderr
        assert re.search(rf"^\[\s*\d+\.\ds\] {short} iris v1: active -> \w+$", result.stderr, re.M)
        assert re.search(
            rf"^\[\s*\d+\.\ds\] {short} iris v1: \w+ -> inactive$", result.stderr, re.M
        )
        assert result.stdout.startswith(f"Stopped {d.uuid}")
        assert refuses_connections(d.url)
        (item,) = json.loads(d.cli("models", "list", "--json").stdout)
        assert item["state"] == "inactive"

        result = d.cli("models", "start", d.uuid[:8], "--timeout", "180", timeout=240)
        assert result.returncode == 0, result.stderr
        assert re.search(
            rf"^\[\s*\d+\.\ds\] {short} iris v1: inactive -> pending_startup$", result.stderr, re.M
        )
        assert re.search(
            rf"^\[\s*\d+\.\ds\] {short} iris v1: pending_startup -> active$", result.stderr, re.M
        )
        assert result.stdout == f"Started {d.uuid} at {d.url}\n"
        assert predict(d) == [0, 0]  # same URL as before the stop

        result = d.cli("models", "delete", "-y", d.uuid)
        assert result.returncode == 0, result.stderr
        assert result.stdout == f"Deleted {d.uuid}\n"
        assert not d.server_dir().exists()
        assert json.loads(d.cli("models", "list", "--json").stdout) == []
        assert refuses_connections(d.url)
        assert processes_mentioning(str(d.server_dir())) == []


def test_rollback_moves_the_champion_back(tmp_path: Path, cli_models: CLIModels) -> None:
    from modeldeploy.registry import ModelRegistry
    from modeldeploy.rollout import continuous_deploy

    home = tmp_path / "home"
    home.mkdir()
    tracking_uri = f"sqlite:///{home / 'mlflow.db'}"
    deployer = _deployer(home, tracking_uri)
    registry = ModelRegistry(tracking_uri)
    base = {"model_name": "iris", "pipeline_name": "train", "step_name": "ship"}
    try:
        first = continuous_deploy(
            deployer,
            {**base, "model_uri": str(cli_models.first)},
            {"accuracy": 0.9},
            registry=registry,
            timeout=180,
        )
        second = continuous_deploy(
            deployer,
            {**base, "model_uri": str(cli_models.second)},
            {"accuracy": 0.95},
            registry=registry,
            timeout=180,
        )
        assert (first.action, second.action) == ("created", "updated")
        assert registry.get_champion("iris").version == "2"
        d = Deployed(
            home=home,
            tracking_uri=tracking_uri,
            uuid=second.server.uuid,
            url=second.server.prediction_url,
            env=clean_env(home, tracking_uri),
            columns=cli_models.columns,
            rows=cli_models.sample_rows,
        )
        assert predict(d) == [2, 2]  # the constant model serves

        result = d.cli(
            "rollback",
            "iris",
            "--pipeline",
            "train",
            "--step",
            "ship",
            "--timeout",
            "180",
            timeout=240,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout == f"Rolled iris back to version 1 (from version 2) at {d.url}\n"
        assert re.search(r"^\[\s*\d+\.\ds\] rolling back iris$", result.stderr, re.M)
        assert re.search(
            rf"^\[\s*\d+\.\ds\] {d.uuid[:8]} iris v1: .*\bactive\b", result.stderr, re.M
        )

        assert registry.get_champion("iris").version == "1"
        (item,) = json.loads(d.cli("models", "list", "--json").stdout)
        assert (item["uuid"], item["model_version"], item["prediction_url"]) == (d.uuid, "1", d.url)
        assert predict(d) == [0, 0]  # the first model answers again, at the same URL

        result = d.cli("rollback", "iris")  # only one champion left in the history
        assert_one_error_line(result, "no previous champion")
    finally:
        _teardown(home, tracking_uri)


# --- errors -----------------------------------------------------------------------------


def test_unknown_flavor(run_cli) -> None:
    result = run_cli("--flavor", "nosuch", "models", "list")
    assert_one_error_line(result, "unknown flavor 'nosuch'", "mlflow")
    assert result.returncode == 2


def test_malformed_uuid(run_cli) -> None:
    result = run_cli("models", "describe", "not-a-uuid")
    assert_one_error_line(result, "'not-a-uuid' is not a model server uuid")
    assert result.returncode == 2


def test_unknown_uuid(run_cli) -> None:
    result = run_cli("models", "stop", "0badc0de-0000-4000-8000-000000000000")
    assert_one_error_line(result, "no mlflow model server with uuid 0badc0de-")
    assert result.returncode == 1


def test_negative_timeout_and_tail(run_cli) -> None:
    result = run_cli("models", "start", "0badc0de-0000-4000-8000-000000000000", "--timeout", "-5")
    assert_one_error_line(result, "--timeout", "zero or more seconds", "-5")
    assert result.returncode == 2
    result = run_cli("models", "logs", "0badc0de-0000-4000-8000-000000000000", "-n", "-1")
    assert_one_error_line(result, "-n/--tail", "zero or more lines")


def test_unknown_command_and_missing_argument(run_cli) -> None:
    assert_one_error_line(run_cli("models", "explode"), "invalid choice: 'explode'")
    assert_one_error_line(run_cli("models", "describe"), "required: UUID")
    assert_one_error_line(run_cli("rollback"), "required: MODEL_NAME")
