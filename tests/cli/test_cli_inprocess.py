"""The CLI's parsing, settings plumbing and rendering, in-process against a fake flavor."""

from __future__ import annotations

import argparse
import io
import json
import re
from uuid import UUID

import pytest
from modeldeploy.cli import main as cli
from modeldeploy.cli.output import Progress, render_description, render_table
from modeldeploy.status import ServiceState, ServiceStatus

from tests.cli import fake_flavor
from tests.cli.conftest import _SCRUBBED
from tests.cli.fake_flavor import FakeDeployer, add_server


@pytest.fixture(autouse=True)
def fake(monkeypatch: pytest.MonkeyPatch):
    """`--flavor fake` resolves to the in-memory flavor; real flavors stay reachable."""
    import modeldeploy.flavors

    original = modeldeploy.flavors.get_deployer_class

    def get_deployer_class(flavor: str):
        return FakeDeployer if flavor == "fake" else original(flavor)

    monkeypatch.setattr(modeldeploy.flavors, "get_deployer_class", get_deployer_class)
    for var in _SCRUBBED:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MODELDEPLOY_FLAVOR", "fake")
    fake_flavor.reset()
    yield
    fake_flavor.reset()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def parse(*argv: str) -> argparse.Namespace:
    return cli.build_parser().parse_args(list(argv))


# --- option resolution ------------------------------------------------------------------


def test_option_beats_environment_beats_default() -> None:
    env = {"MODELDEPLOY_NAMESPACE": "from-env", "MODELDEPLOY_FLAVOR": "kserve"}
    g = cli.resolve_globals(parse("--namespace", "from-cli", "models", "list"), env)
    assert g.namespace == "from-cli"
    assert g.flavor == "kserve"
    assert g.explicit == {"namespace"}
    g = cli.resolve_globals(parse("models", "list"), {})
    assert (g.flavor, g.namespace, g.timeout, g.in_cluster) == ("mlflow", None, None, None)


def test_global_options_are_accepted_before_and_after_the_command() -> None:
    before = parse("--flavor", "kserve", "--timeout", "5", "models", "list")
    after = parse("models", "list", "--flavor", "kserve", "--timeout", "5")
    middle = parse("models", "--flavor", "kserve", "list", "--timeout", "5")
    for args in (before, after, middle):
        g = cli.resolve_globals(args, {})
        assert (g.flavor, g.timeout) == ("kserve", 5.0)
    # a later position overrides an earlier one, like any repeated option
    g = cli.resolve_globals(parse("--flavor", "a", "models", "list", "--flavor", "b"), {})
    assert g.flavor == "b"


def test_environment_booleans_and_timeout_are_validated() -> None:
    args = parse("models", "list")
    assert cli.resolve_globals(args, {"MODELDEPLOY_IN_CLUSTER": "yes"}).in_cluster is True
    assert cli.resolve_globals(args, {"MODELDEPLOY_IN_CLUSTER": "0"}).in_cluster is False
    assert cli.resolve_globals(args, {"MODELDEPLOY_TIMEOUT": "2.5"}).timeout == 2.5
    off = cli.resolve_globals(
        parse("--no-in-cluster", "models", "list"), {"MODELDEPLOY_IN_CLUSTER": "1"}
    )
    assert off.in_cluster is False  # the option overrides the environment either way
    with pytest.raises(cli.CLIError, match="MODELDEPLOY_IN_CLUSTER must be true or false"):
        cli.resolve_globals(args, {"MODELDEPLOY_IN_CLUSTER": "maybe"})
    with pytest.raises(cli.CLIError, match="MODELDEPLOY_TIMEOUT: must be zero or more"):
        cli.resolve_globals(args, {"MODELDEPLOY_TIMEOUT": "-3"})


@pytest.mark.parametrize("value", ["-1", "nan", "soon"])
def test_bad_timeouts_are_refused(value: str) -> None:
    with pytest.raises(cli.CLIError, match=r"argument --timeout: must be"):
        parse("models", "list", "--timeout", value)


