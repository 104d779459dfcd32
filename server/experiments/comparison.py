"""One non-control variant against control: frequentist, sequential and Bayesian views.

Pure functions of two :class:`~neural.mlops.v1.traffic.VariantStats` totals and the
running sequential state earlier looks left; the formulas live (with their references)
in :mod:`.statistics`, :mod:`.sequential` and :mod:`.bayes`. Every effect (the success
rate, the error rate, latency, each custom metric) gets the same three views.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from neural.mlops.server.experiments import bayes, sequential, statistics
from neural.mlops.server.experiments.config import AnalysisConfig
from neural.mlops.server.experiments.finite import Warnings, num, pct
from neural.mlops.server.experiments.report import (
    BayesianComparison,
    Comparison,
    Improvement,
    MetricTest,
    Posterior,
    SequentialTest,
)
from neural.mlops.server.experiments.sequential import Running, VariantState
from neural.mlops.v1.traffic import Moments, VariantStats

SEQUENTIAL_METHOD = "mSPRT (normal mixture; Johari et al., KDD 2017)"
BETA_PRIOR = "Beta(1, 1)"
# Custom metrics with these names would shadow the built-in guardrail metrics.
_RESERVED = ("latency", "error_rate")


@dataclass(frozen=True, slots=True)
class Look:
    """How this look is taken: the test's settings, the level asked for, the state of
    earlier looks. ``same_level``: the level is the configured one, so the stored
    intersection of confidence sequences applies (and is extended)."""

    cfg: AnalysisConfig
    conf: float
    alpha: float
    state: VariantState
    warnings: Warnings
    label: str

    @property
    def same_level(self) -> bool:
        return bool(abs(self.conf - self.cfg.confidence_level) < 1e-12)


def compare(c: VariantStats, t: VariantStats, look: Look) -> Comparison:
    """Treatment ``t`` against control ``c``; ``p_value_adjusted`` (across variants) is left
    for the caller."""
    conf, warnings, label = look.conf, look.warnings, look.label
    res = statistics.two_proportion_ztest(c.successes, c.count, t.successes, t.count, conf)
    p = num(res.p_value, warnings, f"p-value of the success rate ({label})")
    diff = num(res.difference)
    rel = num(res.relative, warnings, f"relative improvement ({label}: control rate is 0)")
    improvement = Improvement(
        absolute=diff,
        relative_improvement=pct(rel),
        confidence_interval=(num(res.ci_low), num(res.ci_high)),
        relative_confidence_interval=_relative_interval(c, t, conf, warnings, label),
    )
    seq = sequential.msprt_proportions(
        c.successes, c.count, t.successes, t.count, look.alpha, look.cfg.mixture()
    )
    if num(seq.p_value) is None:
        warnings.add(
            f"sequential test of the success rate ({label}) undefined until each arm has "
            f"{sequential.MIN_EVENTS} successes and {sequential.MIN_EVENTS} failures"
        )
    return Comparison(
        p_value=p,
        z_score=num(res.z),
        statistically_significant=bool(p is not None and p < 1.0 - conf),
        improvement=improvement,
        sequential=sequential_view(seq, diff, look.state.primary, look, "success rate"),
        bayesian=_bayesian(c, t, look),
        metrics=_metrics(c, t, look),
    )


def _relative_interval(
    c: VariantStats, t: VariantStats, conf: float, warnings: Warnings, label: str
) -> tuple[float | None, float | None]:
    """Katz log interval of the rate ratio, minus 1, in percent; it needs successes in
    both arms (with none in treatment it would read [-100%, undefined])."""
    if c.successes <= 0 or t.successes <= 0 or c.count <= 0 or t.count <= 0:
        if c.count > 0 and t.count > 0:
            warnings.add(
                f"relative confidence interval ({label}) is undefined for this data: "
                "it needs successes in both arms"
            )
        return (None, None)
    lo, hi = statistics.ratio_ci_log(c.successes, c.count, t.successes, t.count, conf)
    return (pct(num(lo - 1.0)), pct(num(hi - 1.0)))


def sequential_view(
    res: sequential.SequentialResult,
    theta: float | None,
    before: Running,
    look: Look,
    what: str,
) -> SequentialTest:
    """``p_value`` is the always-valid p-value: the running minimum of the mixture p-value
    over every recorded look and this one; ``confidence_sequence`` the intersection of
    the looks' sequences (at another confidence level than the configured one: this
    look's only, with a warning). ``direction`` says which side of 0 the evidence is on."""
    current = num(res.p_value)
    now = (num(res.ci_low), num(res.ci_high))
    design_alpha = round(1.0 - look.cfg.confidence_level, 12)
    after = before.look(current, theta, now if look.same_level else None, design_alpha)
    seen = current is not None or before != Running()
    p = after.p_value if seen else None
    interval = now
    if look.same_level and seen:
        interval = (num(after.low), num(after.high))
        if after.empty:
            interval = (None, None)
            look.warnings.add(
                f"the confidence sequence of the {what} ({look.label}) is empty: the looks "
                "contradict each other (an effect that changes over time?); a decision "
                "taken at an earlier look stands, but investigate before acting on it"
            )
    elif not look.same_level and seen:
        look.warnings.add(
            "the confidence sequences are intersected over looks at the configured "
            "confidence level only; at this level they are this look's"
        )
    significant = bool(p is not None and p <= look.alpha)
    mix = look.cfg.mixture()
    return SequentialTest(
        method=SEQUENTIAL_METHOD,
        tau=num(res.tau),
        p_value=p,
        p_value_current=current,
        statistically_significant=significant,
        confidence_sequence=interval,
        confidence_sequence_current=now,
        tuning=mix.tuning if mix.tau is None else None,
        direction=after.direction if significant else 0,
        running=after,
    )


