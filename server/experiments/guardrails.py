"""Guardrail metrics: what must not get significantly worse, whatever the primary metric.

A guardrail names a metric (``error_rate``, ``latency`` (mean), ``latency_p95``, or a
custom metric), the direction that is worse (``increase``, the default, or
``decrease``) and a tolerated relative change (``tolerance``, 0.1 = 10%). It is
violated when the interval of the treatment's relative change against control (at the
test's confidence level) lies entirely beyond the tolerance in the worse direction, so
a violation is a significant regression, not noise. The analysis then recommends
``stop`` with the measured values, and the service stops a RUNNING test (as a
deployment's health judge rolls back: :mod:`neural.mlops.server.deployments.judge`).

Tests, per metric:

* means and rates: by unit when the store has per-unit totals (the delta-method ratio
  test of :mod:`.ratio`), else by request (two-proportion z interval for the error rate,
  Welch for means); the relative interval is the difference's interval over the
  control's value when counted by request.
* ``latency_p95``: Woodruff's interval for a quantile from the histogram, the method of
  Deng, Knoblich & Lu (KDD 2018, sec. 4.3): with ``sigma^2 = p (1 - p) / n * deff`` the
  variance of the share of requests below the quantile, the interval is
  ``[Q(p - z sigma), Q(p + z sigma)]`` and the quantile's standard error is its width
  over ``2 z``. ``deff`` is the design effect of the unit's clustering, estimated from
  the mean latency (delta-method variance by unit over the naive ``s^2 / n``; Kish,
  *Survey Sampling*, 1965): the store keeps no per-unit share below a quantile that is
  only known at analysis time. The difference of the two arms' p95 is tested with the
  sum of their variances.

Under the sequential decision rule a guardrail is judged as the test is, validly at
every look: by the metric's always-valid view in the report (``metrics[k].sequential``,
by unit when the report is): violated when its always-valid p-value (the running
minimum over looks, not adjusted across metrics, as the fixed-horizon guardrail is not)
is <= alpha and its confidence sequence (intersected over looks), over the control's
value, lies beyond the tolerance in the worse direction. ``latency_p95`` has no stored
sequential state: this look's mSPRT of the p95 difference with the variance above
(each look's confidence sequence is itself valid at every look). A metric with no
sequential view yet is not violated. The fixed-horizon interval would fire on noise
when looked at repeatedly.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from neural.mlops.server.errors import InvalidArgument
from neural.mlops.server.experiments import sequential, statistics
from neural.mlops.server.experiments.ratio import arm, compare_ratio
from neural.mlops.server.experiments.report import MetricTest
from neural.mlops.server.experiments.unitstats import ERRORS, LATENCY, UnitTotals, metric_key
from neural.mlops.v1.traffic import LatencyHistogram, Moments, VariantStats

P95 = "latency_p95"
DIRECTIONS = ("increase", "decrease")
MAX_GUARDRAILS = 20

FIXED = "fixed_horizon"
SEQUENTIAL = "sequential"

__all__ = ["Guardrail", "GuardrailResult", "SequentialLook", "evaluate", "parse_guardrails"]


@dataclass(frozen=True, slots=True)
class Guardrail:
    metric: str
    direction: str = "increase"  # the worse direction
    tolerance: float = 0.0  # relative change tolerated before a regression counts

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "direction": self.direction, "tolerance": self.tolerance}


def parse_guardrails(items: Iterable[Any] | None) -> tuple[Guardrail, ...]:
    """Guardrails from Guardrail objects, dicts or metric names; InvalidArgument if bad."""
    out: list[Guardrail] = []
    for item in items or ():
        if isinstance(item, str):
            item = {"metric": item}
        elif isinstance(item, Guardrail):
            item = item.to_dict()
        if not isinstance(item, Mapping):
            raise InvalidArgument("a guardrail is a metric name or {metric, direction, "
                                  "tolerance}", field="guardrails")
        metric = item.get("metric")
        direction = item.get("direction") or "increase"
        tolerance = item.get("tolerance", 0.0) or 0.0
        if not isinstance(metric, str) or not metric or len(metric) > 128:
            raise InvalidArgument("guardrail metric must be a metric name", field="guardrails")
        if direction not in DIRECTIONS:
            raise InvalidArgument("guardrail direction must be 'increase' or 'decrease'",
                                  field="guardrails")
        if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not (
                math.isfinite(tolerance) and 0.0 <= tolerance <= 10.0):
            raise InvalidArgument("guardrail tolerance must be a relative change in [0, 10]",
                                  field="guardrails")
        out.append(Guardrail(metric, direction, float(tolerance)))
    if len(out) > MAX_GUARDRAILS:
        raise InvalidArgument(f"at most {MAX_GUARDRAILS} guardrails", field="guardrails")
    if len({g.metric for g in out}) != len(out):
        raise InvalidArgument("one guardrail per metric", field="guardrails")
    return tuple(out)


@dataclass(frozen=True, slots=True)
class GuardrailResult:
    metric: str
    direction: str
    tolerance: float
    control: float | None
    treatment: float | None
    relative_change: float | None  # fraction
    interval: tuple[float | None, float | None]  # of the relative change
    by: str  # "unit" or "request"
    violated: bool
    rule: str = FIXED  # how it was judged: "fixed_horizon" or "sequential"
    p_value: float | None = None  # sequential: the always-valid p-value


    def describe(self) -> str:
        def f(x: float | None) -> str:
            return "n/a" if x is None else f"{x:.4g}"

        lo, hi = self.interval
        rel = "n/a" if self.relative_change is None else f"{self.relative_change:+.1%}"
        what = "interval" if self.rule == FIXED else "confidence sequence"
        p = "" if self.p_value is None else f", always-valid p {self.p_value:.3g}"
        return (f"{self.metric} {f(self.treatment)} vs control {f(self.control)} ({rel}, "
                f"{what} {f(lo)}..{f(hi)}, tolerance {self.tolerance:.0%}, by {self.by}{p})")

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "direction": self.direction, "tolerance": self.tolerance,
                "control": self.control, "treatment": self.treatment,
                "relative_change": self.relative_change, "interval": list(self.interval),
                "by": self.by, "violated": self.violated, "rule": self.rule,
                "p_value": self.p_value}


def _fin(x: Any) -> float | None:
    if x is None:
        return None
    v = float(x)
    return v if math.isfinite(v) else None


def _relative(diff: Any, lo: Any, hi: Any, base: Any) -> tuple[float | None, ...]:
    b = _fin(base)
    if not b:
        return None, None, None
    vals = [_fin(x) for x in (diff, lo, hi)]
    return tuple(None if x is None else x / b for x in vals)


def _request_level(g: Guardrail, c: VariantStats, t: VariantStats, conf: float
                   ) -> tuple[float | None, ...]:
    """(control, treatment, relative change, low, high) counting requests."""
    if g.metric == ERRORS:
        r = statistics.two_proportion_ztest(c.errors, c.count, t.errors, t.count, conf)
        return (_fin(r.rate_control), _fin(r.rate_treatment),
                *_relative(r.difference, r.ci_low, r.ci_high, r.rate_control))
    mc: Moments | None
    mt: Moments | None
    if g.metric == LATENCY:
        mc, mt = c.latency.moments(), t.latency.moments()
    else:
        mc, mt = c.custom.get(g.metric), t.custom.get(g.metric)
    if mc is None or mt is None:
        return None, None, None, None, None
    w = statistics.welch_ttest(mc.n, mc.sum, mc.sum_squares, mt.n, mt.sum, mt.sum_squares, conf)
    return (_fin(w.mean_control), _fin(w.mean_treatment),
            *_relative(w.difference, w.ci_low, w.ci_high, w.mean_control))


def _design_effect(h: LatencyHistogram, units: UnitTotals | None) -> float:
    """Delta-method variance of the mean latency by unit over the naive s^2 / n (>= 1)."""
    a = arm(units, LATENCY) if units is not None else None
    m = h.moments()
    if a is None or m.n < 2 or m.variance <= 0:
        return 1.0
    return max(a.variance / (m.variance / m.n), 1.0)


def _quantile_se(h: LatencyHistogram, p: float, z: float, deff: float) -> float | None:
    n = h.count
    if n < 2:
        return None
    sigma = math.sqrt(p * (1.0 - p) / n * deff)
    lo = h.quantile(max(p - z * sigma, 0.0))
    hi = h.quantile(min(p + z * sigma, 1.0))
    if lo is None or hi is None:
        return None
    return (hi - lo) / (2.0 * z)


def _p95_difference(c: VariantStats, t: VariantStats, uc: UnitTotals | None,
                    ut: UnitTotals | None, conf: float
                    ) -> tuple[float | None, float | None, float | None]:
    """Both arms' p95 and the standard error of their difference (None: undefined)."""
    from scipy import special  # here: scipy costs a process start ~0.4 s
    z = float(special.ndtri(0.5 + conf / 2.0))
    qc, qt = c.latency.quantile(0.95), t.latency.quantile(0.95)
    se_c = _quantile_se(c.latency, 0.95, z, _design_effect(c.latency, uc))
    se_t = _quantile_se(t.latency, 0.95, z, _design_effect(t.latency, ut))
    if qc is None or qt is None or se_c is None or se_t is None:
        return qc, qt, None
    return qc, qt, math.sqrt(se_c**2 + se_t**2)


