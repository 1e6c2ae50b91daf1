"""`modeldeploy`: manage model servers of any flavor from a shell.

    modeldeploy [global options] models list|describe|get-url|logs|start|stop|delete ...
    modeldeploy [global options] rollback MODEL_NAME [--pipeline P] [--step S]
    modeldeploy [global options] gate MODEL_NAME --metric rmse=56.1 [--champion-metric rmse]
    modeldeploy [global options] rollout status|promote|abort MODEL_NAME [--json]
    modeldeploy [global options] history MODEL_NAME [--limit N] [--json]
    modeldeploy flavors

Global options may also follow the command (`modeldeploy models list --flavor kserve`),
and each has an environment variable. Every setting of the chosen flavor's settings model
(`modeldeploy flavors --settings` lists them) is also read from `--setting NAME=VALUE`
or `MODELDEPLOY_<FLAVOR>_<NAME>`; `modeldeploy.settings` turns the text into values.
Only the standard library is imported here; the engine and the flavor load inside the
command, heavy libraries only where a command needs them (so `models list` starts fast).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

from modeldeploy.waiting import DEFAULT_TIMEOUT  # standard library only: cheap

PROG = "modeldeploy"
DEFAULT_FLAVOR = "mlflow"

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_BROKEN_PIPE = 141
EXIT_INTERRUPTED = 130

# option dest -> environment variable
ENVIRONMENT = {
    "flavor": "MODELDEPLOY_FLAVOR",
    "home": "MODELDEPLOY_HOME",
    "tracking_uri": "MLFLOW_TRACKING_URI",
    "namespace": "MODELDEPLOY_NAMESPACE",
    "context": "MODELDEPLOY_KUBE_CONTEXT",
    "kubeconfig": "KUBECONFIG",
    "in_cluster": "MODELDEPLOY_IN_CLUSTER",
    "ingress_url": "MODELDEPLOY_INGRESS_URL",
    "timeout": "MODELDEPLOY_TIMEOUT",
    "debug": "MODELDEPLOY_DEBUG",
    "airflow_conn": "MODELDEPLOY_AIRFLOW_CONN",
    "prefect_block": "MODELDEPLOY_PREFECT_BLOCK",
}

# option dest -> deployer settings fields it may fill, first present wins
SETTING_FIELDS: dict[str, tuple[str, ...]] = {
    "home": ("home",),
    "tracking_uri": ("tracking_uri",),
    "kubeconfig": ("kubeconfig_path", "kubeconfig"),
    "context": ("context",),
    "in_cluster": ("in_cluster",),
    "namespace": ("namespace",),
    "ingress_url": ("ingress_base_url", "ingress_url"),
}

OPTION_NAMES = {
    "home": "--home",
    "tracking_uri": "--tracking-uri",
    "kubeconfig": "--kubeconfig",
    "context": "--context",
    "in_cluster": "--in-cluster",
    "namespace": "--namespace",
    "ingress_url": "--ingress-url",
}


class CLIError(Exception):
    """Bad input caught by the CLI itself; printed as one `error:` line."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one `error:` line on stderr (exit code 2)."""

    def error(self, message: str) -> NoReturn:
        raise CLIError(f"{message} (see `{self.prog} --help`)")


# --- argument types ---------------------------------------------------------------------


def timeout_seconds(text: str) -> float:
    from modeldeploy.errors import InvalidConfigError
    from modeldeploy.waiting import check_timeout

    try:
        return check_timeout(text)  # type: ignore[arg-type]  # the engine's one check
    except InvalidConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("timeout ")) from None


