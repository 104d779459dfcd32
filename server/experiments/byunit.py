"""The report's results by randomized unit, when requests name their unit.

Assignment hashes the unit, so a unit's requests are correlated: counted as independent
observations they make variances too small (an A/A test with users sending ~20 requests
each is "significant" far more often than alpha). When the store holds per-unit totals
(:mod:`.unitstore`) for control and a variant, this module replaces, for that
comparison, every view that rests on a variance with one from the delta-method
variances over units (:mod:`.ratio`, CUPED-adjusted when covariates were given):

* the success-rate test, its absolute and relative intervals;
* the sequential view (mSPRT p-value and confidence sequence, :func:`.sequential.
  msprt_by_unit`), so the sequential decision peeks validly on clustered traffic;
* the Bayesian view: gbstats' Gaussian effect model of the absolute and relative lift
  with the by-unit variances (the request-level Beta-Binomial posteriors would treat
  requests as independent); chance to beat control and expected losses come from it;
* each metric (error rate, latency, custom metrics): its test, sequential and Bayesian
  views, adjusted across metrics by the test's correction (Holm or Benjamini-Hochberg);
* the design effect (by-unit variance of the success-rate difference over the variance
  were requests independent), which the sample-size plan multiplies its size by.

The sample-ratio check counts units. Requests that named no unit are left out
(``coverage`` < 1, with a warning); without any unit the report stays request-level and
says so (``analysis_unit.unit = "request"``, and a warning when per-unit totals were
looked up but none exist). A comparison with fewer than 2 units per arm keeps its
request-level fixed-horizon and Bayesian results (with a warning) but takes no
request-level sequential look: the running state must not mix request-level p-values
into a test analysed by unit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from neural.mlops.server.experiments import bayes, sequential
from neural.mlops.server.experiments.comparison import (
    Look,
    adjust_metrics,
    effect_posteriors,
    sequential_view,
)
from neural.mlops.server.experiments.finite import Warnings, num, pct
from neural.mlops.server.experiments.ratio import RatioTest, compare_ratio
from neural.mlops.server.experiments.report import (
    BayesianComparison,
    Comparison,
    Improvement,
    MetricTest,
    Posterior,
    SequentialTest,
)
from neural.mlops.server.experiments.sequential import Running
from neural.mlops.server.experiments.unitstats import ERRORS, SUCCESS, UnitTotals
from neural.mlops.v1.traffic import VariantStats

UNIT = "unit"
REQUEST = "request"
GAUSSIAN_BY_UNIT = "Gaussian effect model by unit"
_RATES = (SUCCESS, ERRORS)  # metrics whose sequential test waits for events, as per request

__all__ = ["GAUSSIAN_BY_UNIT", "REQUEST", "UNIT", "UnitAnalysis", "by_unit"]


@dataclass(frozen=True, slots=True)
class UnitAnalysis:
    """What the report's results count as one observation, and how many."""

    unit: str  # "unit" or "request"
    units: dict[str, int] = field(default_factory=dict)
    coverage: dict[str, float | None] = field(default_factory=dict)  # requests with a unit
    cuped: dict[str, dict[str, float | None]] = field(default_factory=dict)
    # per compared variant: by-unit variance of the success-rate difference over the
    # variance were its requests independent (1: no clustering)
    design_effect: dict[str, float | None] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"unit": self.unit, "units": dict(self.units), "coverage": dict(self.coverage),
                "cuped": {k: dict(v) for k, v in self.cuped.items()},
                "design_effect": dict(self.design_effect)}


def _enough(c: UnitTotals, t: UnitTotals, key: str) -> bool:
    """A rate's sequential test waits for :data:`.sequential.MIN_EVENTS` events and
    non-events per arm, as the request-level one does."""
    if key not in _RATES:
        return True
    k = sequential.MIN_EVENTS
    return all(
        (m := u.metrics.get(key)) is not None and min(m.x, m.y - m.x) >= k for u in (c, t)
    )


