"""Make what serves agree with the registry's `champion` alias before anything else moves.

A rollout is register -> write -> ready -> promote. A process killed between the write and
the promotion leaves a model server serving a version the alias does not name. The policy
(docs/concepts.md, "Crash recovery"): **a rollout that did not finish did not happen**. The
server is put back to the champion (deleted when there is no champion yet) and the
interrupted candidate is tagged rolled back. Promoting it instead would skip whatever
should have followed the rollout (a verification, a transaction's checks).

A rollout still running elsewhere is recognised by the `modeldeploy.rollout` tag of its
version (owner process and deadline) and is left alone: reconciling raises `ConflictError`.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from pathlib import Path

from pydantic import BaseModel

from modeldeploy.deployer import ModelDeployer
from modeldeploy.errors import ConflictError, ModelDeployError
from modeldeploy.registry import GATE_TAG, ROLLOUT_TAG, ModelRegistry, ModelVersionInfo
from modeldeploy.server import ModelServer, TransitionCallback
from modeldeploy.waiting import DEFAULT_TIMEOUT, Deadline, check_timeout

logger = logging.getLogger("modeldeploy")

#: time a rollout's owner is given beyond its own timeout before it counts as abandoned
ROLLOUT_GRACE_SECONDS = 60.0


class ReconcileReport(BaseModel):
    """What `reconcile_serving` found and did; `actions` is empty when all agreed."""

    model_name: str
    champion_version: str | None
    actions: list[str] = []


def rollout_marker(timeout: float, owned_by_this_process: bool = True) -> str:
    """The `modeldeploy.rollout` tag of a candidate: who rolls it out, and until when.

    Without an owner (a rollout finished by another process, e.g. an Airflow trigger)
    only the deadline tells whether it is still in flight.
    """
    marker: dict[str, object] = {"deadline": time.time() + timeout + ROLLOUT_GRACE_SECONDS}
    if owned_by_this_process:
        pid = os.getpid()
        marker.update(host=socket.gethostname(), pid=pid, pid_start=_process_start(pid))
    return json.dumps(marker)


def rollout_in_flight(version: ModelVersionInfo) -> str | None:
    """Who is still rolling `version` out (for messages), or None if nobody is."""
    raw = version.tags.get(ROLLOUT_TAG)
    if not raw:
        return None
    try:
        marker = json.loads(raw)
        deadline = float(marker["deadline"])
    except (ValueError, KeyError, TypeError):
        return None
    if time.time() >= deadline:
        return None
    until = time.strftime("%H:%M:%S UTC", time.gmtime(deadline))
    pid, host = marker.get("pid"), marker.get("host")
    if pid is None or host != socket.gethostname():
        return f"until {until}" + (f" (process {pid} on {host})" if pid else "")
    if _process_start(int(pid)) is None or _process_start(int(pid)) != marker.get("pid_start"):
        return None  # its owner died (or the pid now belongs to another program)
    return f"by process {pid} until {until}"


def reconcile_serving(
    deployer: ModelDeployer,
    registry: ModelRegistry,
    model_name: str,
    pipeline_name: str | None = None,
    step_name: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    on_transition: TransitionCallback | None = None,
) -> ReconcileReport:
    """Put every model server of `model_name` back on the `champion` version.

    Called first by every rollout and rollback (and by progressive strategies before they
    shift traffic). Servers deployed without the registry (no `model_version`) or serving
    a version the registry does not know are left alone. Raises `ConflictError` when
    another rollout of the model is still in flight.
    """
    deadline = Deadline(check_timeout(timeout))
    registry.sync_history(model_name)
    champion = registry.get_champion(model_name)
    report = ReconcileReport(
        model_name=model_name, champion_version=champion.version if champion else None
    )
    servers = deployer.find_model_server(
        model_name=model_name, pipeline_name=pipeline_name, pipeline_step_name=step_name
    )
    for server in servers:
        version = server.config.model_version
        if version is None or (champion is not None and version == champion.version):
            continue
        try:
            stray = registry.get_version(model_name, version)
        except ModelDeployError:
            continue  # not a version of ours to judge
        owner = rollout_in_flight(stray)
        if owner is not None:
            raise ConflictError(
                f"a rollout of {model_name} version {version} is still in progress {owner}; "
                "wait for it to finish (or fail) before starting another"
            )
        report.actions.append(
            _restore(deployer, registry, server, champion, deadline, on_transition)
        )
    report.actions += _retire_unwritten(registry, model_name, champion, servers, deployer)
    for action in report.actions:
        logger.warning("%s", action)
    return report


def _retire_unwritten(
    registry: ModelRegistry,
    model_name: str,
    champion: ModelVersionInfo | None,
    servers: list[ModelServer],
    deployer: ModelDeployer,
) -> list[str]:
    """Candidates that passed the gate but whose rollout died before anything served them.

    Left as they are, they would read `gate: passed` forever, as if deployed. Only versions
    newer than the champion count (older ones were champions, or judged long ago), none that
    a server names, none that were ever champion, and nothing while a progressive rollout of
    the model is open (its challenger is in no server's config).
    """
    from modeldeploy.progressive.state import store_for

    state = store_for(deployer).load(model_name)
    if state is not None and not state.done:
        return []
    served = {str(s.config.model_version) for s in servers}
    newest_champion = int(champion.version) if champion else 0
    history = set(registry.champion_history(model_name))
    actions = []
    for version in registry.versions_tagged(model_name, GATE_TAG, "passed"):
        number = version.version
        if int(number) <= newest_champion or number in served or number in history:
            continue
        if not _is_marker(version.tags.get(ROLLOUT_TAG)) or rollout_in_flight(version):
            continue  # no rollout began (or a strategy recorded its outcome), or one runs
        done = (
            f"version {number} of {model_name} passed the gate, but its rollout was "
            "interrupted before any model server was changed: it never served"
        )
        registry.mark_rolled_back(model_name, number, done)
        actions.append(done)
    return actions


def _restore(
    deployer: ModelDeployer,
    registry: ModelRegistry,
    server: ModelServer,
    champion: ModelVersionInfo | None,
    deadline: Deadline,
    on_transition: TransitionCallback | None,
) -> str:
    name, version = server.config.model_name, str(server.config.model_version)
    if champion is None:
        deployer.delete_model_server(server.uuid, timeout=deadline.remaining(), force=True)
        done = (
            f"deleted model server {server.uuid}: it served version {version} of {name}, "
            "whose rollout was interrupted before it became champion, and there is no "
            "champion to put back"
        )
    else:
        base = server.config.model_dump(exclude_unset=True)
        base.update(model_uri=champion.model_uri, model_version=champion.version)
        deployer.deploy(
            base, replace=True, timeout=deadline.remaining(), on_transition=on_transition
        )
        done = (
            f"put model server {server.uuid} back to the champion, version "
            f"{champion.version} of {name}: it served version {version}, whose rollout was "
            "interrupted before the champion alias moved"
        )
    from modeldeploy.records import build_record

    champion_version = champion.version if champion else None
    record = build_record(
        "rolled_back",
        name,
        version=version,
        serving_version=champion_version,
        previous_version=champion_version,
        reason=done,
        deployer=deployer,
    )
    registry.add_record(record)  # also tags the version rolled back, as before
    return done


def _is_marker(raw: str | None) -> bool:
    """Whether a `modeldeploy.rollout` tag is a `rollout_marker` (not an outcome)."""
    try:
        return isinstance(json.loads(raw or ""), dict)
    except ValueError:
        return False


def _process_start(pid: int) -> int | None:
    """The start time of `pid` in clock ticks since boot (None if no such process)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    except OSError:  # no /proc: fall back on the pid alone
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return 0
    return int(stat.rsplit(")", 1)[1].split()[19])
