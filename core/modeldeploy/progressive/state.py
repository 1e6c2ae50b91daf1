"""A rollout's progress as JSON, and where it is kept so any process can pick it up.

The state is the whole truth of a progressive rollout: which step, since when, the
baseline counters of the step's window, every analysis so far. An Airflow triggerer, a
Prefect task after a restart or `modeldeploy rollout status` in another shell load it,
advance or read it, and save it back under a lock.

The local store keeps one JSON file per model in `<MODELDEPLOY_HOME>/rollouts/`, beside
the server records of the mlflow flavor. A flavor whose servers live elsewhere (a cluster)
offers its own store by defining `rollout_store()` on its deployer.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict

from modeldeploy.approval import ApprovalDecision
from modeldeploy.deployer import ModelDeployer
from modeldeploy.errors import ModelServerNotFoundError
from modeldeploy.home import default_home
from modeldeploy.progressive.analysis import AnalysisConfig, StepAnalysis
from modeldeploy.progressive.strategies import Strategy, TrafficStep

Phase = Literal["starting", "baking", "awaiting_approval", "succeeded", "rolled_back", "reported"]
DONE: tuple[Phase, ...] = ("succeeded", "rolled_back", "reported")


class StepRecord(BaseModel):
    index: int
    step: TrafficStep
    started_at: float
    analyses: list[StepAnalysis] = []
    #: the human answer that let the rollout enter this step, if it was held before it
    approval: ApprovalDecision | None = None


class RolloutState(BaseModel):
    """Everything needed to advance, finish or undo a rollout, in any process."""

    model_config = ConfigDict(protected_namespaces=())

    model_name: str
    flavor: str
    server_uuid: str
    strategy: Strategy
    analysis: AnalysisConfig
    candidate_version: str | None = None
    champion_version: str | None = None
    challenger_config: dict[str, Any]
    phase: Phase = "starting"
    step_index: int = -1
    steps: list[TrafficStep]
    #: wall-clock seconds (time.time()): other processes share no monotonic clock
    started_at: float
    updated_at: float
    next_check_at: float
    finished_at: float | None = None
    extensions: int = 0
    #: the challenger must be ready by then (the deploy's timeout)
    ready_by: float
    #: series snapshot at the start of the step's window (direct scrapes only)
    baseline: dict[str, float] = {}
    history: list[StepRecord] = []
    message: str = ""

    @property
    def done(self) -> bool:
        return self.phase in DONE

    @property
    def awaiting_approval(self) -> bool:
        return self.phase == "awaiting_approval"

    @property
    def current_step(self) -> TrafficStep | None:
        return self.steps[self.step_index] if 0 <= self.step_index < len(self.steps) else None

    def summary(self) -> str:
        """One line for logs and the CLI: phase, step and split."""
        step = self.current_step
        where = (
            f"step {self.step_index + 1}/{len(self.steps)} ({step.describe()})"
            if step is not None and not self.done
            else self.phase
        )
        return f"{self.strategy.kind} rollout of {self.model_name}: {where}; {self.message}"


class RolloutStore(Protocol):
    def load(self, model_name: str) -> RolloutState | None: ...

    def save(self, state: RolloutState) -> None: ...

    def locked(self, model_name: str) -> contextlib.AbstractContextManager[None]: ...


class FileRolloutStore:
    """One JSON file per model under a directory, written atomically, locked with flock."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def __repr__(self) -> str:
        return f"FileRolloutStore({str(self.directory)!r})"

    def _path(self, model_name: str, suffix: str = ".json") -> Path:
        return self.directory / (quote(model_name, safe="") + suffix)

    def load(self, model_name: str) -> RolloutState | None:
        try:
            text = self._path(model_name).read_text()
        except FileNotFoundError:
            return None
        return RolloutState.model_validate_json(text)

    def save(self, state: RolloutState) -> None:
        """Write-then-rename: a reader in another process never sees half a state."""
        self.directory.mkdir(parents=True, exist_ok=True)
        state.updated_at = time.time()
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".state-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(state.model_dump(mode="json"), handle, indent=1)
            os.replace(tmp, self._path(state.model_name))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @contextlib.contextmanager
    def locked(self, model_name: str) -> Iterator[None]:
        self.directory.mkdir(parents=True, exist_ok=True)
        with self._path(model_name, ".lock").open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def store_for(deployer: ModelDeployer) -> RolloutStore:
    """The deployer's own store if its flavor has one, else files beside the local home."""
    own = getattr(deployer, "rollout_store", None)
    if callable(own):
        store: RolloutStore = own()
        return store
    home = getattr(deployer, "home", None)
    return FileRolloutStore(Path(home if home is not None else default_home()) / "rollouts")


def load_state(store: RolloutStore, model_name: str) -> RolloutState:
    state = store.load(model_name)
    if state is None:
        raise ModelServerNotFoundError(
            f"no progressive rollout of {model_name} is recorded in {store!r}; start one with "
            "a deploy that names a strategy (e.g. strategy='canary')"
        )
    return state
