"""The health judge: one step window of the new version (and the stable) -> a verdict.

Threshold checks (the seed's ``RollbackConfig``) compare the new version with absolute
limits: error rate above ``error_rate_threshold``, or p95 latency above the baseline p95
times ``latency_threshold_multiplier``.

The optional statistical judge compares new vs stable on the *same* window, as automated
canary analysis does (Kayenta, Argo Rollouts' analysis), with two one-sided tests:

* errors: the pooled two-proportion z-test, H1 ``p_new > p_stable``::

      p = (x1 + x2) / (n1 + n2)
      z = (x1/n1 - x2/n2) / sqrt(p (1 - p) (1/n1 + 1/n2)),  p-value = 1 - Phi(z)

  (Fleiss, Levin & Paik, *Statistical Methods for Rates and Proportions*, 3rd ed., 2003,
  ch. 2; equals ``statsmodels.stats.proportion.proportions_ztest(...,
  alternative="larger")``).

* latency: the Mann-Whitney U test, H1 "new is stochastically larger", computed directly
  on the two latency histograms. The histogram's bucket is the observation (values in
  one bucket are ties), so for buckets b in increasing order::

      U1 = sum_b c1[b] * (C2[< b] + c2[b] / 2)          (pairs new > stable, ties half)
      mu = n1 n2 / 2
      sigma^2 = n1 n2 / 12 * ((n + 1) - sum_b (t_b^3 - t_b) / (n (n - 1)))
      z = (U1 - mu - 1/2) / sigma,  p-value = 1 - Phi(z)

  with t_b = c1[b] + c2[b] (Mann & Whitney, Ann. Math. Statist. 18(1), 1947; tie
  correction: Lehmann, *Nonparametrics: Statistical Methods Based on Ranks*, 1975,
  ch. 1; continuity correction 1/2).
  This equals ``scipy.stats.mannwhitneyu(x, y, alternative="greater",
  method="asymptotic")`` on the samples expanded to bucket indices. The effect size is
  ``A = U1 / (n1 n2)`` (Vargha & Delaney, J. Educ. Behav. Stat. 25(2), 2000):
  P(new > stable) + P(tie)/2.

Costs are O(buckets), independent of the request volume.

Outcomes: FAIL if a test finds the new version significantly worse (latency also needs
``A - 0.5 > latency_effect_threshold``), or a threshold is breached and the stable does
not share the problem; INCONCLUSIVE if a threshold is breached but the stable is not
significantly better (the fault may not be the new version's); WAIT below
``min_requests_before_check``; otherwise PASS.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from neural.mlops.server.deployments.model import PerformanceMetrics, RollbackConfig, Verdict
from neural.mlops.v1.traffic import LatencyHistogram, ShadowStats, VariantStats


def norm_sf(z: float) -> float:
    """Upper tail of the standard normal, 1 - Phi(z)."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


@dataclass(frozen=True, slots=True)
class TestResult:
    statistic: float
    p_value: float
    effect: float  # difference of proportions, or A - 0.5 for latency

    def to_dict(self) -> dict[str, float]:
        return {"statistic": self.statistic, "p_value": self.p_value, "effect": self.effect}


def two_proportion_ztest(x1: int, n1: int, x2: int, n2: int) -> TestResult:
    """One-sided pooled z-test of H1: x1/n1 > x2/n2 (see module docstring)."""
    if n1 <= 0 or n2 <= 0:
        return TestResult(0.0, 1.0, 0.0)
    p1, p2 = x1 / n1, x2 / n2
    pooled = (x1 + x2) / (n1 + n2)
    var = pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2)
    if var <= 0.0:
        # Both all-zero or both all-one: no evidence of any difference.
        return TestResult(0.0, 1.0, p1 - p2)
    z = (p1 - p2) / math.sqrt(var)
    return TestResult(z, norm_sf(z), p1 - p2)


def mann_whitney_histograms(new: LatencyHistogram, stable: LatencyHistogram) -> TestResult:
    """One-sided Mann-Whitney U of H1: new is stochastically larger (module docstring).

    ``statistic`` is U1 (the new version's U), ``effect`` is U1 / (n1 n2) - 0.5.
    """
    c1 = {b: c for b, c in new.counts.items() if c > 0}
    c2 = {b: c for b, c in stable.counts.items() if c > 0}
    n1, n2 = sum(c1.values()), sum(c2.values())
    if n1 == 0 or n2 == 0:
        return TestResult(0.0, 1.0, 0.0)
    u1 = 0.0
    below2 = 0
    tie_term = 0.0
    for b in sorted(set(c1) | set(c2)):
        a, s = c1.get(b, 0), c2.get(b, 0)
        u1 += a * (below2 + s / 2.0)
        below2 += s
        t = a + s
        tie_term += float(t) ** 3 - t
    n = n1 + n2
    mu = n1 * n2 / 2.0
    var = n1 * n2 / 12.0 * ((n + 1) - tie_term / (n * (n - 1)))
    effect = u1 / (n1 * n2) - 0.5
    if var <= 0.0:
        return TestResult(u1, 1.0, effect)
    z = (u1 - mu - 0.5) / math.sqrt(var)
    return TestResult(u1, norm_sf(z), effect)


def metrics_of(stats: VariantStats, seconds: float | None = None) -> PerformanceMetrics:
    """Performance summary of one variant's window."""
    h = stats.latency
    return PerformanceMetrics(
        latency_p50=h.quantile(0.50),
        latency_p95=h.quantile(0.95),
        latency_p99=h.quantile(0.99),
        latency_mean=h.mean,
        error_rate=stats.error_rate,
        throughput=(stats.count / seconds) if seconds and seconds > 0 else None,
        request_count=stats.count,
    )


