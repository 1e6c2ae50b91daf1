"""Rollout strategies as data: each one is a list of traffic steps the runner walks through.

A strategy never talks to a platform. It says which traffic split each step asks for, how
long the step bakes, and what the flavor must be able to do (`requires`). The runner
(`modeldeploy.progressive.runner`) applies the steps through `TrafficControl`, so a new
strategy is a new model here and nothing else.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from modeldeploy.approval import DEFAULT_APPROVAL_TIMEOUT_SECONDS
from modeldeploy.errors import InvalidConfigError
from modeldeploy.traffic import Capability

#: SageMaker's guardrails allow bake periods up to an hour; so do we
MAX_BAKE_SECONDS = 3600.0
DEFAULT_BAKE_SECONDS = 60.0

BakeSeconds = Annotated[float, Field(ge=0, le=MAX_BAKE_SECONDS)]


class TrafficStep(BaseModel):
    """One step: the split to apply, then how long to wait before judging it."""

    challenger_percent: int = Field(ge=0, le=100)
    mirror_percent: int = Field(default=0, ge=0, le=100)
    bake_seconds: BakeSeconds = DEFAULT_BAKE_SECONDS

    def describe(self) -> str:
        if self.mirror_percent:
            return f"mirror {self.mirror_percent}% to challenger, champion answers"
        return f"challenger {self.challenger_percent}% / champion {100 - self.challenger_percent}%"


class _Strategy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    requires: ClassVar[frozenset[Capability]] = frozenset()
    #: route a client to the same variant every time it sends the same value of this header
    sticky_header: str | None = None
    #: hold for a human's approval before entering these steps (1-based), or "all" of them
    approve_before_steps: list[int] | Literal["all"] = []
    #: how long a held rollout waits for an answer; then it is rejected (rolled back)
    approval_timeout_seconds: float = Field(default=DEFAULT_APPROVAL_TIMEOUT_SECONDS, gt=0)

    def steps(self) -> list[TrafficStep]:
        raise NotImplementedError

    @model_validator(mode="after")
    def _approvable_steps(self) -> _Strategy:
        """Only a step after the first can be held: before it, no step was analysed yet
        (that is the approval between the gate and the rollout)."""
        wanted = self.approve_before_steps
        if not wanted:
            return self
        kind = getattr(self, "kind", type(self).__name__)
        count = len(self.steps())
        if count < 2:
            raise ValueError(
                f"approve_before_steps holds between steps, and a {kind} rollout has "
                f"{count} step(s); leave it out, or ask for approval before the rollout"
            )
        wrong = [] if wanted == "all" else sorted({n for n in wanted if not 2 <= n <= count})
        if wrong:
            raise ValueError(
                f"approve_before_steps {wrong} names no step that can be held: this {kind} "
                f"rollout has {count} steps and can hold before steps 2..{count} (to hold "
                "before step 1, ask for approval before the rollout)"
            )
        return self

    def holds_before(self, index: int) -> bool:
        """Whether entering step `index` (0-based) waits for an approval."""
        wanted = self.approve_before_steps
        return index >= 1 and (wanted == "all" or index + 1 in wanted)

    @property
    def promotes(self) -> bool:
        """Shadow may end with a report only; every other strategy promotes at the end."""
        return True


class InPlace(_Strategy):
    """Today's behaviour: update the serving model server in place (the default)."""

    kind: Literal["in_place"] = "in_place"

    def steps(self) -> list[TrafficStep]:
        return []


class BlueGreen(_Strategy):
    """A second server beside the first; all traffic switches at once after its checks.

    The old server keeps running for `termination_wait_seconds` with no traffic, so a
    failure found in that time switches straight back; then it is retired.
    """

    kind: Literal["blue_green"] = "blue_green"
    requires: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.SIDE_BY_SIDE, Capability.TRAFFIC_SPLIT}
    )
    termination_wait_seconds: BakeSeconds = DEFAULT_BAKE_SECONDS

    def steps(self) -> list[TrafficStep]:
        return [
            TrafficStep(challenger_percent=0, bake_seconds=0),
            TrafficStep(challenger_percent=100, bake_seconds=self.termination_wait_seconds),
        ]


