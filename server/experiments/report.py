"""The analysis report as types; ``to_dict()`` gives the documented JSON-safe keys.

Every float here is finite or ``None`` (the builders in :mod:`.analysis` see to it), so
``json.dumps(report.to_dict(), allow_nan=False)`` never fails. The key names and their
order are the ones ``docs/ab_testing.md`` documents and the Python API returns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from neural.mlops.server.experiments.sequential import Running

Interval = tuple[float | None, float | None]
NO_INTERVAL: Interval = (None, None)


class Action(StrEnum):
    """What the analysis recommends doing with the test."""

    SHIP_TREATMENT = "ship_treatment"
    KEEP_CONTROL = "keep_control"
    KEEP_RUNNING = "keep_running"
    STOP = "stop"


@dataclass(frozen=True, slots=True)
class LatencySummary:
    n: int
    mean: float | None
    std: float | None
    p50: float | None
    p95: float | None
    p99: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "mean": self.mean, "std": self.std,
                "p50": self.p50, "p95": self.p95, "p99": self.p99}


@dataclass(frozen=True, slots=True)
class MomentSummary:
    n: int
    mean: float | None
    std: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "mean": self.mean, "std": self.std}


@dataclass(frozen=True, slots=True)
class VariantSummary:
    """One arm's totals."""

    name: str
    weight: float
    n: int
    successes: int
    success_rate: float | None
    errors: int
    error_rate: float | None
    latency: LatencySummary
    custom_metrics: dict[str, MomentSummary]
    status_codes: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "weight": self.weight,
            "n": self.n,
            "successes": self.successes,
            "success_rate": self.success_rate,
            "errors": self.errors,
            "error_rate": self.error_rate,
            "latency": self.latency.to_dict(),
            "custom_metrics": {k: m.to_dict() for k, m in self.custom_metrics.items()},
            "status_codes": dict(self.status_codes),
        }


@dataclass(frozen=True, slots=True)
class MetricTest:
    """Treatment against control on one metric: a Welch t-test (latency, custom metrics)
    or, with ``z_test``, the two-proportion z-test of the error rate."""

    control_mean: float | None
    treatment_mean: float | None
    difference: float | None
    statistic: float | None  # t (Welch) or z
    df: float | None  # Welch only
    p_value: float | None
    confidence_interval: Interval
    lift: float | None  # percent
    n_control: int
    n_treatment: int
    z_test: bool = False
    p_value_adjusted: float | None = None  # Holm or BH, across the comparison's metrics
    statistically_significant: bool = False
    sequential: SequentialTest | None = None
    bayesian_absolute: Posterior | None = None
    bayesian_relative: Posterior | None = None  # percent

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "control_mean": self.control_mean,
            "treatment_mean": self.treatment_mean,
            "difference": self.difference,
        }
        if self.z_test:
            out["z_score"] = self.statistic
        else:
            out["t_statistic"] = self.statistic
            out["df"] = self.df
        out.update(
            p_value=self.p_value,
            confidence_interval=list(self.confidence_interval),
            lift=self.lift,
            n_control=self.n_control,
            n_treatment=self.n_treatment,
            p_value_adjusted=self.p_value_adjusted,
            statistically_significant=self.statistically_significant,
            sequential=self.sequential.to_dict() if self.sequential else None,
            bayesian={
                "absolute": self.bayesian_absolute.to_dict() if self.bayesian_absolute else None,
                "relative": self.bayesian_relative.to_dict() if self.bayesian_relative else None,
            },
        )
        return out


@dataclass(frozen=True, slots=True)
class Improvement:
    absolute: float | None
    relative_improvement: float | None  # percent
    confidence_interval: Interval  # of the absolute difference
    relative_confidence_interval: Interval  # percent

    def to_dict(self) -> dict[str, Any]:
        return {
            "absolute": self.absolute,
            "relative_improvement": self.relative_improvement,
            "confidence_interval": list(self.confidence_interval),
            "relative_confidence_interval": list(self.relative_confidence_interval),
        }


NO_IMPROVEMENT = Improvement(None, None, NO_INTERVAL, NO_INTERVAL)


