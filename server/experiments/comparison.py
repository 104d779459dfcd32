"""One non-control variant against control: frequentist, sequential and Bayesian views.

Pure functions of two :class:`~neural.mlops.v1.traffic.VariantStats` totals; the formulas
live (with their references) in :mod:`.statistics`, :mod:`.sequential` and :mod:`.bayes`.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from neural.mlops.server.experiments import bayes, sequential, statistics
from neural.mlops.server.experiments.finite import Warnings, num, pct
from neural.mlops.server.experiments.report import (
    BayesianComparison,
    Comparison,
    Improvement,
    MetricTest,
    SequentialTest,
)
from neural.mlops.v1.traffic import VariantStats

SEQUENTIAL_METHOD = "mSPRT (normal mixture; Johari et al., KDD 2017)"
BETA_PRIOR = "Beta(1, 1)"
# Custom metrics with these names would shadow the built-in guardrail metrics.
_RESERVED = ("latency", "error_rate")


def compare(
    c: VariantStats,
    t: VariantStats,
    *,
    conf: float,
    alpha: float,
    tau: float,
    warnings: Warnings,
    label: str,
    floor: float | None = None,
) -> Comparison:
    """Treatment ``t`` against control ``c``. ``floor`` is the smallest mSPRT p-value of
    earlier looks; ``p_value_adjusted`` is left for the caller (Holm across variants)."""
    res = statistics.two_proportion_ztest(c.successes, c.count, t.successes, t.count, conf)
    lo, hi = statistics.ratio_ci_log(c.successes, c.count, t.successes, t.count, conf)
    p = num(res.p_value, warnings, f"p-value of the success rate ({label})")
    diff = num(res.difference)
    rel = num(res.relative, warnings, f"relative improvement ({label}: control rate is 0)")
    improvement = Improvement(
        absolute=diff,
        relative_improvement=pct(rel),
        confidence_interval=(num(res.ci_low), num(res.ci_high)),
        # Katz log interval of the rate ratio, minus 1, in percent.
        relative_confidence_interval=(pct(num(lo - 1.0)), pct(num(hi - 1.0))),
    )
    return Comparison(
        p_value=p,
        z_score=num(res.z),
        statistically_significant=bool(p is not None and p < 1.0 - conf),
        improvement=improvement,
        sequential=_sequential(c, t, alpha, tau, warnings, floor),
        bayesian=_bayesian(c, t),
        metrics=_metrics(c, t, conf, warnings, label),
    )


def _welch(
    n_c: int, s_c: float, q_c: float, n_t: int, s_t: float, q_t: float, conf: float
) -> MetricTest:
    res = statistics.welch_ttest(n_c, s_c, q_c, n_t, s_t, q_t, conf)
    return MetricTest(
        control_mean=num(res.mean_control),
        treatment_mean=num(res.mean_treatment),
        difference=num(res.difference),
        statistic=num(res.t),
        df=num(res.df),
        p_value=num(res.p_value),
        confidence_interval=(num(res.ci_low), num(res.ci_high)),
        lift=pct(num(res.relative)),
        n_control=n_c,
        n_treatment=n_t,
    )


def _error_rate(c: VariantStats, t: VariantStats, conf: float) -> MetricTest:
    err = statistics.two_proportion_ztest(c.errors, c.count, t.errors, t.count, conf)
    return MetricTest(
        control_mean=num(err.rate_control),
        treatment_mean=num(err.rate_treatment),
        difference=num(err.difference),
        statistic=num(err.z),
        df=None,
        p_value=num(err.p_value),
        confidence_interval=(num(err.ci_low), num(err.ci_high)),
        lift=pct(num(err.relative)),
        n_control=c.count,
        n_treatment=t.count,
        z_test=True,
    )


def _metrics(
    c: VariantStats, t: VariantStats, conf: float, warnings: Warnings, label: str
) -> dict[str, MetricTest]:
    """Latency, the error rate (when errors were recorded) and every custom metric, with
    Holm-adjusted p-values across them."""
    raw: dict[str, MetricTest] = {}
    if c.latency.count or t.latency.count:
        raw["latency"] = _welch(
            c.latency.count, c.latency.sum, c.latency.sum_squares,
            t.latency.count, t.latency.sum, t.latency.sum_squares, conf,
        )
    if c.errors or t.errors:
        raw["error_rate"] = _error_rate(c, t, conf)
    for name in sorted(set(c.custom) | set(t.custom)):
        mc = c.custom.get(name)
        mt = t.custom.get(name)
        key = f"custom:{name}" if name in _RESERVED else name
        raw[key] = _welch(
            mc.n if mc else 0, mc.sum if mc else 0.0, mc.sum_squares if mc else 0.0,
            mt.n if mt else 0, mt.sum if mt else 0.0, mt.sum_squares if mt else 0.0, conf,
        )
    adjusted = statistics.holm([np.nan if m.p_value is None else m.p_value for m in raw.values()])
    out: dict[str, MetricTest] = {}
    for (name, m), adj in zip(raw.items(), adjusted, strict=True):
        p_adj = num(adj)
        out[name] = replace(
            m,
            p_value_adjusted=p_adj,
            statistically_significant=bool(p_adj is not None and adj < 1.0 - conf),
        )
        if m.p_value is None:
            warnings.add(
                f"metric {name!r} ({label}): needs >= 2 values with nonzero variance per arm"
            )
    return out


def _sequential(
    c: VariantStats,
    t: VariantStats,
    alpha: float,
    tau: float,
    warnings: Warnings,
    floor: float | None,
) -> SequentialTest:
    """``p_value`` is the always-valid p-value: the running minimum of the mixture p-value
    over every look the store has recorded (``floor``) and this one."""
    res = sequential.msprt_proportions(c.successes, c.count, t.successes, t.count, alpha, tau)
    current = num(res.p_value)
    if current is None:
        warnings.add(
            "sequential test undefined (an arm is empty or the success rate is 0% or 100%)"
        )
    candidates = [x for x in (current, floor) if x is not None]
    p = min(candidates) if candidates else None
    return SequentialTest(
        method=SEQUENTIAL_METHOD,
        tau=tau,
        p_value=p,
        p_value_current=current,
        statistically_significant=bool(p is not None and p <= alpha),
        confidence_sequence=(num(res.ci_low), num(res.ci_high)),
    )


def _bayesian(c: VariantStats, t: VariantStats) -> BayesianComparison:
    if c.count == 0 or t.count == 0:
        return BayesianComparison(BETA_PRIOR, None, None, None)
    res = bayes.beta_compare(
        min(c.successes, c.count), c.count, min(t.successes, t.count), t.count
    )
    return BayesianComparison(
        prior=BETA_PRIOR,
        chance_to_beat_control=num(res.chance_to_beat_control),
        loss_ship_treatment=num(res.expected_loss_ship_treatment),
        loss_keep_control=num(res.expected_loss_keep_control),
    )