def count_of(unit: str) -> Callable[[str], int]:
    """An argparse type for a count of `unit`s: a whole number, zero or more."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"must be a whole number of {unit}, got {text!r}"
            ) from None
        if value < 0:
            raise argparse.ArgumentTypeError(f"must be zero or more {unit}, got {text!r}")
        return value

    return parse


def key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"must be KEY=VALUE, got {text!r}")
    return key.strip(), value


def parse_bool(text: str, name: str) -> bool:
    from modeldeploy.errors import InvalidConfigError
    from modeldeploy.settings import as_bool

    try:
        return as_bool(text, name)
    except InvalidConfigError as exc:
        raise CLIError(str(exc)) from None


# --- the parser -------------------------------------------------------------------------


def _global_options() -> Parser:
    """Options accepted before or after the command; SUPPRESS keeps the first from being
    overwritten by a sub-parser's default."""
    common = Parser(add_help=False)
    g = common.add_argument_group("global options (also accepted after the command)")
    s = argparse.SUPPRESS
    g.add_argument(
        "--flavor",
        metavar="NAME",
        default=s,
        help=f"serving platform: mlflow, seldon, seldon2, kserve or any installed flavor "
        f"(env {ENVIRONMENT['flavor']}; default {DEFAULT_FLAVOR})",
    )
    g.add_argument(
        "--home",
        metavar="DIR",
        default=s,
        help=f"state directory of the mlflow flavor (env {ENVIRONMENT['home']}; "
        "default ~/.modeldeploy)",
    )
    g.add_argument(
        "--tracking-uri",
        metavar="URI",
        default=s,
        help=f"MLflow tracking and registry URI (env {ENVIRONMENT['tracking_uri']}; "
        "default SQLite under the home directory)",
    )
    g.add_argument(
        "--airflow-conn",
        metavar="ID",
        default=s,
        help="use the deployer of this Airflow connection (a modeldeploy_* type; needs "
        f"modeldeploy[airflow]; env {ENVIRONMENT['airflow_conn']})",
    )
    g.add_argument(
        "--prefect-block",
        metavar="NAME",
        default=s,
        help="use the deployer of this saved Prefect block, NAME or SLUG/NAME (needs "
        f"modeldeploy[prefect]; env {ENVIRONMENT['prefect_block']})",
    )
    g.add_argument(
        "--namespace",
        metavar="NS",
        default=s,
        help=f"Kubernetes namespace (env {ENVIRONMENT['namespace']})",
    )
    g.add_argument(
        "--context",
        metavar="NAME",
        default=s,
        help=f"kubeconfig context (env {ENVIRONMENT['context']})",
    )
    g.add_argument(
        "--kubeconfig",
        metavar="FILE",
        default=s,
        help=f"kubeconfig file (env {ENVIRONMENT['kubeconfig']})",
    )
    g.add_argument(
        "--in-cluster",
        action=argparse.BooleanOptionalAction,
        default=s,
        help=f"use the pod's service account (env {ENVIRONMENT['in_cluster']}=1)",
    )
    g.add_argument(
        "--ingress-url",
        metavar="URL",
        default=s,
        help=f"base URL of the cluster's ingress, for prediction URLs "
        f"(env {ENVIRONMENT['ingress_url']})",
    )
    g.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=timeout_seconds,
        default=s,
        help=f"how long start, stop, delete and rollback wait (env {ENVIRONMENT['timeout']}; "
        f"default {DEFAULT_TIMEOUT:g})",
    )
    g.add_argument(
        "--setting",
        metavar="KEY=VALUE",
        type=key_value,
        action="append",
        default=s,
        help="any setting of the flavor's deployer (repeatable; VALUE may be JSON); also "
        "from env MODELDEPLOY_<FLAVOR>_<NAME>; `modeldeploy flavors --settings` lists them",
    )
    g.add_argument(
        "--debug",
        action="store_true",
        default=s,
        help=f"show tracebacks and debug logs (env {ENVIRONMENT['debug']}=1)",
    )
    return common