@dataclass(frozen=True, slots=True)
class SequentialTest:
    """The always-valid view of one effect (the success rate or a metric)."""

    method: str
    tau: float | None  # this look's mixing sd on the effect's scale
    p_value: float | None  # always-valid: the running minimum over every look
    p_value_current: float | None
    statistically_significant: bool
    confidence_sequence: Interval  # intersected over the looks (at the configured level)
    confidence_sequence_current: Interval = NO_INTERVAL
    tuning: float | None = None  # n* of the scaled mixture (None: fixed tau)
    p_value_adjusted: float | None = None
    direction: int = 0  # +1 treatment higher, -1 lower, 0 undecided (see Running.direction)
    running: Running = Running()  # what this look leaves for the next (not in to_dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "tau": self.tau,
            "tuning": self.tuning,
            "p_value": self.p_value,
            "p_value_current": self.p_value_current,
            "p_value_adjusted": self.p_value_adjusted,
            "statistically_significant": self.statistically_significant,
            "direction": self.direction,
            "confidence_sequence": list(self.confidence_sequence),
            "confidence_sequence_current": list(self.confidence_sequence_current),
        }


@dataclass(frozen=True, slots=True)
class Posterior:
    """A Gaussian posterior of an effect (gbstats' effect model); relative ones in percent."""

    prior: str
    mean: float | None
    std: float | None
    credible_interval: Interval
    chance_positive: float | None  # P(effect > 0)
    loss_if_positive_assumed: float | None  # E[max(-effect, 0)]
    loss_if_negative_assumed: float | None  # E[max(effect, 0)]

    def to_dict(self, decision: bool = False) -> dict[str, Any]:
        """``decision``: the success rate's keys (chance to beat control, expected loss of
        shipping / keeping); otherwise a metric's (chance of an increase)."""
        out: dict[str, Any] = {
            "prior": self.prior, "mean": self.mean, "std": self.std,
            "credible_interval": list(self.credible_interval),
        }
        if decision:
            out["chance_to_beat_control"] = self.chance_positive
            out["expected_loss"] = {"ship_treatment": self.loss_if_positive_assumed,
                                    "keep_control": self.loss_if_negative_assumed}
        else:
            out["chance_of_increase"] = self.chance_positive
        return out


@dataclass(frozen=True, slots=True)
class BayesianComparison:
    prior: str
    chance_to_beat_control: float | None
    loss_ship_treatment: float | None
    loss_keep_control: float | None
    absolute: Posterior | None = None  # Gaussian effect model of p_t - p_c
    relative: Posterior | None = None  # ... of (p_t - p_c) / p_c, percent

    def to_dict(self) -> dict[str, Any]:
        return {
            "prior": self.prior,
            "chance_to_beat_control": self.chance_to_beat_control,
            "expected_loss": {
                "ship_treatment": self.loss_ship_treatment,
                "keep_control": self.loss_keep_control,
            },
            "absolute": self.absolute.to_dict(decision=True) if self.absolute else None,
            "relative": self.relative.to_dict(decision=True) if self.relative else None,
        }


@dataclass(frozen=True, slots=True)
class Comparison:
    """One non-control variant against control."""

    p_value: float | None
    z_score: float | None
    statistically_significant: bool  # Holm-adjusted across variants when there are several
    improvement: Improvement
    sequential: SequentialTest | None
    bayesian: BayesianComparison | None
    metrics: dict[str, MetricTest]
    p_value_adjusted: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "p_value": self.p_value,
            "z_score": self.z_score,
            "statistically_significant": self.statistically_significant,
            "improvement": self.improvement.to_dict(),
            "sequential": self.sequential.to_dict() if self.sequential else None,
            "bayesian": self.bayesian.to_dict() if self.bayesian else None,
            "metrics": {k: m.to_dict() for k, m in self.metrics.items()},
            "p_value_adjusted": self.p_value_adjusted,
        }


# What the report's top level shows when there is no variant to compare with control.
NO_COMPARISON = Comparison(None, None, False, NO_IMPROVEMENT, None, None, {})


