"""``analyze_test``: one report from the summed statistics of each variant.

Pure function of the per-variant :class:`~neural.mlops.v1.traffic.VariantStats` totals
and the experiment's configuration, so it costs the same at a thousand or a billion
requests. Nothing here raises on degenerate data: a quantity that is undefined (an empty
arm, zero variance, all successes) is ``None`` and ``warnings`` says why. No NaN or
infinity ever reaches the result.

:func:`build_report` gives the typed :class:`~.report.AnalysisReport`; :func:`analyze`
its JSON-safe dict. Keys (two variants ``control`` / ``treatment``; with more, every
non-control variant is compared with control under ``comparisons`` and the top-level keys
describe the best one):

* ``control``, ``treatment`` (and ``variants``: every variant by name): ``n``,
  ``successes``, ``success_rate``, ``errors``, ``error_rate``, ``weight``,
  ``latency`` {``n``, ``mean``, ``std``, ``p50``, ``p95``, ``p99``},
  ``custom_metrics`` {name: {``n``, ``mean``, ``std``}}.
* ``p_value``, ``z_score``, ``statistically_significant``: pooled two-proportion z-test.
* ``improvement``: ``absolute``, ``relative_improvement`` (PERCENT),
  ``confidence_interval`` (of the absolute difference).
* ``metrics``: Welch t-tests for latency and every custom metric, and the two-proportion
  z-test of the error rate when errors were recorded (``p_value``, ``p_value_adjusted`` by
  Holm or Benjamini-Hochberg across them, ``confidence_interval``, ``lift`` percent,
  ``sequential``, ``bayesian`` {``absolute``, ``relative``}).
* ``srm``, ``power``, ``sequential`` (always-valid p-value, confidence sequence
  intersected over looks, direction), ``bayesian`` (Beta posteriors, and gbstats'
  Gaussian effect model of the absolute and relative lift), ``recommendation`` (``action``,
  ``winner``, ``reason``, ``guardrails``: latency or error rate significantly worse),
  ``warnings``, ``analysis_unit``.

With per-unit totals (``units``) every view that rests on a variance (fixed-horizon,
sequential, Bayesian, the metrics, the sample-size plan through the design effect) uses
the by-unit delta-method variances (:mod:`.byunit`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from neural.mlops.server.experiments import statistics
from neural.mlops.server.experiments.byunit import UNIT, by_unit
from neural.mlops.server.experiments.comparison import Look, adjust_sequential, compare
from neural.mlops.server.experiments.config import (
    DECISION_FIXED,
    DECISION_SEQUENTIAL,
    SRM_THRESHOLD,
    AnalysisConfig,
)
from neural.mlops.server.experiments.decision import NO_TREATMENT, plan_power, recommend
from neural.mlops.server.experiments.finite import Warnings, num
from neural.mlops.server.experiments.report import (
    NO_COMPARISON,
    AnalysisReport,
    Comparison,
    LatencySummary,
    MomentSummary,
    SampleRatioCheck,
    VariantSummary,
)
from neural.mlops.server.experiments.sequential import VariantState
from neural.mlops.server.experiments.unitstats import UnitTotals
from neural.mlops.v1.traffic import VariantStats

__all__ = [
    "DECISION_FIXED",
    "DECISION_SEQUENTIAL",
    "SRM_THRESHOLD",
    "AnalysisConfig",
    "AnalysisReport",
    "analyze",
    "build_report",
]


def analyze(
    variants: Sequence[tuple[str, float]],
    totals: Mapping[str, VariantStats],
    *,
    control: str,
    config: AnalysisConfig | None = None,
    confidence_level: float | None = None,
    elapsed_seconds: float | None = None,
    sequential_state: Mapping[str, VariantState] | None = None,
    units: Mapping[str, UnitTotals] | None = None,
    cuped: bool = False,
) -> dict[str, Any]:
    """The report as a JSON-safe dict (see the module docstring for its keys)."""
    return build_report(
        variants, totals, control=control, config=config, confidence_level=confidence_level,
        elapsed_seconds=elapsed_seconds, sequential_state=sequential_state, units=units,
        cuped=cuped,
    ).to_dict()


def build_report(
    variants: Sequence[tuple[str, float]],
    totals: Mapping[str, VariantStats],
    *,
    control: str,
    config: AnalysisConfig | None = None,
    confidence_level: float | None = None,
    elapsed_seconds: float | None = None,
    sequential_state: Mapping[str, VariantState] | None = None,
    units: Mapping[str, UnitTotals] | None = None,
    cuped: bool = False,
) -> AnalysisReport:
    """The analysis report. ``variants`` is (name, weight) per variant; ``sequential_state``
    holds, per variant, what earlier looks left (kept by the store: the smallest mSPRT
    p-values and the intersected confidence sequences; each comparison's ``running``
    fields give the state after this look);
    ``units``, per variant, the totals over its units: with them the frequentist results
    count units, not requests (:mod:`.byunit`; ``cuped``: CUPED-adjusted)."""
    cfg = config or AnalysisConfig()
    conf = cfg.confidence_level if confidence_level is None else confidence_level
    alpha = round(1.0 - conf, 12)
    warnings = Warnings()
    weights = {name: w for name, w in variants}
    stats = {name: totals.get(name, VariantStats()) for name, _ in variants}
    _check_data(totals, stats, warnings)
    summaries = {name: _variant_summary(name, weights[name], stats[name]) for name in stats}
    c = stats[control]
    looks = {
        name: Look(cfg, conf, alpha, (sequential_state or {}).get(name, VariantState()),
                   warnings, f"{name} vs {control}")
        for name in stats
        if name != control
    }
    comparisons = {name: compare(c, stats[name], look) for name, look in looks.items()}
    comparisons, unit_info = by_unit(comparisons, stats, units, control, looks, warnings,
                                     cuped=cuped)
    comparisons = _adjust_across_variants(comparisons, alpha, cfg.multiple_testing)
    best = _compared_variant(comparisons, stats, control)
    srm = _srm(stats, weights, cfg, unit_info.units if unit_info.unit == UNIT else None)
    top = comparisons.get(best) or NO_COMPARISON
    power = plan_power(stats, weights, control, best, cfg, alpha, elapsed_seconds, warnings,
                       unit_info.design_effect.get(best))
    rec = (
        recommend(top, srm, power, cfg, control, best, c.count, stats[best].count)
        if best != control
        else NO_TREATMENT
    )
    return AnalysisReport(
        confidence_level=conf,
        alpha=alpha,
        decision_rule=cfg.decision_rule,
        control_variant=control,
        compared_variant=best,
        variants=summaries,
        top=top,
        srm=srm,
        power=power,
        comparisons=comparisons,
        recommendation=rec,
        warnings=list(warnings),
        units=unit_info,
    )


def _check_data(
    totals: Mapping[str, VariantStats], stats: Mapping[str, VariantStats], warnings: Warnings
) -> None:
    for name in totals:
        if name not in stats:
            warnings.add(f"traffic recorded for unknown variant {name!r} is ignored")
    for name, s in stats.items():
        if s.count == 0:
            warnings.add(f"variant {name!r} has no requests")
        if s.successes > s.count:
            warnings.add(f"variant {name!r} has more successes than requests (late outcomes)")
        rate = s.success_rate
        if rate is not None and rate in (0.0, 1.0) and s.count > 0:
            warnings.add(f"variant {name!r} has a success rate of {rate:.0%}")


def _compared_variant(
    comparisons: Mapping[str, Comparison], stats: Mapping[str, VariantStats], control: str
) -> str:
    """The variant the top level describes: ``treatment``, else the best success rate."""
    if "treatment" in comparisons:
        return "treatment"
    names = list(comparisons)
    return max(names, key=lambda n: stats[n].success_rate or 0.0) if names else control


def _variant_summary(name: str, weight: float, s: VariantStats) -> VariantSummary:
    lat = s.latency
    return VariantSummary(
        name=name,
        weight=weight,
        n=s.count,
        successes=s.successes,
        success_rate=s.success_rate,
        errors=s.errors,
        error_rate=s.error_rate,
        latency=LatencySummary(
            n=lat.count,
            mean=num(lat.mean),
            std=num(lat.std) if lat.count > 1 else None,
            p50=num(lat.quantile(0.5)),
            p95=num(lat.quantile(0.95)),
            p99=num(lat.quantile(0.99)),
        ),
        custom_metrics={
            k: MomentSummary(m.n, m.mean if m.n else None, m.std if m.n > 1 else None)
            for k, m in sorted(s.custom.items())
        },
        status_codes=dict(sorted(s.status_codes.items())),
    )


def _adjust_across_variants(
    comparisons: dict[str, Comparison], alpha: float, method: str
) -> dict[str, Comparison]:
    """Holm or Benjamini-Hochberg (``method``) across the non-control variants, for the
    fixed-horizon and the always-valid p-values; with several variants, significance is
    the adjusted one."""
    names = list(comparisons)
    p_values = [comparisons[n].p_value for n in names]
    adjusted = statistics.adjust([np.nan if p is None else p for p in p_values], method)
    seqs = [comparisons[n].sequential for n in names]
    seq_adjusted = statistics.adjust(
        [np.nan if s is None or s.p_value is None else s.p_value for s in seqs], method
    )
    out = {}
    for n, adj, seq, s_adj in zip(names, adjusted, seqs, seq_adjusted, strict=True):
        p_adj = num(adj)
        comp = replace(comparisons[n], p_value_adjusted=p_adj)
        if len(names) > 1:
            comp = replace(comp, statistically_significant=bool(p_adj is not None and adj < alpha),
                           sequential=adjust_sequential(seq, num(s_adj), alpha))
        elif seq is not None:
            comp = replace(comp, sequential=replace(seq, p_value_adjusted=seq.p_value))
        out[n] = comp
    return out


def _srm(
    stats: Mapping[str, VariantStats], weights: Mapping[str, float], cfg: AnalysisConfig,
    units: Mapping[str, int] | None = None,
) -> SampleRatioCheck:
    """Pearson's chi-square of the arm sizes (in units when given: the randomized
    observations) against the configured split."""
    observed = {n: (units.get(n, 0) if units is not None else stats[n].count) for n in stats}
    res = statistics.srm_chisquare([observed[n] for n in stats], [weights[n] for n in stats])
    p = num(res.p_value)
    return SampleRatioCheck(
        chi_square=num(res.statistic),
        df=res.df,
        p_value=p,
        detected=bool(p is not None and p < cfg.srm_threshold),
        threshold=cfg.srm_threshold,
        expected_shares=dict(weights),
        observed_counts=observed,
        unit=UNIT if units is not None else "request",
    )
