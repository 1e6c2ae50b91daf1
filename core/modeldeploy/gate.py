"""Deployment gate: decide from metrics whether a candidate model may replace the champion."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from modeldeploy.errors import InvalidConfigError

_RULE = re.compile(r"^\s*([A-Za-z_][\w.\-/]*)\s*(>=|<=)\s*([-+]?[\d.]+(?:[eE][-+]?\d+)?)\s*$")


class MetricThreshold(BaseModel):
    """A bound on one metric: `at_least` (higher is better) and/or `at_most`."""

    model_config = ConfigDict(extra="forbid")

    metric: str
    at_least: float | None = None
    at_most: float | None = None

    @model_validator(mode="after")
    def _has_a_bound(self) -> MetricThreshold:
        if self.at_least is None and self.at_most is None:
            raise ValueError(f"threshold on {self.metric!r} needs at_least or at_most")
        return self

    @classmethod
    def parse(cls, rule: str) -> MetricThreshold:
        """`"accuracy>=0.9"` or `"log_loss<=0.3"`."""
        match = _RULE.match(rule)
        if not match:
            raise InvalidConfigError(
                f"gate rule {rule!r} is not understood; write it as METRIC>=NUMBER or "
                "METRIC<=NUMBER, e.g. accuracy>=0.9"
            )
        metric, op, number = match.groups()
        bound = float(number)
        return (
            cls(metric=metric, at_least=bound) if op == ">=" else cls(metric=metric, at_most=bound)
        )


class ChampionChallenger(BaseModel):
    """The candidate must beat the model now serving on `metric` by `min_improvement`.

    With the default of 0 a tie passes: a retrained model that is no worse may replace it.
    """

    model_config = ConfigDict(extra="forbid")

    metric: str
    direction: Literal["maximize", "minimize"] = "maximize"
    min_improvement: float = Field(default=0.0, ge=0.0)


class CheckResult(BaseModel):
    name: str
    passed: bool
    detail: str


class GateDecision(BaseModel):
    passed: bool
    reason: str
    checks: list[CheckResult]


class Gate(BaseModel):
    """Thresholds on any metric plus an optional champion/challenger comparison."""

    model_config = ConfigDict(extra="forbid")

    thresholds: list[MetricThreshold] = []
    champion_challenger: ChampionChallenger | None = None

    @classmethod
    def from_rules(
        cls,
        rules: list[str] | str,
        champion_metric: str | None = None,
        min_improvement: float = 0.0,
        direction: Literal["maximize", "minimize"] = "maximize",
    ) -> Gate:
        if isinstance(rules, str):
            rules = [r for r in rules.split(",") if r.strip()]
        challenger = (
            ChampionChallenger(
                metric=champion_metric, direction=direction, min_improvement=min_improvement
            )
            if champion_metric
            else None
        )
        return cls(
            thresholds=[MetricThreshold.parse(r) for r in rules], champion_challenger=challenger
        )

    def evaluate(
        self,
        metrics: Mapping[str, float],
        champion_metrics: Mapping[str, float] | None = None,
    ) -> GateDecision:
        checks = [self._check_threshold(t, metrics) for t in self.thresholds]
        if self.champion_challenger is not None:
            checks.append(self._check_champion(self.champion_challenger, metrics, champion_metrics))
        failed = [c for c in checks if not c.passed]
        if not checks:
            reason = "passed: the gate has no rules"
        elif failed:
            reason = "rejected: " + "; ".join(c.detail for c in failed)
        else:
            reason = "passed: " + "; ".join(c.detail for c in checks)
        return GateDecision(passed=not failed, reason=reason, checks=checks)

    @staticmethod
    def _value(metrics: Mapping[str, float], name: str) -> float | None:
        value = metrics.get(name)
        if value is None:
            return None
        value = float(value)
        return None if math.isnan(value) else value

    def _check_threshold(self, rule: MetricThreshold, metrics: Mapping[str, float]) -> CheckResult:
        value = self._value(metrics, rule.metric)
        if value is None:
            known = ", ".join(sorted(metrics)) or "none"
            return CheckResult(
                name=rule.metric,
                passed=False,
                detail=f"metric {rule.metric} is missing (metrics given: {known})",
            )
        problems = []
        if rule.at_least is not None and value < rule.at_least:
            problems.append(f"{rule.metric} {value:.4g} < {rule.at_least:.4g}")
        if rule.at_most is not None and value > rule.at_most:
            problems.append(f"{rule.metric} {value:.4g} > {rule.at_most:.4g}")
        if problems:
            return CheckResult(name=rule.metric, passed=False, detail=", ".join(problems))
        bounds = []
        if rule.at_least is not None:
            bounds.append(f">= {rule.at_least:.4g}")
        if rule.at_most is not None:
            bounds.append(f"<= {rule.at_most:.4g}")
        return CheckResult(
            name=rule.metric,
            passed=True,
            detail=f"{rule.metric} {value:.4g} {' and '.join(bounds)}",
        )

    def _check_champion(
        self,
        rule: ChampionChallenger,
        metrics: Mapping[str, float],
        champion_metrics: Mapping[str, float] | None,
    ) -> CheckResult:
        name = f"champion:{rule.metric}"
        candidate = self._value(metrics, rule.metric)
        if candidate is None:
            return CheckResult(
                name=name, passed=False, detail=f"candidate has no {rule.metric} to compare"
            )
        champion = self._value(champion_metrics or {}, rule.metric)
        if champion is None:
            return CheckResult(name=name, passed=True, detail=f"no champion {rule.metric} to beat")
        gain = candidate - champion if rule.direction == "maximize" else champion - candidate
        verdict = f"{rule.metric} {candidate:.4g} vs champion {champion:.4g}"
        if gain < rule.min_improvement:
            need = (
                f"needs an improvement of at least {rule.min_improvement:.4g}"
                if rule.min_improvement
                else "must be no worse"
            )
            return CheckResult(name=name, passed=False, detail=f"{verdict} ({need})")
        return CheckResult(name=name, passed=True, detail=f"{verdict} ({gain:+.4g})")