def build_parser() -> Parser:
    common = _global_options()
    parser = Parser(
        prog=PROG,
        parents=[common],
        description=(
            "Deploy, inspect and roll back model servers (MLflow, Seldon Core 1 and 2, KServe)."
        ),
        epilog="Exit codes: 0 done, 1 the operation failed, 2 bad input, 130 interrupted.",
    )
    from modeldeploy.version import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    models = commands.add_parser(
        "models",
        parents=[common],
        help="list and manage model servers",
        description="List and manage model servers of one flavor.",
    )
    verbs = models.add_subparsers(dest="verb", metavar="VERB", required=True)

    p = verbs.add_parser(
        "list",
        parents=[common],
        help="list model servers, newest first",
        description="List model servers, newest first.",
    )
    p.add_argument("--pipeline", metavar="P", help="only servers deployed by pipeline P")
    p.add_argument("--step", metavar="S", help="only servers deployed by step S")
    p.add_argument("--model", metavar="M", help="only servers of model M")
    p.add_argument("--running", action="store_true", help="only servers that are serving")
    p.add_argument("--json", action="store_true", help="print a JSON array")
    p.set_defaults(handler="models_list")

    p = verbs.add_parser(
        "describe",
        parents=[common],
        help="show everything known about one server",
        description="Show everything known about one model server.",
    )
    p.add_argument("uuid", metavar="UUID", help="server uuid (or a unique prefix of 4+ chars)")
    p.add_argument("--json", action="store_true", help="print a JSON object")
    p.set_defaults(handler="models_describe")

    p = verbs.add_parser(
        "get-url",
        parents=[common],
        help="print the prediction URL",
        description="Print the prediction URL of a model server.",
    )
    p.add_argument("uuid", metavar="UUID")
    p.set_defaults(handler="models_get_url")

    p = verbs.add_parser(
        "logs",
        parents=[common],
        help="print the server's log",
        description="Print the server's log, oldest first.",
    )
    p.add_argument("uuid", metavar="UUID")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    p.add_argument(
        "-n",
        "--tail",
        metavar="N",
        type=count_of("lines"),
        default=None,
        help="only the last N lines (default: all)",
    )
    p.set_defaults(handler="models_logs")

    p = verbs.add_parser(
        "start",
        parents=[common],
        help="start a stopped server and wait until it serves",
        description="Start a stopped model server and wait until it serves.",
    )
    p.add_argument("uuid", metavar="UUID")
    p.set_defaults(handler="models_start")

    p = verbs.add_parser(
        "stop",
        parents=[common],
        help="stop serving, keep the record",
        description="Stop a model server but keep its record, so `start` can bring it back.",
    )
    p.add_argument("uuid", metavar="UUID")
    p.add_argument("--force", action="store_true", help="kill instead of a graceful stop")
    p.set_defaults(handler="models_stop")

    p = verbs.add_parser(
        "delete",
        parents=[common],
        help="stop a server and remove it for good",
        description="Stop a model server and remove everything it owns. Asks first, "
        "unless -y is given; refuses without -y when stdin is not a terminal.",
    )
    p.add_argument("uuid", metavar="UUID")
    p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument("--force", action="store_true", help="kill instead of a graceful stop")
    p.set_defaults(handler="models_delete")

    p = commands.add_parser(
        "rollback",
        parents=[common],
        help="serve the previous champion again",
        description="Redeploy the previous champion version of MODEL_NAME in place (same URL) "
        "and move the registry's `champion` alias back to it.",
    )
    p.add_argument("model_name", metavar="MODEL_NAME")
    p.add_argument("--pipeline", metavar="P", help="the pipeline whose server to roll back")
    p.add_argument("--step", metavar="S", help="the step whose server to roll back")
    p.add_argument("--json", action="store_true", help="print the outcome as JSON")
    p.set_defaults(handler="rollback")

    from modeldeploy.cli.rollouts import add_parser as add_rollout_parser

    add_rollout_parser(commands, common)

    from modeldeploy.cli.history import add_parser as add_history_parser

    add_history_parser(commands, common)

    p = commands.add_parser(
        "gate",
        parents=[common],
        help="decide whether a candidate may replace the champion",
        description="Evaluate a candidate's metrics against rules and, with "
        "--champion-metric, against the registry's champion of MODEL_NAME. Exits 0 when it "
        "passes and 1 when it is rejected, printing the reason.",
    )
    p.add_argument("model_name", metavar="MODEL_NAME")
    p.add_argument(
        "--metric", action="append", default=[], metavar="NAME=VALUE",
        help="a candidate metric (repeatable), e.g. --metric rmse=56.1",
    )  # fmt: skip
    p.add_argument(
        "--rule", action="append", default=[], metavar="RULE",
        help="a threshold (repeatable), e.g. --rule 'accuracy>=0.9'",
    )  # fmt: skip
    p.add_argument("--champion-metric", metavar="NAME", help="compare with the champion on it")
    p.add_argument(
        "--direction", choices=("minimize", "maximize"),
        help="which way --champion-metric is better; needed unless it is a well-known "
        "metric (rmse, log_loss... minimize; accuracy, f1, auc, r2... maximize)",
    )  # fmt: skip
    p.add_argument("--min-improvement", type=float, default=0.0, metavar="X")
    p.add_argument("--json", action="store_true", help="print the decision as JSON")
    p.set_defaults(handler="gate")

    p = commands.add_parser(
        "flavors",
        parents=[common],
        help="list installed flavors",
        description="List the flavors installed under the `modeldeploy.flavors` entry points.",
    )
    p.add_argument("--json", action="store_true", help="print a JSON array")
    p.add_argument(
        "--settings",
        action="store_true",
        help="list each flavor's settings: kind, secret, environment variable, description",
    )
    p.set_defaults(handler="flavors")
    return parser


# --- global options resolved: option, then environment, then default --------------------