def test_settings_passed_are_only_those_the_flavor_declares() -> None:
    g = cli.resolve_globals(
        parse(
            "--home",
            "/h",
            "--namespace",
            "prod",
            "--kubeconfig",
            "/k",
            "--in-cluster",
            "--ingress-url",
            "http://ingress",
            "--context",
            "c1",
            "models",
            "list",
        ),
        {"MLFLOW_TRACKING_URI": "sqlite:///x.db"},
    )
    mlflow_settings, ignored = cli.build_settings({"home", "tracking_uri"}, g)
    assert mlflow_settings == {"home": "/h", "tracking_uri": "sqlite:///x.db"}
    assert ignored == ["--kubeconfig", "--context", "--in-cluster", "--namespace", "--ingress-url"]

    k8s_settings, ignored = cli.build_settings(set(fake_flavor.FakeSettings.model_fields), g)
    assert k8s_settings == {
        "tracking_uri": "sqlite:///x.db",  # every flavor's settings carry the registry URI
        "kubeconfig_path": "/k",
        "context": "c1",
        "in_cluster": True,
        "namespace": "prod",
        "ingress_base_url": "http://ingress",
    }
    assert ignored == ["--home"]  # the tracking URI came from the environment: no warning


def test_generic_settings_are_coerced_by_the_engine_and_checked_against_the_flavor() -> None:
    from modeldeploy.settings import validate_settings

    env = {"MODELDEPLOY_FAKE_IN_CLUSTER": "yes", "MODELDEPLOY_FAKE_REPLICAS_CAP": "2"}
    g = cli.resolve_globals(
        parse("--flavor", "fake", "--setting", "replicas_cap=3", "models", "list"), env
    )
    settings, _ = cli.build_settings(set(fake_flavor.FakeSettings.model_fields), g)
    assert settings == {"replicas_cap": "3", "in_cluster": "yes"}  # --setting beats the env
    model = validate_settings(fake_flavor.FakeSettings, settings, "fake")
    assert (model.replicas_cap, model.in_cluster) == (3, True)  # type: ignore[attr-defined]
    g = cli.resolve_globals(parse("--setting", "colour=blue", "models", "list"), {})
    with pytest.raises(cli.CLIError, match="has no setting 'colour'; its settings are: "):
        cli.build_settings({"home"}, g)
    with pytest.raises(cli.CLIError, match="must be KEY=VALUE"):
        parse("--setting", "novalue", "models", "list")


# --- rendering --------------------------------------------------------------------------


def test_table_columns_are_aligned_and_blanks_shown_as_dash() -> None:
    text = render_table(
        ["UUID", "MODEL", "URL"],
        [["a", "iris-long-name", None], ["bbbbbbbb", "x", "http://h:1/invocations"]],
    )
    lines = text.splitlines()
    assert lines[0].split() == ["UUID", "MODEL", "URL"]
    starts = [line.index(word) for line, word in zip(lines, ["MODEL", "iris", "x"], strict=True)]
    assert len(set(starts)) == 1, text
    assert lines[1].endswith(" -")
    assert all(line == line.rstrip() for line in lines)
    with pytest.raises(ValueError, match="row has 2 cells"):
        render_table(["A", "B", "C"], [["1", "2"]])


def test_description_lists_identity_state_and_flavor_fields() -> None:
    text = render_description(
        {
            "uuid": "u-1",
            "model_name": "iris",
            "state": "active",
            "last_error": None,
            "config": {"model_name": "iris", "port": 5001, "env": {"A": "1"}},
        }
    )
    assert re.search(r"^State:\s+active$", text, re.M)
    assert re.search(r"^Last error:\s+-$", text, re.M)
    assert "  port: 5001" in text
    assert '  env: {"A": "1"}' in text
    assert "  model_name:" not in text  # shown once, above


def test_progress_prints_each_transition_once_with_elapsed_time() -> None:
    ticks = iter([0.0, 0.5, 3.0])  # a repeated state reads no clock
    stream = io.StringIO()
    progress = Progress(stream=stream, clock=lambda: next(ticks))
    server = add_server(model_version="7")
    progress.seen(server.uuid, ServiceState.ACTIVE)
    for state in ("pending_shutdown", "pending_shutdown", "inactive"):
        progress(server, ServiceStatus(state=state))
    lines = stream.getvalue().splitlines()
    short = str(server.uuid)[:8]
    assert lines == [
        f"[   0.5s] {short} iris v7: active -> pending_shutdown",
        f"[   3.0s] {short} iris v7: pending_shutdown -> inactive",
    ]


def test_progress_says_when_the_previous_generation_still_serves() -> None:
    stream = io.StringIO()
    progress = Progress(stream=stream, header="rolling back iris")
    server = add_server(model_version="1")
    progress(server, ServiceStatus(state="active", generation=3, observed_generation=2))
    lines = stream.getvalue().splitlines()
    assert lines[0].endswith("] rolling back iris")
    assert lines[1].endswith(
        f"{str(server.uuid)[:8]} iris v1: active (previous model still serving; waiting for "
        "generation 3)"
    )
    assert len(lines) == 2