def _views(r: RatioTest, c: UnitTotals, t: UnitTotals, key: str, before: Running, look: Look,
           what: str) -> tuple[SequentialTest, Posterior | None, Posterior | None]:
    """The sequential view and the absolute / relative posteriors of one by-unit test."""
    var = r.standard_error**2 if r.standard_error else math.nan
    seq = sequential.msprt_by_unit(r.difference, var, r.units_control, r.units_treatment,
                                   look.alpha, look.cfg.mixture(), _enough(c, t, key))
    if num(seq.p_value) is None:
        look.warnings.add(
            f"sequential test of the {what} by unit ({look.label}) undefined until each arm "
            f"has {sequential.MIN_UNITS} units"
            + (f" and {sequential.MIN_EVENTS} events and non-events" if key in _RATES else "")
        )
    relative = None
    if r.relative is not None and r.relative_variance is not None:
        relative = (r.relative, r.relative_variance)
    absolute, rel = effect_posteriors((r.difference, var), relative, abs(r.control_mean), look)
    return sequential_view(seq, num(r.difference), before, look, what), absolute, rel


def _metric(r: RatioTest, c: UnitTotals, t: UnitTotals, key: str, look: Look) -> MetricTest:
    seq, absolute, relative = _views(r, c, t, key, look.state.metrics.get(key, Running()),
                                     look, key)
    return MetricTest(
        control_mean=num(r.control_mean),
        treatment_mean=num(r.treatment_mean),
        difference=num(r.difference),
        statistic=num(r.z),
        df=None,
        p_value=num(r.p_value),
        confidence_interval=(num(r.ci_low), num(r.ci_high)),
        lift=pct(num(r.relative)),
        n_control=r.units_control,
        n_treatment=r.units_treatment,
        z_test=True,
        sequential=seq,
        bayesian_absolute=absolute,
        bayesian_relative=relative,
    )


def _metrics(c: UnitTotals, t: UnitTotals, look: Look, cuped: bool,
             ) -> tuple[dict[str, MetricTest], dict[str, Any]]:
    """Every metric but the success rate, adjusted across them by the test's correction
    (as the request-level tests are); and the CUPED summary of each."""
    raw: dict[str, MetricTest] = {}
    adjusted: dict[str, Any] = {}
    for key in sorted(set(c.metrics) | set(t.metrics)):
        if key == SUCCESS:
            continue
        mc, mt = c.metrics.get(key), t.metrics.get(key)
        if (mc is None or mc.y == 0) and (mt is None or mt.y == 0):
            continue  # never measured
        if key == ERRORS and (mc is None or mc.x == 0) and (mt is None or mt.x == 0):
            continue  # no errors recorded: the request-level report leaves it out too
        r = compare_ratio(c, t, key, look.conf, cuped=cuped)
        if r is None:
            look.warnings.add(f"metric {key!r} ({look.label}): needs >= 2 units with values "
                              "per arm")
            continue
        raw[key] = _metric(r, c, t, key, look)
        if r.cuped:
            adjusted[key] = {"theta": num(r.theta), "variance_reduction": num(r.variance_reduction)}
    return adjust_metrics(raw, look), adjusted


def _bayesian(absolute: Posterior | None, relative: Posterior | None, look: Look
              ) -> BayesianComparison:
    """The success rate's Bayesian view from the by-unit Gaussian effect model."""
    described = bayes.GaussianPrior(look.cfg.prior_mean, look.cfg.prior_sd).describe()
    prior = f"{GAUSSIAN_BY_UNIT}, {described} prior"
    if absolute is None:
        return BayesianComparison(prior, None, None, None, None, relative)
    return BayesianComparison(prior, absolute.chance_positive, absolute.loss_if_positive_assumed,
                              absolute.loss_if_negative_assumed, absolute, relative)


