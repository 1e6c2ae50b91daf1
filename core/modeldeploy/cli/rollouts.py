"""`modeldeploy rollout status|approve|reject|promote|abort MODEL`: a progressive rollout
from any shell.

The rollout's state is read from where the engine keeps it (see
`modeldeploy.progressive.state`), so these work while an Airflow task or a Prefect flow
drives the rollout elsewhere. `status --follow` drives it too (each advance takes a lock
and only does what is due), printing every step with its figures against the thresholds.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from modeldeploy.cli.main import EXIT_FAILED, EXIT_OK, Globals
from modeldeploy.cli.output import dump_json

if TYPE_CHECKING:
    from modeldeploy.progressive.state import RolloutState


def render_state(state: RolloutState) -> str:
    from modeldeploy.progressive.report import render_state as render

    return render(state)


def _context(g: Globals) -> tuple[Any, Any]:
    from modeldeploy.cli.commands import deployer_and_registry, import_mlflow_quietly

    import_mlflow_quietly(g)
    return deployer_and_registry(g)


def _show(state: RolloutState, as_json: bool) -> int:
    if as_json:
        dump_json(state.model_dump(mode="json"))
    else:
        print(render_state(state))
    return EXIT_FAILED if state.phase == "rolled_back" else EXIT_OK


def _ended(state: RolloutState, as_json: bool) -> int:
    """A rollout stopped on request: rolled back is what was asked for, so not a failure."""
    _show(state, as_json)
    return EXIT_OK


def rollout_status(g: Globals, args: argparse.Namespace) -> int:
    from modeldeploy.progressive import runner

    deployer = None
    registry = None
    if args.follow:
        deployer, registry = _context(g)
    else:
        from modeldeploy.cli.commands import make_deployer

        deployer = make_deployer(g)
    state = runner.rollout_status(deployer, args.model_name)
    if args.follow and not state.done:
        print(render_state(state), file=sys.stderr, flush=True)
        state = runner.run_rollout(
            deployer,
            args.model_name,
            registry,
            on_progress=lambda s: print(render_state(s), file=sys.stderr, flush=True),
        )
    if args.json:
        dump_json(state.model_dump(mode="json"))
    else:
        print(render_state(state))
    return EXIT_OK


def rollout_promote(g: Globals, args: argparse.Namespace) -> int:
    from modeldeploy.progressive.runner import promote_rollout

    deployer, registry = _context(g)
    return _show(promote_rollout(deployer, args.model_name, registry), args.json)


def rollout_approve(g: Globals, args: argparse.Namespace) -> int:
    from modeldeploy.progressive.runner import approve_rollout

    deployer, registry = _context(g)
    state = approve_rollout(
        deployer, args.model_name, registry, by=_reviewer(args), comment=args.comment or ""
    )
    return _show(state, args.json)


def rollout_reject(g: Globals, args: argparse.Namespace) -> int:
    from modeldeploy.progressive.runner import reject_rollout

    deployer, registry = _context(g)
    state = reject_rollout(
        deployer, args.model_name, registry, by=_reviewer(args), reason=args.reason
    )
    return _ended(state, args.json)


def _reviewer(args: argparse.Namespace) -> str:
    """Who answers: --by, else the login name of this shell's user."""
    import getpass

    return str(args.by or getpass.getuser())


def rollout_abort(g: Globals, args: argparse.Namespace) -> int:
    from modeldeploy.progressive.runner import abort_rollout

    deployer, registry = _context(g)
    reason = args.reason or "aborted from the command line"
    return _ended(abort_rollout(deployer, args.model_name, registry, reason=reason), args.json)


def add_parser(commands: Any, common: argparse.ArgumentParser) -> None:
    """The `rollout` command group, added to the top-level parser by `main`."""
    rollout = commands.add_parser(
        "rollout",
        parents=[common],
        help="follow, approve, reject, promote or abort a progressive rollout",
        description="Follow, approve, reject, promote or abort the progressive rollout "
        "(canary, linear, blue/green, shadow) of MODEL_NAME, wherever it was started.",
    )
    verbs = rollout.add_subparsers(dest="verb", metavar="VERB", required=True)
    for verb, short, long in _VERBS:
        p = verbs.add_parser(verb, parents=[common], help=short, description=long)
        p.add_argument("model_name", metavar="MODEL_NAME")
        if verb == "status":
            p.add_argument("--follow", action="store_true", help="advance and print until done")
        if verb == "abort":
            p.add_argument("--reason", metavar="TEXT", help="why (tagged on the rejected version)")
        if verb == "approve":
            p.add_argument("--comment", metavar="TEXT", help="why (tagged on the version)")
        if verb == "reject":
            p.add_argument(
                "--reason", metavar="TEXT", required=True, help="why (tagged on the version)"
            )
        if verb in ("approve", "reject"):
            p.add_argument("--by", metavar="NAME", help="who answers (default: your login name)")
        p.add_argument("--json", action="store_true", help="print the rollout state as JSON")
        p.set_defaults(handler=f"rollout_{verb}")


_VERBS = (
    (
        "status",
        "show the step, traffic split and each analysis",
        "Show the rollout's step, traffic split and each step's figures against the "
        "thresholds. With --follow, advance it and print every change until it ends.",
    ),
    (
        "approve",
        "let a rollout waiting for approval enter its next step",
        "Let a rollout held before a step (strategy option approve_before_steps) enter it; "
        "your name and comment are tagged on the model version.",
    ),
    (
        "reject",
        "roll a rollout waiting for approval back",
        "Reject a rollout held before a step: all traffic back to the champion, the "
        "challenger removed, the champion alias untouched, and the version tagged with your "
        "name and reason. No answer before the approval's deadline does the same.",
    ),
    (
        "promote",
        "skip the remaining steps and promote the challenger",
        "Send all traffic to the challenger, make it the champion (model server and registry "
        "alias), skipping the remaining steps.",
    ),
    (
        "abort",
        "all traffic back to the champion, challenger removed",
        "Send all traffic back to the champion and remove the challenger; the champion alias "
        "stays where it is and the rejected version is tagged with the reason.",
    ),
)
