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
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from scipy import special

from neural.mlops.server.errors import InvalidArgument
from neural.mlops.server.experiments import statistics
from neural.mlops.server.experiments.ratio import arm, compare_ratio
from neural.mlops.server.experiments.unitstats import ERRORS, LATENCY, UnitTotals, metric_key
from neural.mlops.v1.traffic import LatencyHistogram, VariantStats

P95 = "latency_p95"
DIRECTIONS = ("increase", "decrease")
MAX_GUARDRAILS = 20

__all__ = ["Guardrail", "GuardrailResult", "evaluate", "parse_guardrails"]


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

    def describe(self) -> str:
        def f(x: float | None) -> str:
            return "n/a" if x is None else f"{x:.4g}"

        lo, hi = self.interval
        rel = "n/a" if self.relative_change is None else f"{self.relative_change:+.1%}"
        return (f"{self.metric} {f(self.treatment)} vs control {f(self.control)} ({rel}, "
                f"interval {f(lo)}..{f(hi)}, tolerance {self.tolerance:.0%}, by {self.by})")

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "direction": self.direction, "tolerance": self.tolerance,
                "control": self.control, "treatment": self.treatment,
                "relative_change": self.relative_change, "interval": list(self.interval),
                "by": self.by, "violated": self.violated}


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
    if g.metric == LATENCY:
        mc, mt = c.latency.moments(), t.latency.moments()
    else:
        mc = c.custom.get(g.metric)
        mt = t.custom.get(g.metric)
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


def _p95(c: VariantStats, t: VariantStats, uc: UnitTotals | None, ut: UnitTotals | None,
         conf: float) -> tuple[float | None, ...]:
    z = float(special.ndtri(0.5 + conf / 2.0))
    qc, qt = c.latency.quantile(0.95), t.latency.quantile(0.95)
    se_c = _quantile_se(c.latency, 0.95, z, _design_effect(c.latency, uc))
    se_t = _quantile_se(t.latency, 0.95, z, _design_effect(t.latency, ut))
    if qc is None or qt is None or se_c is None or se_t is None:
        return qc, qt, None, None, None
    d = qt - qc
    se = math.sqrt(se_c**2 + se_t**2)
    return (qc, qt, *_relative(d, d - z * se, d + z * se, qc))


def evaluate(
    guardrails: Iterable[Guardrail],
    control: VariantStats,
    treatment: VariantStats,
    conf: float,
    units: tuple[UnitTotals, UnitTotals] | None = None,
) -> list[GuardrailResult]:
    """Each guardrail of ``treatment`` against ``control`` (see the module docstring)."""
    out = []
    for g in guardrails:
        by = "request"
        if g.metric == P95:
            vals = _p95(control, treatment, *(units or (None, None)), conf)
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
        if g.direction == "increase":
            violated = lo is not None and lo > g.tolerance
        else:
            violated = hi is not None and hi < -g.tolerance
        out.append(GuardrailResult(g.metric, g.direction, g.tolerance, qc, qt, rel, (lo, hi),
                                   by, violated))
    return out
