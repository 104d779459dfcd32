"""The report's frequentist results by randomized unit, when requests name their unit.

Assignment hashes the unit, so a unit's requests are correlated: counted as independent
observations they make variances too small (an A/A test with users sending ~20 requests
each is "significant" far more often than alpha). When the store holds per-unit totals
(:mod:`.unitstore`) for control and a variant, this module replaces that comparison's
success-rate test, its interval and its metric tests (error rate, latency, custom
metrics) with delta-method tests of the ratio metrics over units (:mod:`.ratio`,
optionally CUPED-adjusted), and the sample-ratio check counts units. Requests that
named no unit are left out of these tests (``coverage`` < 1, with a warning); without
any unit the report stays request-level and says so (``analysis_unit.unit =
"request"``, and a warning when per-unit totals were looked up but none exist). The sequential and Bayesian views stay request-level.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from neural.mlops.server.experiments import statistics
from neural.mlops.server.experiments.finite import Warnings, num, pct
from neural.mlops.server.experiments.ratio import RatioTest, compare_ratio
from neural.mlops.server.experiments.report import Comparison, Improvement, MetricTest
from neural.mlops.server.experiments.unitstats import ERRORS, SUCCESS, UnitTotals
from neural.mlops.v1.traffic import VariantStats

UNIT = "unit"
REQUEST = "request"

__all__ = ["REQUEST", "UNIT", "UnitAnalysis", "by_unit"]


@dataclass(frozen=True, slots=True)
class UnitAnalysis:
    """What the report's frequentist results count as one observation, and how many."""

    unit: str  # "unit" or "request"
    units: dict[str, int] = field(default_factory=dict)
    coverage: dict[str, float | None] = field(default_factory=dict)  # requests with a unit
    cuped: dict[str, dict[str, float | None]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"unit": self.unit, "units": dict(self.units), "coverage": dict(self.coverage),
                "cuped": {k: dict(v) for k, v in self.cuped.items()}}


def _metric(r: RatioTest, base: MetricTest | None) -> MetricTest:
    """The by-unit test, keeping what the request-level one adds (e.g. its sequential view)."""
    values = dict(
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
    )
    return replace(base, **values) if base is not None else MetricTest(**values)


def _metrics(c: UnitTotals, t: UnitTotals, conf: float, cuped: bool, warnings: Warnings,
             label: str, before: Mapping[str, MetricTest],
             ) -> tuple[dict[str, MetricTest], dict[str, Any]]:
    """Every metric but the success rate, Holm-adjusted across them (as the request-level
    tests are); and the CUPED summary of each."""
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
        r = compare_ratio(c, t, key, conf, cuped=cuped)
        if r is None:
            warnings.add(f"metric {key!r} ({label}): needs >= 2 units with values per arm")
            continue
        raw[key] = _metric(r, before.get(key))
        if r.cuped:
            adjusted[key] = {"theta": num(r.theta), "variance_reduction": num(r.variance_reduction)}
    adj = statistics.holm([np.nan if m.p_value is None else m.p_value for m in raw.values()])
    out = {
        k: replace(m, p_value_adjusted=num(a),
                   statistically_significant=bool(num(a) is not None and a < 1.0 - conf))
        for (k, m), a in zip(raw.items(), adj, strict=True)
    }
    return out, adjusted


def by_unit(
    comparisons: Mapping[str, Comparison],
    stats: Mapping[str, VariantStats],
    units: Mapping[str, UnitTotals] | None,
    control: str,
    conf: float,
    warnings: Warnings,
    *,
    cuped: bool = False,
) -> tuple[dict[str, Comparison], UnitAnalysis]:
    """The comparisons with their frequentist parts by unit (see the module docstring)."""
    if units is None:  # not asked for (a time-ranged look, a caller's own totals)
        return dict(comparisons), UnitAnalysis(REQUEST)
    c_units = units.get(control)
    if c_units is None or not any(t.units for t in units.values()):
        if any(s.count for s in stats.values()):
            warnings.add("no request named its unit (user_id): the analysis counts requests "
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
    for name, comp in comparisons.items():
        t_units = units.get(name)
        r = compare_ratio(c_units, t_units, SUCCESS, conf, cuped=cuped) if t_units else None
        label = f"{name} vs {control}"
        if r is None:
            warnings.add(f"by-unit analysis needs >= 2 units with requests per arm ({label}); "
                         "this comparison counts requests")
            out[name] = comp
            continue
        metrics, cv = _metrics(c_units, t_units, conf, cuped, warnings, label, comp.metrics)
        if r.cuped:
            cv[SUCCESS] = {"theta": num(r.theta), "variance_reduction": num(r.variance_reduction)}
        adjusted.update({f"{name}:{k}": v for k, v in cv.items()})
        p = num(r.p_value)
        out[name] = replace(
            comp,
            p_value=p,
            z_score=num(r.z),
            statistically_significant=bool(p is not None and p < 1.0 - conf),
            improvement=Improvement(
                absolute=num(r.difference),
                relative_improvement=pct(num(r.relative)),
                confidence_interval=(num(r.ci_low), num(r.ci_high)),
                relative_confidence_interval=(pct(num(r.relative_ci[0])),
                                              pct(num(r.relative_ci[1]))),
            ),
            metrics=metrics,
        )
    return out, UnitAnalysis(UNIT, counts, coverage, adjusted)
