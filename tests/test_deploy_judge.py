"""The health judge: its tests agree with scipy/statsmodels, its verdicts follow the config."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.proportion import proportions_ztest

from neural.mlops.server.deployments.judge import (
    judge,
    mann_whitney_histograms,
    metrics_of,
    two_proportion_ztest,
)
from neural.mlops.server.deployments.model import PerformanceMetrics, RollbackConfig, Verdict
from neural.mlops.v1.traffic import LatencyHistogram, VariantStats, latency_bucket


def _hist(values: np.ndarray) -> LatencyHistogram:
    h = LatencyHistogram()
    for x in values:
        h.add(float(x))
    return h


def _expanded(h: LatencyHistogram) -> np.ndarray:
    """The histogram as a sample of bucket indices (values in one bucket are ties)."""
    return np.repeat(np.array(sorted(h.counts)), [h.counts[b] for b in sorted(h.counts)])


@pytest.mark.parametrize("seed", range(40))
def test_mann_whitney_on_histograms_equals_scipy_on_expanded_samples(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n1, n2 = rng.integers(5, 400, size=2)
    shift = rng.choice([1.0, 1.0, 1.05, 1.3, 0.9])
    new = _hist(rng.lognormal(np.log(0.03), 0.4, n1) * shift)
    stable = _hist(rng.lognormal(np.log(0.03), 0.4, n2))
    ours = mann_whitney_histograms(new, stable)
    ref = stats.mannwhitneyu(_expanded(new), _expanded(stable), alternative="greater",
                             method="asymptotic", use_continuity=True)
    assert ours.statistic == pytest.approx(ref.statistic, rel=1e-12, abs=1e-9)
    assert ours.p_value == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-12)
    assert ours.effect == pytest.approx(ref.statistic / (n1 * n2) - 0.5, abs=1e-12)


def test_expanded_sample_of_bucket_indices_matches_the_histogram_bucketing() -> None:
    values = np.array([0.001, 0.0011, 0.01, 0.5])
    h = _hist(values)
    assert sorted(_expanded(h).tolist()) == sorted(latency_bucket(float(x)) for x in values)


@pytest.mark.parametrize(
    "x1,n1,x2,n2",
    [
        (50, 1000, 10, 1000),
        (3, 200, 2, 5000),
        (0, 100, 1, 100),
        (12, 345, 12, 345),
        (999, 1000, 990, 1000),
        (1, 10, 0, 10),
        (40, 2000, 100, 10000),
    ],
)
def test_two_proportion_ztest_equals_statsmodels(x1: int, n1: int, x2: int, n2: int) -> None:
    ours = two_proportion_ztest(x1, n1, x2, n2)
    z, p = proportions_ztest([x1, x2], [n1, n2], alternative="larger")
    assert ours.statistic == pytest.approx(z, rel=1e-12)
    assert ours.p_value == pytest.approx(p, rel=1e-9, abs=1e-15)


def test_degenerate_inputs_give_no_evidence() -> None:
    assert two_proportion_ztest(0, 100, 0, 100).p_value == 1.0
    assert two_proportion_ztest(5, 0, 0, 10).p_value == 1.0
    assert mann_whitney_histograms(LatencyHistogram(), _hist(np.array([0.1]))).p_value == 1.0
    same = _hist(np.full(50, 0.02))
    assert mann_whitney_histograms(same, same).p_value == 1.0  # all tied


def _variant(
    n: int, errors: int, latency: float, spread: float = 0.2, seed: int = 0
) -> VariantStats:
    rng = np.random.default_rng(seed)
    vs = VariantStats()
    for i, x in enumerate(rng.lognormal(np.log(latency), spread, n)):
        vs.observe(latency=float(x), error=i < errors, success=i >= errors)
    return vs


BASE = PerformanceMetrics(latency_p95=0.050, error_rate=0.001)


def test_seed_thresholds_fail_on_latency_and_pass_below() -> None:
    cfg = RollbackConfig(
        error_rate_threshold=0.01, latency_threshold_multiplier=1.5, min_requests_before_check=1000
    )
    bad = judge(
        cfg, BASE, PerformanceMetrics(latency_p95=0.080, error_rate=0.005, request_count=2000)
    )
    assert bad.verdict is Verdict.FAIL
    assert bad.reasons == ["latency p95 0.0800s > 0.0750s (1.5x baseline p95 0.0500s)"]
    ok = judge(
        cfg, BASE, PerformanceMetrics(latency_p95=0.070, error_rate=0.009, request_count=2000)
    )
    assert ok.verdict is Verdict.PASS and ok.reasons == []
    few = judge(cfg, BASE, PerformanceMetrics(latency_p95=0.5, error_rate=0.5, request_count=999))
    assert few.verdict is Verdict.WAIT


def test_statistical_judge_fails_a_significant_error_regression_below_the_threshold() -> None:
    cfg = RollbackConfig(
        error_rate_threshold=0.05, min_requests_before_check=100, statistical_judge=True
    )
    new, stable = _variant(4000, 80, 0.03, seed=1), _variant(4000, 8, 0.03, seed=2)  # 2 % vs 0.2 %
    j = judge(cfg, BASE, metrics_of(new), new_stats=new, stable_stats=stable)
    assert j.verdict is Verdict.FAIL
    assert j.tests["error_rate"]["p_value"] < 1e-6
    assert "significantly higher" in j.reasons[0]


def test_statistical_judge_is_inconclusive_when_the_stable_shares_the_breach() -> None:
    cfg = RollbackConfig(
        error_rate_threshold=0.01, min_requests_before_check=100, statistical_judge=True
    )
    new, stable = _variant(2000, 40, 0.03, seed=3), _variant(2000, 41, 0.03, seed=4)  # both 2 %
    j = judge(cfg, BASE, metrics_of(new), new_stats=new, stable_stats=stable)
    assert j.verdict is Verdict.INCONCLUSIVE
    assert "not significantly better" in j.reasons[0]


def test_statistical_judge_fails_a_latency_shift_and_passes_equal_latency() -> None:
    cfg = RollbackConfig(min_requests_before_check=100, statistical_judge=True)
    slow, stable = _variant(1500, 0, 0.036, seed=5), _variant(1500, 0, 0.030, seed=6)
    j = judge(
        cfg,
        PerformanceMetrics(latency_p95=0.1),
        metrics_of(slow),
        new_stats=slow,
        stable_stats=stable,
    )
    assert j.verdict is Verdict.FAIL and "Mann-Whitney" in j.reasons[0]
    same = _variant(1500, 0, 0.030, seed=7)
    j = judge(
        cfg,
        PerformanceMetrics(latency_p95=0.1),
        metrics_of(same),
        new_stats=same,
        stable_stats=stable,
    )
    assert j.verdict is Verdict.PASS