def _posterior(
    m_c: float, v_c: float, n_c: float, m_t: float, v_t: float, n_t: float, look: Look
) -> tuple[Posterior | None, Posterior | None]:
    """The Gaussian effect model (gbstats) of the absolute and the relative effect."""
    if min(n_c, n_t) <= 0 or not (v_c > 0 and v_t > 0):
        return None, None
    relative = bayes.relative_effect(m_c, v_c, n_c, m_t, v_t, n_t) if m_c != 0 else None
    return effect_posteriors(bayes.absolute_effect(m_c, v_c, n_c, m_t, v_t, n_t), relative,
                             abs(m_c), look)


def effect_posteriors(
    absolute: tuple[float, float], relative: tuple[float, float] | None, scale: float,
    look: Look,
) -> tuple[Posterior | None, Posterior | None]:
    """Posteriors of the absolute and relative effects given as (estimate, variance)
    (whatever gave the variance: per request, or by unit); ``scale``: the control's
    absolute value, which rescales the prior on the relative effect."""
    prior = bayes.GaussianPrior(look.cfg.prior_mean, look.cfg.prior_sd)
    a = bayes.gaussian_effect(*absolute, prior, look.alpha, scale)
    r = bayes.gaussian_effect(*relative, prior, look.alpha) if relative is not None else None
    return _as_posterior(a, prior, 1.0), _as_posterior(r, prior, 100.0)


def _as_posterior(
    e: bayes.EffectPosterior | None, prior: bayes.GaussianPrior, unit: float
) -> Posterior | None:
    if e is None:
        return None
    return Posterior(
        prior=prior.describe(),
        mean=num(e.mean * unit),
        std=num(e.sd * unit),
        credible_interval=(num(e.ci_low * unit), num(e.ci_high * unit)),
        chance_positive=num(e.chance_positive),
        loss_if_positive_assumed=num(e.loss_if_positive_assumed * unit),
        loss_if_negative_assumed=num(e.loss_if_negative_assumed * unit),
    )


def _rate_posterior(x_c: int, n_c: int, x_t: int, n_t: int, look: Look) -> tuple[
    Posterior | None, Posterior | None
]:
    if n_c <= 0 or n_t <= 0:
        return None, None
    p_c, p_t = min(x_c, n_c) / n_c, min(x_t, n_t) / n_t
    return _posterior(p_c, p_c * (1 - p_c), n_c, p_t, p_t * (1 - p_t), n_t, look)


def _bayesian(c: VariantStats, t: VariantStats, look: Look) -> BayesianComparison:
    if c.count == 0 or t.count == 0:
        return BayesianComparison(BETA_PRIOR, None, None, None)
    res = bayes.beta_compare(
        min(c.successes, c.count), c.count, min(t.successes, t.count), t.count
    )
    absolute, relative = _rate_posterior(c.successes, c.count, t.successes, t.count, look)
    return BayesianComparison(
        prior=BETA_PRIOR,
        chance_to_beat_control=num(res.chance_to_beat_control),
        loss_ship_treatment=num(res.expected_loss_ship_treatment),
        loss_keep_control=num(res.expected_loss_keep_control),
        absolute=absolute,
        relative=relative,
    )


