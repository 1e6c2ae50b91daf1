"""Strategies as data: their steps, parsing from what a skin passes, capability refusal."""

from __future__ import annotations

import pytest
from modeldeploy.errors import InvalidConfigError
from modeldeploy.progressive.strategies import (
    BlueGreen,
    Canary,
    InPlace,
    Linear,
    Shadow,
    check_supported,
    parse_strategy,
)
from modeldeploy.traffic import Capability


def test_canary_steps_rise_and_end_at_100() -> None:
    canary = Canary(percents=[10, 50], bake_seconds=3)
    assert [s.challenger_percent for s in canary.steps()] == [10, 50, 100]
    assert {s.bake_seconds for s in canary.steps()} == {3}
    with pytest.raises(ValueError, match="must rise"):
        Canary(percents=[50, 10])


def test_linear_equal_steps() -> None:
    assert [s.challenger_percent for s in Linear(step_percent=30).steps()] == [30, 60, 90, 100]


def test_blue_green_checks_at_zero_then_switches_at_once() -> None:
    steps = BlueGreen(termination_wait_seconds=5).steps()
    assert [(s.challenger_percent, s.bake_seconds) for s in steps] == [(0, 0), (100, 5)]


def test_shadow_mirrors_and_promotes_only_when_asked() -> None:
    shadow = Shadow(mirror_percent=50)
    assert [(s.challenger_percent, s.mirror_percent) for s in shadow.steps()] == [(0, 50)]
    assert not shadow.promotes
    assert Shadow(promote=True).promotes


def test_parse_from_kind_dict_and_json_round_trip() -> None:
    assert isinstance(parse_strategy(None), InPlace)
    assert isinstance(parse_strategy("blue-green"), BlueGreen)
    canary = parse_strategy({"kind": "canary", "percents": [20, 100], "bake_seconds": 1})
    assert parse_strategy(canary.model_dump(mode="json")) == canary
    with pytest.raises(InvalidConfigError, match="strategies are in_place, blue_green"):
        parse_strategy("rainbow")
    with pytest.raises(InvalidConfigError, match="bake_seconds"):
        parse_strategy({"kind": "linear", "bake_seconds": 7200})


def test_unsupported_strategy_names_strategy_and_flavor() -> None:
    with pytest.raises(InvalidConfigError) as info:
        check_supported(Shadow(), "kserve", frozenset({Capability.TRAFFIC_SPLIT}))
    assert "kserve" in str(info.value) and "shadow" in str(info.value)
    assert "mirror" in str(info.value)
    with pytest.raises(InvalidConfigError, match="only in-place updates"):
        check_supported(Canary(), "seldon", frozenset())
    check_supported(InPlace(), "seldon", frozenset())


def test_approval_holds_only_between_steps() -> None:
    canary = parse_strategy({"kind": "canary", "percents": [10, 50], "approve_before_steps": [3]})
    assert [canary.holds_before(i) for i in range(3)] == [False, False, True]
    assert all(Linear(step_percent=25, approve_before_steps="all").holds_before(i) for i in (1, 3))
    assert not Canary(approve_before_steps="all").holds_before(0)
    with pytest.raises(InvalidConfigError, match=r"\[1, 4\] names no step.*steps 2\.\.3"):
        parse_strategy({"kind": "canary", "percents": [10, 50], "approve_before_steps": [1, 4]})
    with pytest.raises(InvalidConfigError, match="a shadow rollout has 1 step"):
        parse_strategy({"kind": "shadow", "approve_before_steps": "all"})
    with pytest.raises(InvalidConfigError, match="approval_timeout_seconds"):
        parse_strategy({"kind": "canary", "approval_timeout_seconds": 0})
