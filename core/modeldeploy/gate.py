"""Deployment gate: decide from metrics whether a candidate model may replace the champion."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

from modeldeploy.errors import InvalidConfigError

Direction = Literal["maximize", "minimize"]

#: Metric names (normalized: lower case, `_` for separators, no `train_`/`val_`/`test_`
#: prefix, no `_score` suffix) whose better direction everybody agrees on.
LOWER_IS_BETTER = frozenset(
    {
        "rmse", "mse", "mae", "mape", "smape", "rmsle", "msle", "log_loss", "logloss",
        "loss", "error", "error_rate", "cross_entropy", "perplexity", "brier",
        "mean_squared_error", "root_mean_squared_error", "mean_absolute_error",
        "median_absolute_error", "mean_absolute_percentage_error", "max_error", "wer", "cer",
    }
)  # fmt: skip
HIGHER_IS_BETTER = frozenset(
    {
        "accuracy", "balanced_accuracy", "top_k_accuracy", "f1", "f1_macro", "f1_micro",
        "f1_weighted", "auc", "roc_auc", "pr_auc", "average_precision", "r2", "precision",
        "recall", "explained_variance", "kappa", "cohen_kappa", "mcc", "matthews_corrcoef",
        "ndcg", "map", "bleu", "rouge",
    }
)  # fmt: skip
_SPLIT_PREFIXES = ("train_", "training_", "val_", "valid_", "validation_", "test_", "eval_")
_BETTER = {"maximize": "higher is better", "minimize": "lower is better"}

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


def infer_direction(metric: str) -> Direction | None:
    """Which way `metric` is better, for well-known names only (`val_rmse`, `f1_score`...).

    Returns None for any other name: guessing wrong would let a worse model replace a
    better one, so the caller must then say it.
    """
    name = re.sub(r"[^a-z0-9]+", "_", metric.lower()).strip("_")
    for prefix in _SPLIT_PREFIXES:
        if name.startswith(prefix) and len(name) > len(prefix):
            name = name[len(prefix) :]
            break
    name = name.removesuffix("_score") or name
    if name in LOWER_IS_BETTER or name.endswith(("_loss", "_error")):
        return "minimize"
    if name in HIGHER_IS_BETTER or name.endswith(("_accuracy", "_auc")):
        return "maximize"
    return None


def resolve_direction(metric: str, direction: str | None) -> Direction:
    """`direction` when given (checked), else inferred from a well-known metric name.

    Raises `InvalidConfigError` saying what to write when neither settles it.
    """
    if direction is not None and direction != "":
        if direction not in get_args(Direction):
            raise InvalidConfigError(
                f"direction {direction!r} for {metric} is not understood; write "
                "direction='minimize' (lower is better) or direction='maximize' (higher is "
                "better)"
            )
        return direction  # type: ignore[return-value]
    inferred = infer_direction(metric)
    if inferred is None:
        raise InvalidConfigError(
            f"the gate compares {metric} with the champion but cannot tell whether a higher "
            f"or a lower {metric} is better; write direction='minimize' if lower is better "
            "(a loss or an error) or direction='maximize' if higher is better (--direction "
            "on the command line)"
        )
    return inferred


class ChampionChallenger(BaseModel):
    """The candidate must beat the model now serving on `metric` by `min_improvement`.

    With the default of 0 a tie passes: a retrained model that is no worse may replace it.
    `direction` may be left out only for well-known metrics (`infer_direction`).
    """

    model_config = ConfigDict(extra="forbid")

    metric: str
    direction: Direction
    min_improvement: float = Field(default=0.0, ge=0.0)

    @model_validator(mode="before")
    @classmethod
    def _settle_direction(cls, data: object) -> object:
        if isinstance(data, dict) and "metric" in data:
            data = {**data, "direction": resolve_direction(data["metric"], data.get("direction"))}
        return data


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
        direction: str | None = None,
    ) -> Gate:
        """Thresholds from `rules`; with `champion_metric`, a champion comparison whose
        `direction` is explicit or inferred from a well-known metric name."""
        if isinstance(rules, str):
            rules = [r for r in rules.split(",") if r.strip()]
        challenger = (
            ChampionChallenger(
                metric=champion_metric,
                direction=resolve_direction(champion_metric, direction),
                min_improvement=min_improvement,
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
        better = _BETTER[rule.direction]
        if champion is None:
            return CheckResult(
                name=name, passed=True, detail=f"no champion {rule.metric} to beat ({better})"
            )
        gain = candidate - champion if rule.direction == "maximize" else champion - candidate
        verdict = f"{rule.metric} {candidate:.4g} vs champion {champion:.4g}, {better}"
        if gain < rule.min_improvement:
            need = (
                f"needs an improvement of at least {rule.min_improvement:.4g}"
                if rule.min_improvement
                else "must be no worse"
            )
            worse = f"worse by {-gain:.4g}; " if gain < 0 else ""
            return CheckResult(name=name, passed=False, detail=f"{verdict} ({worse}{need})")
        margin = f"better by {gain:.4g}" if gain > 0 else "equal"
        return CheckResult(name=name, passed=True, detail=f"{verdict} ({margin})")