def shadow_as_variant(stats: ShadowStats) -> VariantStats:
    """The shadow side of mirrored traffic as a variant window (errors, latency)."""
    n = max(stats.shadow_latency.count, stats.compared + stats.shadow_errors)
    return VariantStats(count=n, errors=stats.shadow_errors, successes=n - stats.shadow_errors,
                        latency=stats.shadow_latency)


@dataclass(slots=True)
class Judgement:
    verdict: Verdict
    reasons: list[str]
    new: PerformanceMetrics
    stable: PerformanceMetrics | None = None
    tests: dict[str, Any] = field(default_factory=dict)


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4g}"


def _breaches(config: RollbackConfig, baseline: PerformanceMetrics, new: PerformanceMetrics,
              agreement: tuple[int, int] | None) -> dict[str, str]:
    """The absolute limits ``new`` exceeds, by kind (error_rate, latency, agreement)."""
    n = new.request_count
    breaches: dict[str, str] = {}
    if new.error_rate is not None and new.error_rate > config.error_rate_threshold:
        breaches["error_rate"] = (
            f"error rate {new.error_rate:.4f} > threshold {config.error_rate_threshold:.4f} (n={n})"
        )
    base = baseline.latency_p95
    if new.latency_p95 is not None and base is not None and base > 0 and (
        new.latency_p95 > base * config.latency_threshold_multiplier
    ):
        limit = base * config.latency_threshold_multiplier
        breaches["latency"] = (
            f"latency p95 {new.latency_p95:.4f}s > {limit:.4f}s "
            f"({config.latency_threshold_multiplier:g}x baseline p95 {base:.4f}s)"
        )
    if agreement is not None and config.min_agreement_rate is not None and agreement[1] > 0:
        rate = agreement[0] / agreement[1]
        if rate < config.min_agreement_rate:
            breaches["agreement"] = (
                f"agreement rate {rate:.4f} < {config.min_agreement_rate:.4f} (n={agreement[1]})"
            )
    return breaches


def _regressions(config: RollbackConfig, new: PerformanceMetrics, stable: PerformanceMetrics | None,
                 new_stats: VariantStats, stable_stats: VariantStats,
                 tests: dict[str, Any]) -> dict[str, str]:
    """The statistical tests of new vs stable (written into ``tests``); the significant
    regressions, by kind."""
    err = two_proportion_ztest(new_stats.errors, new_stats.count,
                               stable_stats.errors, stable_stats.count)
    lat = mann_whitney_histograms(new_stats.latency, stable_stats.latency)
    tests["error_rate"] = {**err.to_dict(), "test": "two-proportion z (one-sided)"}
    tests["latency"] = {**lat.to_dict(), "test": "Mann-Whitney U on histograms (one-sided)"}
    regressions: dict[str, str] = {}
    if err.p_value < config.alpha and err.effect > 0:
        regressions["error_rate"] = (
            f"error rate {_fmt(new_stats.error_rate)} vs stable {_fmt(stable_stats.error_rate)} "
            f"is significantly higher (z={err.statistic:.3f}, p={err.p_value:.3g} "
            f"< {config.alpha:g})"
        )
    if lat.p_value < config.alpha and lat.effect > config.latency_effect_threshold:
        regressions["latency"] = (
            f"latency is significantly higher than stable (Mann-Whitney p={lat.p_value:.3g}, "
            f"P(new>stable)={lat.effect + 0.5:.3f}; p95 {_fmt(new.latency_p95)}s vs "
            f"{_fmt(stable.latency_p95 if stable else None)}s)"
        )
    return regressions


def judge(
    config: RollbackConfig,
    baseline: PerformanceMetrics,
    new: PerformanceMetrics,
    *,
    new_stats: VariantStats | None = None,
    stable_stats: VariantStats | None = None,
    agreement: tuple[int, int] | None = None,
) -> Judgement:
    """Judge one window. ``new`` holds the measured values (live or manual); the raw
    ``new_stats`` / ``stable_stats`` feed the statistical judge when it is enabled;
    ``agreement`` is ``(agreements, compared)`` of mirrored traffic."""
    n = new.request_count
    stable = metrics_of(stable_stats) if stable_stats is not None and stable_stats.count else None
    if n < config.min_requests_before_check:
        return Judgement(
            Verdict.WAIT,
            [f"{n} requests on the new version, {config.min_requests_before_check} needed "
             "before a check"],
            new, stable,
        )
    breaches = _breaches(config, baseline, new, agreement)
    tests: dict[str, Any] = {}
    if not config.statistical_judge:
        return _by_thresholds(breaches, new, stable, tests)
    if new_stats is None or stable_stats is None or (
        stable_stats.count < max(config.min_requests_before_check, 1)
    ):
        tests["note"] = "statistical judge skipped: the stable has too few requests in this window"
        return _by_thresholds(breaches, new, stable, tests)
    regressions = _regressions(config, new, stable, new_stats, stable_stats, tests)
    if regressions or (breaches.keys() & {"agreement"}):
        reasons = list(regressions.values())
        reasons += [b for k, b in breaches.items() if k not in regressions]
        return Judgement(Verdict.FAIL, reasons, new, stable, tests)
    if breaches:
        reasons = [f"{b}, but the stable is not significantly better on the same window"
                   for b in breaches.values()]
        return Judgement(Verdict.INCONCLUSIVE, reasons, new, stable, tests)
    return Judgement(Verdict.PASS, [], new, stable, tests)


def _by_thresholds(breaches: dict[str, str], new: PerformanceMetrics,
                   stable: PerformanceMetrics | None, tests: dict[str, Any]) -> Judgement:
    if breaches:
        return Judgement(Verdict.FAIL, list(breaches.values()), new, stable, tests)
    return Judgement(Verdict.PASS, [], new, stable, tests)