# --- commands against the fake flavor ---------------------------------------------------


def test_list_table_newest_first_and_filtered(capsys: pytest.CaptureFixture[str]) -> None:
    old = add_server(model_name="iris", pipeline_name="train")
    new = add_server(model_name="wine", pipeline_name="train", step_name="ship")
    code, out, _ = run(capsys, "models", "list")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == [
        "UUID",
        "FLAVOR",
        "MODEL",
        "VERSION",
        "PIPELINE",
        "STEP",
        "STATE",
        "URL",
    ]
    assert [line.split()[0] for line in lines[1:]] == [str(new.uuid), str(old.uuid)]
    assert lines[1].split()[1:7] == ["fake", "wine", "1", "train", "ship", "active"]
    code, out, _ = run(capsys, "models", "list", "--model", "iris")
    assert [line.split()[0] for line in out.splitlines()[1:]] == [str(old.uuid)]
    code, out, err = run(capsys, "models", "list", "--pipeline", "nope")
    assert (code, out) == (0, "")
    assert "No fake model servers found in the fake flavor's default location." in err


def test_list_running_and_json_shape(capsys: pytest.CaptureFixture[str]) -> None:
    add_server(model_name="up")
    down = add_server(model_name="down")
    down.status.state = ServiceState.INACTIVE
    code, out, _ = run(capsys, "models", "list", "--running", "--json")
    assert code == 0
    data = json.loads(out)
    assert [d["model_name"] for d in data] == ["up"]
    for key in (
        "uuid",
        "flavor",
        "model_name",
        "model_version",
        "pipeline_name",
        "step_name",
        "state",
        "prediction_url",
    ):
        assert key in data[0]
    assert data[0]["state"] == "active"
    assert data[0]["prediction_url"] == "http://fake.invalid/default/up/predict"


def test_flavor_settings_reach_the_deployer(capsys: pytest.CaptureFixture[str]) -> None:
    add_server()
    code, out, err = run(
        capsys,
        "models",
        "list",
        "--namespace",
        "prod",
        "--kubeconfig",
        "/k",
        "--home",
        "/h",
    )
    assert code == 0
    settings = FakeDeployer.created[-1].settings
    assert (settings.namespace, settings.kubeconfig_path) == ("prod", "/k")
    assert "warning: --home does not apply to the fake flavor; ignored" in err
    assert "http://fake.invalid/prod/iris/predict" in out


def test_describe_get_url_and_logs(capsys: pytest.CaptureFixture[str]) -> None:
    server = add_server(model_name="iris", model_version="3", replicas=2)
    code, out, _ = run(capsys, "models", "describe", str(server.uuid))
    assert code == 0
    assert re.search(rf"^UUID:\s+{server.uuid}$", out, re.M)
    assert re.search(r"^Version:\s+3$", out, re.M)
    assert "  replicas: 2" in out
    code, out, _ = run(capsys, "models", "describe", str(server.uuid), "--json")
    assert json.loads(out)["config"]["replicas"] == 2
    code, out, _ = run(capsys, "models", "get-url", str(server.uuid))
    assert out == "http://fake.invalid/default/iris/predict\n"
    code, out, _ = run(capsys, "models", "logs", str(server.uuid), "-n", "2")
    assert (code, out) == (0, "line 4\nline 5\n")
    code, out, _ = run(capsys, "models", "logs", str(server.uuid))
    assert out.splitlines() == [f"line {i}" for i in range(1, 6)]


def test_uuid_prefix_must_be_unique_and_well_formed(capsys: pytest.CaptureFixture[str]) -> None:
    first, second = add_server(model_name="a"), add_server(model_name="b")
    first.uuid = UUID("abcd1111-0000-4000-8000-000000000001")
    second.uuid = UUID("abcd2222-0000-4000-8000-000000000002")
    code, out, _ = run(capsys, "models", "get-url", "ABCD1")
    assert (code, out) == (0, "http://fake.invalid/default/a/predict\n")
    code, _, err = run(capsys, "models", "describe", "abcd")
    assert code == 2
    assert err.startswith("error: 'abcd' matches 2 model servers (abcd2222, abcd1111")
    code, _, err = run(capsys, "models", "describe", "abc")  # under 4 characters
    assert code == 2 and "is not a model server uuid" in err
    code, _, err = run(capsys, "models", "describe", "not-a-uuid")
    assert code == 2
    assert err == (
        "error: 'not-a-uuid' is not a model server uuid; copy one from `modeldeploy models list`\n"
    )
    code, _, err = run(capsys, "models", "describe", "0000")
    assert code == 1
    assert err.startswith("error: no fake model server has a uuid starting with '0000'")
    code, _, err = run(capsys, "models", "describe", "00000000-0000-4000-8000-000000000000")
    assert code == 1
    assert err.startswith("error: no fake model server with uuid 00000000-0000-4000-8000")