@dataclass(frozen=True, slots=True)
class SampleRatioCheck:
    chi_square: float | None
    df: int
    p_value: float | None
    detected: bool
    threshold: float
    expected_shares: dict[str, float]
    observed_counts: dict[str, int]
    unit: str = "request"  # what observed_counts counts: "unit" or "request"

    def to_dict(self) -> dict[str, Any]:
        return {
            "chi_square": self.chi_square,
            "df": self.df,
            "p_value": self.p_value,
            "detected": self.detected,
            "threshold": self.threshold,
            "expected_shares": dict(self.expected_shares),
            "observed_counts": dict(self.observed_counts),
            "unit": self.unit,
        }


@dataclass(frozen=True, slots=True)
class PowerPlan:
    """Sample size for the minimum detectable effect, and progress towards it."""

    minimum_detectable_effect: float
    target_power: float
    baseline_rate: float | None
    observed_total: int
    target_rate: float | None = None
    effect_size_h: float | None = None
    required_per_arm: dict[str, int] | None = None
    required_total: int | None = None
    progress: float | None = None
    achieved_power: float | None = None
    requests_per_second: float | None = None
    estimated_seconds_remaining: float | None = None
    design_effect: float | None = None  # by unit: the sizes above are multiplied by it

    def to_dict(self) -> dict[str, Any]:
        return {
            "minimum_detectable_effect": self.minimum_detectable_effect,
            "target_power": self.target_power,
            "baseline_rate": self.baseline_rate,
            "target_rate": self.target_rate,
            "effect_size_h": self.effect_size_h,
            "required_per_arm": (
                dict(self.required_per_arm) if self.required_per_arm is not None else None
            ),
            "required_total": self.required_total,
            "observed_total": self.observed_total,
            "progress": self.progress,
            "achieved_power": self.achieved_power,
            "requests_per_second": self.requests_per_second,
            "estimated_seconds_remaining": self.estimated_seconds_remaining,
            "design_effect": self.design_effect,
        }


@dataclass(frozen=True, slots=True)
class Recommendation:
    action: Action
    winner: str | None
    reason: str
    guardrails: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.action.value, "winner": self.winner, "reason": self.reason,
                "guardrails": list(self.guardrails)}


@dataclass(frozen=True, slots=True)
class AnalysisReport:
    """The whole report. The top level describes ``compared_variant`` against control
    (``treatment`` when there is one, otherwise the best success rate)."""

    confidence_level: float
    alpha: float
    decision_rule: str
    control_variant: str
    compared_variant: str
    variants: dict[str, VariantSummary]
    top: Comparison
    srm: SampleRatioCheck
    power: PowerPlan
    comparisons: dict[str, Comparison]
    recommendation: Recommendation
    warnings: list[str]
    units: Any = None  # byunit.UnitAnalysis: what one observation is (unit or request)
    guardrail_checks: tuple[Any, ...] = ()  # guardrails.GuardrailResult of each guardrail

    @property
    def p_value(self) -> float | None:
        return self.top.p_value

    @property
    def statistically_significant(self) -> bool:
        return self.top.statistically_significant

    def to_dict(self) -> dict[str, Any]:
        top = self.top.to_dict()
        variants = {name: s.to_dict() for name, s in self.variants.items()}
        out: dict[str, Any] = {
            "confidence_level": self.confidence_level,
            "alpha": self.alpha,
            "decision_rule": self.decision_rule,
            "control_variant": self.control_variant,
            "compared_variant": self.compared_variant,
            "variants": variants,
            **{k: top[k] for k in ("p_value", "z_score", "statistically_significant",
                                   "improvement", "metrics")},
            "srm": self.srm.to_dict(),
            "power": self.power.to_dict(),
            "sequential": top["sequential"],
            "bayesian": top["bayesian"],
            "comparisons": {name: c.to_dict() for name, c in self.comparisons.items()},
            "recommendation": self.recommendation.to_dict(),
            "warnings": list(self.warnings),
            "analysis_unit": self.units.to_dict() if self.units is not None else None,
            "guardrail_checks": [g.to_dict() for g in self.guardrail_checks],
        }
        # Each variant is also a top-level key (the seed API reads analysis['control'] and
        # analysis['treatment']), unless its name is one of the report's own keys.
        for name, summary in variants.items():
            out.setdefault(name, summary)
        out.setdefault("control", variants[self.control_variant])
        if self.compared_variant in variants:
            out.setdefault("treatment", variants[self.compared_variant])
        return out