def _p95(c: VariantStats, t: VariantStats, uc: UnitTotals | None, ut: UnitTotals | None,
         conf: float) -> tuple[float | None, ...]:
    from scipy import special  # here: scipy costs a process start ~0.4 s
    qc, qt, se = _p95_difference(c, t, uc, ut, conf)
    if qc is None or qt is None or se is None:
        return qc, qt, None, None, None
    z = float(special.ndtri(0.5 + conf / 2.0))
    d = qt - qc
    return (qc, qt, *_relative(d, d - z * se, d + z * se, qc))


@dataclass(frozen=True, slots=True)
class SequentialLook:
    """What a guardrail is judged on under the sequential rule: the compared variant's
    metric tests in the report (with their ``sequential`` views), the look's alpha, and
    the test's mixture (for the p95, which has no stored state)."""

    metrics: Mapping[str, MetricTest]
    alpha: float
    mixture: sequential.Mixture


def _beyond(g: Guardrail, lo: float | None, hi: float | None) -> bool:
    if g.direction == "increase":
        return lo is not None and lo > g.tolerance
    return hi is not None and hi < -g.tolerance


def _sequential(g: Guardrail, c: VariantStats, t: VariantStats,
                units: tuple[UnitTotals, UnitTotals] | None, conf: float, look: SequentialLook,
                ) -> GuardrailResult:
    """One guardrail judged by its always-valid p-value and confidence sequence."""
    by = "unit" if units is not None else "request"
    if g.metric == P95:
        uc, ut = units if units is not None else (None, None)
        qc, qt, se = _p95_difference(c, t, uc, ut, conf)
        p = lo = hi = None
        if qc is not None and qt is not None and se is not None:
            n = c.latency.count + t.latency.count
            res = sequential.msprt(qt - qc, se * se, n, look.alpha, look.mixture)
            p, lo, hi = _fin(res.p_value), _fin(res.ci_low), _fin(res.ci_high)
        diff = None if qc is None or qt is None else qt - qc
    else:
        key = g.metric if g.metric in (ERRORS, LATENCY) else metric_key(g.metric)
        m = look.metrics.get(key) or look.metrics.get(g.metric)
        seq = m.sequential if m is not None else None
        if m is None or seq is None:
            return GuardrailResult(g.metric, g.direction, g.tolerance, None, None, None,
                                   (None, None), by, False, SEQUENTIAL)
        qc, qt, diff, p = m.control_mean, m.treatment_mean, m.difference, seq.p_value
        lo, hi = seq.confidence_sequence
        if lo is None or hi is None:  # empty intersection: this look's sequence
            lo, hi = seq.confidence_sequence_current
    rel, r_lo, r_hi = _relative(diff, lo, hi, qc)
    violated = p is not None and p <= look.alpha and _beyond(g, r_lo, r_hi)
    return GuardrailResult(g.metric, g.direction, g.tolerance, _fin(qc), _fin(qt), rel,
                           (r_lo, r_hi), by, violated, SEQUENTIAL, p)