def test_stop_and_start_print_transitions(capsys: pytest.CaptureFixture[str]) -> None:
    server = add_server(model_version="2")
    short = str(server.uuid)[:8]
    code, out, err = run(
        capsys, "models", "stop", str(server.uuid), "--timeout", "5", "--namespace", "ml team"
    )
    assert code == 0
    assert re.search(rf"\[\s*\d+\.\ds\] {short} iris v2: active -> pending_shutdown$", err, re.M)
    # the hint repeats what located the server (env-given options need no repeating)
    assert f"`modeldeploy models start {server.uuid} --namespace 'ml team'`" in out
    assert re.search(rf"\[\s*\d+\.\ds\] {short} iris v2: pending_shutdown -> inactive$", err, re.M)
    assert out.startswith(f"Stopped {server.uuid}")
    assert server.status.state == ServiceState.INACTIVE
    code, out, err = run(capsys, "models", "start", str(server.uuid))
    assert code == 0
    assert re.search(rf"{short} iris v2: inactive -> pending_startup$", err, re.M)
    assert re.search(rf"{short} iris v2: pending_startup -> active$", err, re.M)
    assert out == f"Started {server.uuid} at http://fake.invalid/default/iris/predict\n"


def test_delete_asks_and_refuses_without_a_terminal(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = add_server()
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))  # not a tty
    code, _, err = run(capsys, "models", "delete", str(server.uuid))
    assert code == 2
    assert err.startswith("error: refusing to delete model server")
    assert "pass -y" in err and len(err.splitlines()) == 1
    assert server in FakeDeployer.servers

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stdin", Terminal("n\n"))
    code, _, err = run(capsys, "models", "delete", str(server.uuid))
    assert code == 1 and "[y/N]" in err and "nothing was deleted" in err
    assert server in FakeDeployer.servers
    monkeypatch.setattr("sys.stdin", Terminal("yes\n"))
    code, out, _ = run(capsys, "models", "delete", str(server.uuid))
    assert (code, out) == (0, f"Deleted {server.uuid}\n")
    assert FakeDeployer.servers == []
    other = add_server()
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    code, _, _ = run(capsys, "models", "delete", "-y", str(other.uuid))
    assert code == 0 and other.deleted


def test_unexpected_errors_and_interrupts_stay_quiet(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = add_server()

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire\nsecond line")

    monkeypatch.setattr(type(server), "logs", broken)
    code, _, err = run(capsys, "models", "logs", str(server.uuid))
    assert code == 1
    assert err == (
        "error: unexpected RuntimeError: disk on fire second line; rerun with --debug for "
        "the traceback\n"
    )
    code, _, err = run(capsys, "--debug", "models", "logs", str(server.uuid))
    assert code == 1 and "Traceback" in err

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(type(server), "logs", interrupted)
    assert run(capsys, "models", "logs", str(server.uuid)) == (130, "", "")


def test_flavors_lists_installed_entry_points(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "flavors", "--json", "--flavor", "mlflow")
    assert code == 0
    rows = {row["name"]: row for row in json.loads(out)}
    assert rows["mlflow"]["default"] is True
    assert rows["mlflow"]["status"] == "ok"
    assert rows["mlflow"]["settings"] == ["home", "tracking_uri"]
    assert rows["mlflow"]["deployer"] == "modeldeploy.flavors.mlflow.deployer:MLflowModelDeployer"
    # a flavor found by entry point only (no CLI code of its own), with its own settings
    assert rows["seldon2"]["status"] == "ok" and "mesh_url" in rows["seldon2"]["settings"]
    code, out, _ = run(capsys, "flavors", "--flavor", "mlflow")
    assert out.splitlines()[0].split() == ["FLAVOR", "DEPLOYER", "SETTINGS", "STATUS"]
    assert any(line.startswith("mlflow *") for line in out.splitlines())
