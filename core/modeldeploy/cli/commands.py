"""What each `modeldeploy` command does. Imported by `main` after the arguments parsed.

The engine modules load here when a command needs them; the flavor's own module loads
when its deployer class is looked up. Nothing here imports mlflow, pandas, sklearn,
requests or kubernetes: a flavor does that inside the verbs that need it.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from typing import TYPE_CHECKING, Any

from modeldeploy.cli.history import history  # noqa: F401 - handlers are looked up by name
from modeldeploy.cli.main import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    OPTION_NAMES,
    SETTING_FIELDS,
    CLIError,
    Globals,
    build_settings,
)
from modeldeploy.cli.output import (
    Progress,
    dump_json,
    render_description,
    render_server_table,
    render_table,
    short_uuid,
)
from modeldeploy.cli.rollouts import (  # noqa: F401 - handlers are looked up by name
    rollout_abort,
    rollout_approve,
    rollout_promote,
    rollout_reject,
    rollout_status,
)

if TYPE_CHECKING:
    from modeldeploy.cli.sources import DeployerSource
    from modeldeploy.deployer import ModelDeployer
    from modeldeploy.registry import ModelRegistry
    from modeldeploy.server import ModelServer

_UUID_PREFIX = re.compile(r"^[0-9a-fA-F][0-9a-fA-F-]{3,34}$")


# --- shared plumbing --------------------------------------------------------------------


def load_deployer_class(flavor: str) -> type[ModelDeployer]:
    from modeldeploy.errors import ModelDeployError
    from modeldeploy.flavors import get_deployer_class

    try:
        return get_deployer_class(flavor)
    except ModelDeployError:
        raise
    except ImportError as exc:
        raise CLIError(
            f"the {flavor} flavor is installed but could not be loaded ({exc}); install what it "
            "needs, e.g. `pip install 'modeldeploy[kubernetes]'` for seldon and kserve",
            code=EXIT_FAILED,
        ) from None
    except Exception as exc:
        raise CLIError(
            f"the {flavor} flavor could not be loaded: {type(exc).__name__}: {exc}",
            code=EXIT_FAILED,
        ) from None


def orchestrator_source(g: Globals) -> DeployerSource | None:
    """The Airflow connection or Prefect block named on the command line, if any."""
    from modeldeploy.cli.sources import load_source

    if g.airflow_conn:
        return load_source("airflow", g.airflow_conn)
    if g.prefect_block:
        return load_source("prefect", g.prefect_block)
    return None


def make_deployer(g: Globals) -> ModelDeployer:
    """`create_deployer(flavor, settings)` with only the settings the flavor declares, or
    the deployer of the Airflow connection or Prefect block given."""
    from modeldeploy.flavors import create_deployer

    source = orchestrator_source(g)
    if source is not None:
        _warn_overridden(g, source.description)
        return source.deployer

    cls = load_deployer_class(g.flavor)
    settings, ignored = build_settings(cls.settings_class.model_fields, g)
    for option in ignored:
        print(
            f"warning: {option} does not apply to the {g.flavor} flavor; ignored", file=sys.stderr
        )
    return create_deployer(g.flavor, settings)


def _warn_overridden(g: Globals, description: str) -> None:
    for dest in sorted(g.explicit & {"flavor", *SETTING_FIELDS}):
        option = OPTION_NAMES.get(dest, f"--{dest.replace('_', '-')}")
        print(f"warning: {option} is ignored: {description} decides", file=sys.stderr)


def where_of(g: Globals, deployer: ModelDeployer) -> str:
    """Where the deployer looked, for "nothing found" messages."""
    from modeldeploy.redaction import redact

    source = g.airflow_conn and f"Airflow connection {g.airflow_conn}"
    source = source or (g.prefect_block and f"Prefect block {g.prefect_block}")
    return redact(deployer.location() + (f" ({source})" if source else ""))


def timeout_of(g: Globals) -> float:
    from modeldeploy.waiting import DEFAULT_TIMEOUT

    return DEFAULT_TIMEOUT if g.timeout is None else g.timeout


def resolve_server(deployer: ModelDeployer, text: str) -> ModelServer:
    """The server named by a full uuid or by a unique prefix of at least 4 characters."""
    from uuid import UUID

    from modeldeploy.errors import InvalidConfigError, ModelServerNotFoundError

    text = text.strip()
    try:
        UUID(text)
    except ValueError:
        pass
    else:
        return deployer.get_model_server(text)
    if not _UUID_PREFIX.match(text):
        raise InvalidConfigError(
            f"{text!r} is not a model server uuid; copy one from `modeldeploy models list`"
        )
    prefix = text.lower()
    found = [s for s in deployer.find_model_server() if str(s.uuid).startswith(prefix)]
    if not found:
        raise ModelServerNotFoundError(
            f"no {deployer.flavor} model server has a uuid starting with {text!r} in "
            f"{deployer.location()}; list them with `modeldeploy models list`"
        )
    if len(found) > 1:
        names = ", ".join(short_uuid(s.uuid) for s in found[:5])
        raise InvalidConfigError(
            f"{text!r} matches {len(found)} model servers ({names}...); type more of the uuid"
        )
    return found[0]


def label(server: ModelServer) -> str:
    c = server.config
    version = f" v{c.model_version}" if c.model_version else ""
    return f"{server.uuid} ({c.model_name}{version})"


def info_json(server: ModelServer) -> dict[str, Any]:
    return server.info().model_dump(mode="json")


# --- models -----------------------------------------------------------------------------


def models_list(g: Globals, args: argparse.Namespace) -> int:
    deployer = make_deployer(g)
    servers = deployer.find_model_server(
        running=args.running,
        pipeline_name=args.pipeline,
        pipeline_step_name=args.step,
        model_name=args.model,
    )
    infos = [info_json(s) for s in servers]
    if args.json:
        dump_json(infos)
    elif infos:
        print(render_server_table(infos))
    else:
        print(
            f"No {deployer.flavor} model servers found in {where_of(g, deployer)}.",
            file=sys.stderr,
        )
    return EXIT_OK


def models_describe(g: Globals, args: argparse.Namespace) -> int:
    server = resolve_server(make_deployer(g), args.uuid)
    info = info_json(server)
    if args.json:
        dump_json(info)
    else:
        print(render_description(info))
    return EXIT_OK


def models_get_url(g: Globals, args: argparse.Namespace) -> int:
    server = resolve_server(make_deployer(g), args.uuid)
    url = server.prediction_url
    if not url:
        raise CLIError(
            f"model server {label(server)} has no prediction URL while "
            f"{server.status.state.value}; start it with "
            f"`{command_line(g, 'models start', str(server.uuid))}`",
            code=EXIT_FAILED,
        )
    print(url)
    return EXIT_OK


def models_logs(g: Globals, args: argparse.Namespace) -> int:
    deployer = make_deployer(g)
    server = resolve_server(deployer, args.uuid)
    out = sys.stdout
    for line in deployer.get_model_server_logs(server.uuid, follow=args.follow, tail=args.tail):
        out.write(line if line.endswith("\n") else line + "\n")
        if args.follow:
            out.flush()
    out.flush()
    return EXIT_OK


def models_start(g: Globals, args: argparse.Namespace) -> int:
    deployer = make_deployer(g)
    server = resolve_server(deployer, args.uuid)
    progress = Progress(
        header=f"starting model server {label(server)}, now {server.status.state.value}"
    )
    progress.seen(server.uuid, server.status.state)
    server = deployer.start_model_server(server.uuid, timeout=timeout_of(g), on_transition=progress)
    progress.say(f"serving after {progress.elapsed():.1f}s")
    print(f"Started {server.uuid} at {server.prediction_url or '-'}")
    return EXIT_OK


def models_stop(g: Globals, args: argparse.Namespace) -> int:
    deployer = make_deployer(g)
    server = resolve_server(deployer, args.uuid)
    progress = Progress(
        header=f"stopping model server {label(server)}, now {server.status.state.value}"
    )
    progress.seen(server.uuid, server.status.state)
    server = deployer.stop_model_server(
        server.uuid, timeout=timeout_of(g), force=args.force, on_transition=progress
    )
    progress.say(f"stopped after {progress.elapsed():.1f}s")
    again = command_line(g, "models start", str(server.uuid))
    print(f"Stopped {server.uuid}; start it again with `{again}`")
    return EXIT_OK


#: global options that say where a server is found (never secrets: the URI may hold one)
_LOCATING = (
    "flavor",
    "home",
    "airflow_conn",
    "prefect_block",
    "namespace",
    "context",
    "kubeconfig",
)


def command_line(g: Globals, verb: str, *args: str) -> str:
    """The command to run next, with the options given this time that locate the server."""
    import shlex

    words = ["modeldeploy", *verb.split(), *args]
    for dest in _LOCATING:
        value = getattr(g, dest)
        if dest in g.explicit and value is not None:
            words += [f"--{dest.replace('_', '-')}", str(value)]
    return shlex.join(words)


def _confirm(question: str) -> bool:
    stdin = sys.stdin
    sys.stderr.write(f"{question} [y/N] ")
    sys.stderr.flush()
    answer = stdin.readline()
    return answer.strip().lower() in {"y", "yes"}


def _interactive() -> bool:
    stdin = sys.stdin
    return stdin is not None and not stdin.closed and stdin.isatty()


def models_delete(g: Globals, args: argparse.Namespace) -> int:
    deployer = make_deployer(g)
    server = resolve_server(deployer, args.uuid)
    if not args.yes:
        if not _interactive():
            raise CLIError(
                f"refusing to delete model server {label(server)} without confirmation: "
                "stdin is not a terminal; pass -y to delete without asking",
                code=EXIT_USAGE,
            )
        c = server.config
        question = (
            f"Delete {g.flavor} model server {server.uuid} (model {c.model_name}"
            f"{' v' + c.model_version if c.model_version else ''}, pipeline {c.pipeline_name}, "
            f"step {c.step_name}, {server.status.state.value})?"
        )
        if not _confirm(question):
            print("Aborted; nothing was deleted.", file=sys.stderr)
            return EXIT_FAILED
    progress = Progress()
    progress.say(f"deleting model server {label(server)}")
    deployer.delete_model_server(server.uuid, timeout=timeout_of(g), force=args.force)
    progress.say(f"deleted after {progress.elapsed():.1f}s")
    print(f"Deleted {server.uuid}")
    return EXIT_OK


# --- rollback ---------------------------------------------------------------------------


def import_mlflow_quietly(g: Globals) -> None:
    """Import mlflow with its INFO chatter (creating SQLite tables...) off the terminal.

    The level is set for this process only: daemons started later keep MLflow's default.
    """
    if g.debug or "MLFLOW_LOGGING_LEVEL" in os.environ or "mlflow" in sys.modules:
        return
    os.environ["MLFLOW_LOGGING_LEVEL"] = "WARNING"
    try:
        import mlflow  # noqa: F401 - configures its loggers on import
    finally:
        os.environ.pop("MLFLOW_LOGGING_LEVEL", None)


def deployer_and_registry(g: Globals) -> tuple[ModelDeployer, ModelRegistry]:
    """The deployer and the MLflow registry that goes with it: from the Airflow connection
    or Prefect block given, else from the flavor and settings on the command line."""
    from modeldeploy.flavors import registry_for

    source = orchestrator_source(g)
    if source is not None:
        _warn_overridden(g, source.description)
        return source.deployer, source.registry()
    deployer = make_deployer(g)
    return deployer, registry_for(deployer)


def rollback(g: Globals, args: argparse.Namespace) -> int:
    from modeldeploy.rollout import rollback as rollback_model

    import_mlflow_quietly(g)
    deployer, registry = deployer_and_registry(g)
    progress = Progress(header=f"rolling back {args.model_name}")
    outcome = rollback_model(
        deployer,
        registry,
        args.model_name,
        pipeline_name=args.pipeline,
        step_name=args.step,
        timeout=timeout_of(g),
        on_transition=progress,
    )
    progress.say(f"done after {progress.elapsed():.1f}s")
    if args.json:
        dump_json(outcome.model_dump(mode="json"))
    else:
        print(outcome.message[:1].upper() + outcome.message[1:])
    return EXIT_OK


# --- gate -------------------------------------------------------------------------------


def gate(g: Globals, args: argparse.Namespace) -> int:
    from modeldeploy.gate import Gate

    metrics = {}
    for item in args.metric:
        name, sep, value = item.partition("=")
        try:
            metrics[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not name.strip():
            raise CLIError(f"--metric {item!r} is not NAME=NUMBER, e.g. --metric rmse=56.1")
    decider = Gate.from_rules(
        args.rule,
        champion_metric=args.champion_metric,
        min_improvement=args.min_improvement,
        direction=args.direction,
    )
    champion = None
    if decider.champion_challenger is not None:
        import_mlflow_quietly(g)
        deployer, registry = deployer_and_registry(g)
        with deployer:
            champion = registry.get_champion(args.model_name)
    decision = decider.evaluate(metrics, champion.metrics if champion else None)
    if args.json:
        dump_json(
            {
                **decision.model_dump(mode="json"),
                "champion_version": champion.version if champion else None,
            }
        )
    else:
        print(f"gate {decision.reason}")
    return EXIT_OK if decision.passed else EXIT_FAILED


# --- flavors ----------------------------------------------------------------------------


def _setting_rows(flavor: str, cls: type[ModelDeployer]) -> list[dict[str, Any]]:
    from modeldeploy.settings import setting_env_var, setting_fields

    return [
        {
            "name": f.name,
            "kind": f.kind,
            "secret": f.secret,
            "env": setting_env_var(flavor, f.name),
            "description": f.description,
        }
        for f in setting_fields(cls.settings_class)
    ]


def flavors(g: Globals, args: argparse.Namespace) -> int:
    from importlib.metadata import entry_points

    from modeldeploy.flavors import ENTRY_POINT_GROUP, get_deployer_class

    rows: list[dict[str, Any]] = []
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        row: dict[str, Any] = {
            "name": ep.name,
            "default": ep.name == g.flavor,
            "deployer": ep.value,
            "distribution": ep.dist.name if ep.dist else None,
            "settings": [],
            "status": "ok",
        }
        try:
            cls = get_deployer_class(ep.name)
        except Exception as exc:  # a broken third-party flavor must not hide the others
            reason = " ".join(str(exc).split()) or type(exc).__name__
            row["status"] = f"unavailable: {reason}"
        else:
            row["settings"] = sorted(cls.settings_class.model_fields)
            if args.settings:
                row["setting_fields"] = _setting_rows(ep.name, cls)
        rows.append(row)
    if args.json:
        dump_json(rows)
        return EXIT_OK
    if args.settings:
        for r in rows:
            print(f"{r['name']}:")
            fields = r.get("setting_fields", [])
            table = [
                [f["name"], f["kind"], "yes" if f["secret"] else "", f["env"], f["description"]]
                for f in fields
            ]
            print(render_table(["SETTING", "KIND", "SECRET", "ENV", "DESCRIPTION"], table))
        return EXIT_OK
    if not rows:
        print("No flavors installed.", file=sys.stderr)
        return EXIT_OK
    table = [
        [
            r["name"] + (" *" if r["default"] else ""),
            r["deployer"],
            ", ".join(r["settings"]),
            r["status"],
        ]
        for r in rows
    ]
    print(render_table(["FLAVOR", "DEPLOYER", "SETTINGS", "STATUS"], table))
    return EXIT_OK