@dataclass
class Globals:
    flavor: str = DEFAULT_FLAVOR
    home: str | None = None
    tracking_uri: str | None = None
    namespace: str | None = None
    context: str | None = None
    kubeconfig: str | None = None
    in_cluster: bool | None = None
    ingress_url: str | None = None
    timeout: float | None = None
    airflow_conn: str | None = None
    prefect_block: str | None = None
    settings: dict[str, str] = field(default_factory=dict)
    environ: dict[str, str] = field(default_factory=dict)
    debug: bool = False
    explicit: set[str] = field(default_factory=set)  # given on the command line


def resolve_globals(args: argparse.Namespace, environ: dict[str, str] | None = None) -> Globals:
    env = os.environ if environ is None else environ
    given = vars(args)
    out = Globals()
    for dest, var in ENVIRONMENT.items():
        if dest in given:
            out.explicit.add(dest)
            value: Any = given[dest]
        else:
            raw = env.get(var, "")
            if raw == "":
                continue
            if dest in {"in_cluster", "debug"}:
                value = parse_bool(raw, var)
            elif dest == "timeout":
                try:
                    value = timeout_seconds(raw)
                except argparse.ArgumentTypeError as exc:
                    raise CLIError(f"{var}: {exc}") from None
            else:
                value = raw
        setattr(out, dest, value)
    out.settings = dict(given.get("setting") or [])
    out.environ = dict(env)
    if not out.flavor:
        raise CLIError("--flavor is empty; name an installed flavor (see `modeldeploy flavors`)")
    if out.airflow_conn and out.prefect_block:
        raise CLIError("give --airflow-conn or --prefect-block, not both")
    return out


def build_settings(settings_fields: Iterable[str], g: Globals) -> tuple[dict[str, Any], list[str]]:
    """The settings this flavor accepts (as text: the engine coerces them), and the
    command-line options it ignores.

    Only fields present on the flavor's settings class are passed, so the CLI works for
    any flavor, including third-party ones. Lowest first: `MODELDEPLOY_<FLAVOR>_<NAME>`,
    the named options and their variables, `--setting`. Options that came from the
    environment and do not apply are skipped silently; typed ones are reported.
    """
    from modeldeploy.settings import setting_env_var

    fields = set(settings_fields)
    settings: dict[str, Any] = {}
    for name in fields:
        raw = g.environ.get(setting_env_var(g.flavor, name), "")
        if raw != "":
            settings[name] = raw
    ignored: list[str] = []
    for dest, candidates in SETTING_FIELDS.items():
        value = getattr(g, dest)
        if value is None:
            continue
        target = next((f for f in candidates if f in fields), None)
        if target is None:
            if dest in g.explicit:
                ignored.append(OPTION_NAMES[dest])
            continue
        settings[target] = value
    for key, raw in g.settings.items():
        if key not in fields:
            known = ", ".join(sorted(fields)) or "none"
            raise CLIError(
                f"the {g.flavor} flavor has no setting {key!r}; its settings are: {known}"
            )
        settings[key] = raw
    return settings, ignored


# --- entry point ------------------------------------------------------------------------


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _error(message: str) -> None:
    from modeldeploy.redaction import redact

    print(f"error: {redact(message)}", file=sys.stderr, flush=True)


def _configure(g: Globals) -> None:
    import logging
    import warnings

    if not g.debug and not sys.warnoptions:
        warnings.simplefilter("ignore")
    from modeldeploy.redaction import get_logger

    logger = get_logger("modeldeploy")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(logging.DEBUG if g.debug else logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    debug = False
    try:
        args = build_parser().parse_args(argv)
        g = resolve_globals(args)
        debug = g.debug
        _configure(g)
        from modeldeploy.cli import commands

        handler: Callable[[Globals, argparse.Namespace], int] = getattr(commands, args.handler)
        return handler(g, args)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`modeldeploy models logs X | head`); say nothing.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except OSError:
            pass
        return EXIT_BROKEN_PIPE
    except CLIError as exc:
        _error(_one_line(exc))
        return exc.code
    except Exception as exc:
        from modeldeploy.errors import InvalidConfigError, ModelDeployError

        if debug:
            import traceback

            from modeldeploy.redaction import redact

            print(redact(traceback.format_exc()), file=sys.stderr, end="")
        if isinstance(exc, InvalidConfigError):
            _error(_one_line(exc))
            return EXIT_USAGE
        if isinstance(exc, ModelDeployError):
            _error(_one_line(exc))
            return EXIT_FAILED
        hint = "" if debug else "; rerun with --debug for the traceback"
        _error(f"unexpected {type(exc).__name__}: {_one_line(exc)}{hint}")
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