class Canary(_Strategy):
    """Ordered traffic steps (10 -> 50 -> 100), each baked and analysed before the next."""

    kind: Literal["canary"] = "canary"
    requires: ClassVar[frozenset[Capability]] = frozenset({Capability.TRAFFIC_SPLIT})
    percents: list[int] = [10, 50, 100]
    bake_seconds: BakeSeconds = DEFAULT_BAKE_SECONDS

    @field_validator("percents")
    @classmethod
    def _ascending(cls, percents: list[int]) -> list[int]:
        if not percents or any(not 0 < p <= 100 for p in percents):
            raise ValueError(f"canary steps must be percents in 1..100, got {percents}")
        if any(b <= a for a, b in itertools.pairwise(percents)):
            raise ValueError(f"canary steps must rise, got {percents}")
        return percents if percents[-1] == 100 else [*percents, 100]

    def steps(self) -> list[TrafficStep]:
        return [
            TrafficStep(challenger_percent=p, bake_seconds=self.bake_seconds) for p in self.percents
        ]


class Linear(_Strategy):
    """Equal steps of `step_percent` up to 100, each baked and analysed."""

    kind: Literal["linear"] = "linear"
    requires: ClassVar[frozenset[Capability]] = frozenset({Capability.TRAFFIC_SPLIT})
    step_percent: int = Field(default=25, gt=0, le=100)
    bake_seconds: BakeSeconds = DEFAULT_BAKE_SECONDS

    def steps(self) -> list[TrafficStep]:
        percents = [*range(self.step_percent, 100, self.step_percent), 100]
        return [TrafficStep(challenger_percent=p, bake_seconds=self.bake_seconds) for p in percents]


class Shadow(_Strategy):
    """The challenger gets a mirrored copy of live requests; clients get the champion's
    answer. Ends with a report and, if `promote`, a switch to the challenger."""

    kind: Literal["shadow"] = "shadow"
    requires: ClassVar[frozenset[Capability]] = frozenset({Capability.MIRROR})
    mirror_percent: int = Field(default=100, gt=0, le=100)
    bake_seconds: BakeSeconds = DEFAULT_BAKE_SECONDS
    promote: bool = False

    def steps(self) -> list[TrafficStep]:
        return [
            TrafficStep(
                challenger_percent=0,
                mirror_percent=self.mirror_percent,
                bake_seconds=self.bake_seconds,
            )
        ]

    @property
    def promotes(self) -> bool:
        return self.promote


Strategy = Annotated[InPlace | BlueGreen | Canary | Linear | Shadow, Field(discriminator="kind")]
_ADAPTER: TypeAdapter[Strategy] = TypeAdapter(Strategy)
STRATEGY_KINDS = ("in_place", "blue_green", "canary", "linear", "shadow")


def parse_strategy(value: Strategy | dict[str, Any] | str | None) -> Strategy:
    """A strategy from a model, a dict (`{"kind": "canary", "percents": [10, 50]}`) or a
    bare kind (`"canary"`, also `"blue-green"`); None means in-place."""
    if value is None:
        return InPlace()
    if isinstance(value, _Strategy):
        return value
    if isinstance(value, str):
        value = {"kind": value.strip().lower().replace("-", "_")}
    try:
        return _ADAPTER.validate_python(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "strategy"
        raise InvalidConfigError(
            f"invalid rollout strategy {value!r}: {where}: {first['msg']}; strategies are "
            f"{', '.join(STRATEGY_KINDS)}"
        ) from None


def check_supported(
    strategy: Strategy,
    flavor: str,
    capabilities: frozenset[Capability],
    why_not: Mapping[Capability, str] | None = None,
) -> None:
    """Refuse, before anything changes, a strategy the flavor's platform cannot do
    (`why_not`: the flavor's own reason per missing capability)."""
    missing = strategy.requires - capabilities
    if missing:
        reasons = "".join(f" ({why_not[c]})" for c in sorted(missing) if why_not and c in why_not)
        raise InvalidConfigError(
            f"the {flavor} flavor cannot do a {strategy.kind} rollout: it needs "
            f"{', '.join(sorted(missing))}{reasons}, and {flavor} offers "
            f"{', '.join(sorted(capabilities)) or 'only in-place updates'}; pick another "
            "strategy (in_place always works) or another flavor"
        )