def _design_effect(r: RatioTest, c: UnitTotals, t: UnitTotals) -> float | None:
    """Var(D) by unit over ``p_c (1 - p_c) / n_c + p_t (1 - p_t) / n_t`` (Kish's design
    effect; requests that named a unit)."""
    naive = 0.0
    for u in (c, t):
        m = u.metrics[SUCCESS]
        p = m.x / m.y
        naive += p * (1.0 - p) / m.y
    if not r.standard_error or not naive > 0:
        return None
    return num(r.standard_error**2 / naive)


def _without_sequential_look(comp: Comparison, look: Look) -> Comparison:
    """The comparison with its sequential view taken from earlier looks only."""
    if comp.sequential is None:
        return comp
    undefined = sequential.msprt_by_unit(math.nan, math.nan, 0, 0, look.alpha)
    return replace(comp, sequential=sequential_view(undefined, None, look.state.primary, look,
                                                    "success rate"))


def by_unit(
    comparisons: Mapping[str, Comparison],
    stats: Mapping[str, VariantStats],
    units: Mapping[str, UnitTotals] | None,
    control: str,
    looks: Mapping[str, Look],
    warnings: Warnings,
    *,
    cuped: bool = False,
) -> tuple[dict[str, Comparison], UnitAnalysis]:
    """The comparisons with their results by unit (see the module docstring); ``looks``
    holds each compared variant's :class:`~.comparison.Look`."""
    if units is None:  # not asked for (a time-ranged look, a caller's own totals)
        return dict(comparisons), UnitAnalysis(REQUEST)
    c_units = units.get(control)
    if c_units is None or not any(t.units for t in units.values()):
        if any(s.count for s in stats.values()):
            warnings.add("no request named its unit (unit_id): the analysis counts requests "
                         "as independent observations, which understates variances when a "
                         "unit sends several")
        return dict(comparisons), UnitAnalysis(REQUEST)
    counts = {name: (units[name].units if name in units else 0) for name in stats}
    coverage: dict[str, float | None] = {}
    for name, s in stats.items():
        m = units[name].metrics.get(SUCCESS) if name in units else None
        covered = m.y if m is not None else 0.0
        coverage[name] = num(covered / s.count) if s.count else None
        if s.count and covered < s.count:
            warnings.add(f"{s.count - int(covered)} of {s.count} requests of {name!r} named no "
                         "unit; the by-unit tests leave them out")
    out: dict[str, Comparison] = {}
    adjusted: dict[str, dict[str, float | None]] = {}
    deff: dict[str, float | None] = {}
    for name, comp in comparisons.items():
        look = looks[name]
        t_units = units.get(name)
        r = compare_ratio(c_units, t_units, SUCCESS, look.conf, cuped=cuped) if t_units else None
        if r is None or t_units is None:
            warnings.add(f"by-unit analysis needs >= 2 units with requests per arm "
                         f"({look.label}); this comparison counts requests")
            out[name] = _without_sequential_look(comp, look)
            continue
        metrics, cv = _metrics(c_units, t_units, look, cuped)
        if r.cuped:
            cv[SUCCESS] = {"theta": num(r.theta), "variance_reduction": num(r.variance_reduction)}
        adjusted.update({f"{name}:{k}": v for k, v in cv.items()})
        deff[name] = _design_effect(r, c_units, t_units)
        seq, absolute, relative = _views(r, c_units, t_units, SUCCESS, look.state.primary, look,
                                         "success rate")
        p = num(r.p_value)
        out[name] = replace(
            comp,
            p_value=p,
            z_score=num(r.z),
            statistically_significant=bool(p is not None and p < 1.0 - look.conf),
            improvement=Improvement(
                absolute=num(r.difference),
                relative_improvement=pct(num(r.relative)),
                confidence_interval=(num(r.ci_low), num(r.ci_high)),
                relative_confidence_interval=(pct(num(r.relative_ci[0])),
                                              pct(num(r.relative_ci[1]))),
            ),
            sequential=seq,
            bayesian=_bayesian(absolute, relative, look),
            metrics=metrics,
        )
    return out, UnitAnalysis(UNIT, counts, coverage, adjusted, deff)