def _welch(name: str, mc: Moments, mt: Moments, look: Look) -> MetricTest:
    res = statistics.welch_ttest(mc.n, mc.sum, mc.sum_squares, mt.n, mt.sum, mt.sum_squares,
                                 look.conf)
    seq = sequential.msprt_means(mc.n, mc.sum, mc.sum_squares, mt.n, mt.sum, mt.sum_squares,
                                 look.alpha, look.cfg.mixture())
    diff = num(res.difference)
    absolute, relative = _posterior(mc.mean, mc.variance, mc.n, mt.mean, mt.variance, mt.n,
                                    look)
    return MetricTest(
        control_mean=num(res.mean_control),
        treatment_mean=num(res.mean_treatment),
        difference=diff,
        statistic=num(res.t),
        df=num(res.df),
        p_value=num(res.p_value),
        confidence_interval=(num(res.ci_low), num(res.ci_high)),
        lift=pct(num(res.relative)),
        n_control=mc.n,
        n_treatment=mt.n,
        sequential=sequential_view(seq, diff, look.state.metrics.get(name, Running()), look,
                                   name),
        bayesian_absolute=absolute,
        bayesian_relative=relative,
    )


def _error_rate(c: VariantStats, t: VariantStats, look: Look) -> MetricTest:
    err = statistics.two_proportion_ztest(c.errors, c.count, t.errors, t.count, look.conf)
    seq = sequential.msprt_proportions(c.errors, c.count, t.errors, t.count, look.alpha,
                                       look.cfg.mixture())
    diff = num(err.difference)
    absolute, relative = _rate_posterior(c.errors, c.count, t.errors, t.count, look)
    before = look.state.metrics.get("error_rate", Running())
    return MetricTest(
        control_mean=num(err.rate_control),
        treatment_mean=num(err.rate_treatment),
        difference=diff,
        statistic=num(err.z),
        df=None,
        p_value=num(err.p_value),
        confidence_interval=(num(err.ci_low), num(err.ci_high)),
        lift=pct(num(err.relative)),
        n_control=c.count,
        n_treatment=t.count,
        z_test=True,
        sequential=sequential_view(seq, diff, before, look, "error rate"),
        bayesian_absolute=absolute,
        bayesian_relative=relative,
    )


def _metrics(c: VariantStats, t: VariantStats, look: Look) -> dict[str, MetricTest]:
    """Latency, the error rate (when errors were recorded) and every custom metric, with
    p-values adjusted across them (Holm or Benjamini-Hochberg, as configured; the
    always-valid p-values likewise)."""
    raw: dict[str, MetricTest] = {}
    if c.latency.count or t.latency.count:
        raw["latency"] = _welch("latency", c.latency.moments(), t.latency.moments(), look)
    if c.errors or t.errors:
        raw["error_rate"] = _error_rate(c, t, look)
    for name in sorted(set(c.custom) | set(t.custom)):
        key = f"custom:{name}" if name in _RESERVED else name
        raw[key] = _welch(key, c.custom.get(name, Moments()), t.custom.get(name, Moments()),
                          look)
    out = adjust_metrics(raw, look)
    for name, m in raw.items():
        if m.p_value is None:
            look.warnings.add(
                f"metric {name!r} ({look.label}): needs >= 2 values with nonzero variance "
                "per arm"
            )
    return out


def adjust_metrics(raw: dict[str, MetricTest], look: Look) -> dict[str, MetricTest]:
    """A comparison's metric tests with their fixed-horizon and always-valid p-values
    adjusted across them by the test's correction (Holm or Benjamini-Hochberg), and
    significance judged on the adjusted ones."""
    method = look.cfg.multiple_testing
    adjusted = statistics.adjust([_nan(m.p_value) for m in raw.values()], method)
    seq_adjusted = statistics.adjust(
        [_nan(m.sequential.p_value if m.sequential else None) for m in raw.values()], method
    )
    out: dict[str, MetricTest] = {}
    for (name, m), adj, s_adj in zip(raw.items(), adjusted, seq_adjusted, strict=True):
        p_adj = num(adj)
        out[name] = replace(
            m,
            p_value_adjusted=p_adj,
            statistically_significant=bool(p_adj is not None and adj < 1.0 - look.conf),
            sequential=adjust_sequential(m.sequential, num(s_adj), look.alpha),
        )
    return out


def adjust_sequential(
    seq: SequentialTest | None, p_adjusted: float | None, alpha: float
) -> SequentialTest | None:
    """The sequential view judged on its adjusted always-valid p-value."""
    if seq is None:
        return None
    significant = bool(p_adjusted is not None and p_adjusted <= alpha)
    return replace(
        seq,
        p_value_adjusted=p_adjusted,
        statistically_significant=significant,
        direction=seq.running.direction if significant else 0,
    )


def _nan(p: float | None) -> float:
    return np.nan if p is None else p