def evaluate(
    guardrails: Iterable[Guardrail],
    control: VariantStats,
    treatment: VariantStats,
    conf: float,
    units: tuple[UnitTotals, UnitTotals] | None = None,
    *,
    sequential_look: SequentialLook | None = None,
) -> list[GuardrailResult]:
    """Each guardrail of ``treatment`` against ``control`` (see the module docstring);
    ``sequential_look``: judged under the sequential rule."""
    out = []
    for g in guardrails:
        if sequential_look is not None:
            out.append(_sequential(g, control, treatment, units, conf, sequential_look))
            continue
        by = "request"
        if g.metric == P95:
            uc, ut = units if units is not None else (None, None)
            vals = _p95(control, treatment, uc, ut, conf)
            by = "unit" if units is not None else "request"
        else:
            r = None
            if units is not None:
                key = g.metric if g.metric in (ERRORS, LATENCY) else metric_key(g.metric)
                r = compare_ratio(units[0], units[1], key, conf)
            if r is not None:
                by = "unit"
                vals = (r.control_mean, r.treatment_mean, r.relative, *r.relative_ci)
            else:
                vals = _request_level(g, control, treatment, conf)
        qc, qt, rel, lo, hi = (_fin(x) for x in vals)
        out.append(GuardrailResult(g.metric, g.direction, g.tolerance, qc, qt, rel, (lo, hi),
                                   by, _beyond(g, lo, hi)))
    return out
