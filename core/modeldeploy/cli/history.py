"""`modeldeploy history MODEL [--json]`: a model's deployments, read from the registry.

Each rollout, rollback and gate rejection leaves a record on the version it concerns
(`modeldeploy.records`), so the history needs neither the model servers nor the
orchestrator that ran them: any shell that reaches the MLflow registry can print it.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from modeldeploy.cli.main import EXIT_OK, Globals, count_of
from modeldeploy.cli.output import dump_json, render_table

if TYPE_CHECKING:
    from modeldeploy.records import DeploymentRecord

#: reasons are cut to this width in the table (the JSON keeps them whole)
REASON_WIDTH = 100
COLUMNS = ("TIME", "VERSION", "ACTION", "SERVING", "REASON", "PIPELINE RUN")


def history(g: Globals, args: argparse.Namespace) -> int:
    from modeldeploy.cli.commands import deployer_and_registry, import_mlflow_quietly

    import_mlflow_quietly(g)
    _, registry = deployer_and_registry(g)
    records = registry.deployment_history(args.model_name)
    if args.limit is not None:
        records = records[-args.limit :] if args.limit else []
    if args.json:
        dump_json([r.model_dump(mode="json") for r in records])
    elif not records:
        print(f"no deployment of {args.model_name} is recorded in the registry")
    else:
        print(render_table(COLUMNS, [_row(r) for r in records]))
    return EXIT_OK


def _row(record: DeploymentRecord) -> list[Any]:
    reason = " ".join(record.reason.split())
    if len(reason) > REASON_WIDTH:
        reason = reason[: REASON_WIDTH - 3] + "..."
    run = "/".join(p for p in (record.pipeline_name, record.run_id) if p)
    return [
        record.at.strftime("%Y-%m-%d %H:%M:%S"),
        record.version,
        record.action,
        record.serving_version,
        reason,
        run,
    ]


def add_parser(commands: Any, common: argparse.ArgumentParser) -> None:
    """The `history` command, added to the top-level parser by `main`."""
    p = commands.add_parser(
        "history",
        parents=[common],
        help="show a model's deployments, rollbacks and rejections",
        description="Print the rollout history of MODEL_NAME from the MLflow registry, "
        "oldest first: time (UTC), version, action (deployed, rolled_back, rejected, "
        "reported), the version serving afterwards, the reason, and the pipeline run.",
    )
    p.add_argument("model_name", metavar="MODEL_NAME")
    p.add_argument("--limit", metavar="N", type=count_of("entries"), help="only the last N entries")
    p.add_argument("--json", action="store_true", help="print a JSON array of the records")
    p.set_defaults(handler="history")
