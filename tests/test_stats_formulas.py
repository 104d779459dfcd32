"""Every formula of the statistics engine against scipy.stats / statsmodels, on many cases."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import integrate, stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    proportion_effectsize,
    proportions_ztest,
)
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from neural.mlops.server.experiments import bayes, sequential, statistics
from neural.mlops.server.experiments.analysis import AnalysisConfig, analyze
from neural.mlops.v1.traffic import Moments, VariantStats

RNG = np.random.default_rng(20260101)


def _close(a: float, b: float, rel: float = 1e-9, abs_: float = 1e-12) -> bool:
    return math.isclose(float(a), float(b), rel_tol=rel, abs_tol=abs_)


def test_pooled_ztest_and_wald_interval_match_statsmodels():
    for _ in range(300):
        n_c, n_t = RNG.integers(20, 200_000, size=2)
        p_c, p_t = RNG.uniform(0.01, 0.99, size=2)
        x_c, x_t = RNG.binomial(n_c, p_c), RNG.binomial(n_t, p_t)
        if x_c in (0, n_c) or x_t in (0, n_t):
            continue
        conf = float(RNG.choice([0.9, 0.95, 0.99]))
        ours = statistics.two_proportion_ztest(x_c, n_c, x_t, n_t, conf)
        z, p = proportions_ztest([x_t, x_c], [n_t, n_c])
        lo, hi = confint_proportions_2indep(
            x_t, n_t, x_c, n_c, method="wald", compare="diff", alpha=1 - conf
        )
        assert _close(ours.z, z) and _close(ours.p_value, p, abs_=1e-15)
        assert _close(ours.ci_low, lo) and _close(ours.ci_high, hi)


def test_relative_lift_interval_is_the_katz_log_ratio_interval_of_statsmodels():
    for _ in range(200):
        n_c, n_t = RNG.integers(50, 10**6, size=2)
        x_c = RNG.binomial(n_c, RNG.uniform(0.01, 0.9))
        x_t = RNG.binomial(n_t, RNG.uniform(0.01, 0.9))
        if 0 in (x_c, x_t) or x_c == n_c or x_t == n_t:
            continue
        lo, hi = statistics.ratio_ci_log(x_c, n_c, x_t, n_t, 0.95)
        ref = confint_proportions_2indep(
            x_t, n_t, x_c, n_c, method="log", compare="ratio", alpha=0.05
        )
        assert _close(lo, ref[0]) and _close(hi, ref[1])


def test_vectorised_ztest_equals_scalar_calls():
    n = RNG.integers(100, 5000, size=50)
    x_c, x_t = RNG.binomial(n, 0.3), RNG.binomial(n, 0.32)
    vec = statistics.two_proportion_ztest(x_c, n, x_t, n)
    for i in range(50):
        one = statistics.two_proportion_ztest(x_c[i], n[i], x_t[i], n[i])
        assert vec.p_value[i] == one.p_value


def test_welch_from_moments_matches_scipy_and_statsmodels_on_raw_data():
    for _ in range(200):
        n_c, n_t = RNG.integers(2, 3000, size=2)
        a = RNG.normal(RNG.uniform(-5, 5), RNG.uniform(0.1, 10), size=n_c)
        b = RNG.normal(RNG.uniform(-5, 5), RNG.uniform(0.1, 10), size=n_t)
        mc, mt = Moments.of(a), Moments.of(b)
        conf = float(RNG.choice([0.9, 0.95, 0.99]))
        ours = statistics.welch_ttest(
            mc.n, mc.sum, mc.sum_squares, mt.n, mt.sum, mt.sum_squares, conf
        )
        ref = stats.ttest_ind(b, a, equal_var=False)
        lo, hi = CompareMeans(DescrStatsW(b), DescrStatsW(a)).tconfint_diff(
            alpha=1 - conf, usevar="unequal"
        )
        assert _close(ours.t, ref.statistic, rel=1e-7)
        assert _close(ours.p_value, ref.pvalue, rel=1e-7, abs_=1e-14)
        assert _close(ours.ci_low, lo, rel=1e-7) and _close(ours.ci_high, hi, rel=1e-7)
        from_stats = stats.ttest_ind_from_stats(
            mt.mean, mt.std, mt.n, mc.mean, mc.std, mc.n, equal_var=False
        )
        assert _close(ours.p_value, from_stats.pvalue, rel=1e-9, abs_=1e-15)


def test_holm_matches_statsmodels():
    for _ in range(30):  # statsmodels' multipletests costs ~0.1 s per call here
        p = RNG.uniform(0, 1, size=RNG.integers(1, 12)) ** RNG.uniform(1, 6)
        expected = multipletests(p, method="holm")[1]
        assert np.allclose(statistics.holm(p), expected, rtol=1e-12, atol=0)


def test_srm_chisquare_matches_scipy():
    for _ in range(200):
        k = int(RNG.integers(2, 6))
        w = RNG.dirichlet(np.ones(k))
        obs = RNG.multinomial(int(RNG.integers(50, 10**6)), w)
        ours = statistics.srm_chisquare(obs, w)
        ref = stats.chisquare(obs, f_exp=obs.sum() * w)
        assert _close(ours.statistic, ref.statistic) and _close(
            ours.p_value, ref.pvalue, abs_=1e-15
        )


def test_power_and_sample_size_match_statsmodels():
    solver = NormalIndPower()
    for _ in range(60):
        p_c = float(RNG.uniform(0.02, 0.9))
        p_t = min(p_c * (1 + float(RNG.uniform(0.02, 0.5))), 0.99)
        ratio = float(RNG.uniform(0.05, 4))
        alpha = float(RNG.choice([0.01, 0.05, 0.1]))
        h = statistics.cohens_h(p_t, p_c)
        assert _close(h, proportion_effectsize(p_t, p_c), rel=1e-12)
        n = float(RNG.uniform(50, 10**6))
        assert _close(
            statistics.power_two_proportions(h, n, ratio, alpha),
            solver.power(h, n, alpha, ratio=ratio),
            rel=1e-10,
        )
        ours = statistics.sample_size_two_proportions(h, ratio, alpha, 0.8)
        ref = solver.solve_power(h, nobs1=None, alpha=alpha, power=0.8, ratio=ratio)
        assert _close(ours, ref, rel=1e-6)
        assert _close(statistics.power_two_proportions(h, ours, ratio, alpha), 0.8, rel=1e-10)


def _reference_bayes(x_c: int, n_c: int, x_t: int, n_t: int) -> tuple[float, float, float]:
    pc = stats.beta(1 + x_c, 1 + n_c - x_c)
    pt = stats.beta(1 + x_t, 1 + n_t - x_t)
    pt_shift = stats.beta(2 + x_t, 1 + n_t - x_t)
    lo = min(pc.ppf(1e-12), pt.ppf(1e-12))
    hi = max(pc.isf(1e-12), pt.isf(1e-12))
    pts = [pc.mean(), pt.mean()]
    beat = integrate.quad(
        lambda x: pc.pdf(x) * pt.sf(x), lo, hi, points=pts, epsabs=1e-13, limit=500
    )[0]
    # E[max(C - T, 0)] = integral of pc.pdf(x) * E[max(x - T, 0)]
    loss = integrate.quad(
        lambda x: pc.pdf(x) * (x * pt.cdf(x) - pt.mean() * pt_shift.cdf(x)),
        lo, hi, points=pts, epsabs=1e-13, limit=500,
    )[0]
    return beat, loss, loss - (pc.mean() - pt.mean())


def test_bayesian_chance_and_loss_match_numerical_integration():
    for _ in range(20):
        n_c, n_t = (int(v) for v in RNG.integers(5, 50_000, size=2))
        x_c = int(RNG.binomial(n_c, RNG.uniform(0.01, 0.9)))
        x_t = int(RNG.binomial(n_t, RNG.uniform(0.01, 0.9)))
        ours = bayes.beta_compare(x_c, n_c, x_t, n_t)
        beat, loss_ship, loss_keep = _reference_bayes(x_c, n_c, x_t, n_t)
        assert abs(ours.chance_to_beat_control - beat) < 1e-7
        assert abs(ours.expected_loss_ship_treatment - loss_ship) < 1e-8
        assert abs(ours.expected_loss_keep_control - loss_keep) < 1e-8


def test_bayesian_is_flat_and_sane_at_huge_counts():
    r = bayes.beta_compare(10**7, 10**8, 10**7 + 3000, 10**8)
    d = stats.norm(3000 / 10**8, math.sqrt(2 * 0.1 * 0.9 / 10**8))
    assert abs(r.chance_to_beat_control - d.sf(0)) < 1e-3


def test_msprt_matches_its_closed_form_and_covers():
    x_c, n_c, x_t, n_t, tau = 480, 5000, 560, 5100, 0.02
    res = sequential.msprt_proportions(x_c, n_c, x_t, n_t, 0.05, sequential.Mixture(tau=tau))
    p_c, p_t = x_c / n_c, x_t / n_t
    v = p_c * (1 - p_c) / n_c + p_t * (1 - p_t) / n_t  # unpooled: the interval must cover
    theta = x_t / n_t - x_c / n_c
    lam = math.sqrt(v / (v + tau**2)) * math.exp(tau**2 * theta**2 / (2 * v * (v + tau**2)))
    assert _close(res.p_value, min(1.0, 1 / lam))
    # The confidence sequence is exactly the set of theta0 the mixture test does not reject.
    for theta0 in (res.ci_low, res.ci_high):
        lam0 = math.sqrt(v / (v + tau**2)) * math.exp(
            tau**2 * (theta - theta0) ** 2 / (2 * v * (v + tau**2))
        )
        assert _close(lam0, 1 / 0.05, rel=1e-9)


def test_aa_simulation_false_positive_rate_is_nominal():
    """1,000 A/A tests at alpha = 0.05: the fixed-horizon z-test rejects 3-7% of them."""
    rng = np.random.default_rng(42)
    n = 4000
    x_c = rng.binomial(n, 0.1, size=1000)
    x_t = rng.binomial(n, 0.1, size=1000)
    fpr = float(np.mean(statistics.two_proportion_ztest(x_c, n, x_t, n).p_value < 0.05))
    assert 0.03 <= fpr <= 0.07
    # Welch on a continuous metric from its moments only, same simulation size.
    a = rng.normal(10, 3, size=(1000, 500))
    b = rng.normal(10, 3, size=(1000, 500))
    w = statistics.welch_ttest(500, a.sum(1), (a**2).sum(1), 500, b.sum(1), (b**2).sum(1))
    assert 0.03 <= float(np.mean(w.p_value < 0.05)) <= 0.07


def test_aa_simulation_sequential_stays_valid_under_peeking_every_100_samples():
    rng = np.random.default_rng(7)
    tests, peeks, step = 1000, 100, 100  # up to 10,000 units per arm, a look every 100
    inc_c = rng.binomial(step, 0.1, size=(tests, peeks)).cumsum(axis=1)
    inc_t = rng.binomial(step, 0.1, size=(tests, peeks)).cumsum(axis=1)
    n = np.arange(1, peeks + 1) * step
    seq = sequential.msprt_proportions(inc_c, n, inc_t, n, 0.05)
    ever_seq = np.nanmin(seq.p_value, axis=1) <= 0.05
    assert float(ever_seq.mean()) <= 0.05
    # ...while the naive fixed-horizon test, peeked at just as often, is badly inflated.
    naive = statistics.two_proportion_ztest(inc_c, n, inc_t, n).p_value
    assert float((np.nanmin(naive, axis=1) < 0.05).mean()) > 0.15


def test_sequential_detects_a_real_effect():
    rng = np.random.default_rng(3)
    step, peeks = 500, 60
    c = rng.binomial(step, 0.10, size=(200, peeks)).cumsum(axis=1)
    t = rng.binomial(step, 0.13, size=(200, peeks)).cumsum(axis=1)
    n = np.arange(1, peeks + 1) * step
    p = sequential.msprt_proportions(c, n, t, n, 0.05).p_value
    assert float((np.nanmin(p, axis=1) <= 0.05).mean()) > 0.9


def _vs(
    n: int, successes: int, latencies: list[float] | None = None, custom: dict | None = None
) -> VariantStats:
    s = VariantStats(count=n, successes=successes)
    for x in latencies or []:
        s.latency.add(x)
    for k, vals in (custom or {}).items():
        s.custom[k] = Moments.of(vals)
    return s


@pytest.mark.parametrize(
    "totals",
    [
        {},
        {"control": _vs(0, 0)},
        {"control": _vs(100, 30)},
        {"control": _vs(100, 100), "treatment": _vs(90, 90)},
        {"control": _vs(100, 0), "treatment": _vs(90, 0)},
        {"control": _vs(1, 1, [0.1]), "treatment": _vs(1, 0, [0.2])},
        {
            "control": _vs(10, 5, [0.1] * 10, {"acc": [1.0] * 10}),
            "treatment": _vs(10, 6, [0.1] * 10, {"acc": [1.0] * 10}),
        },
        {"control": _vs(10, 12), "treatment": _vs(10, 3), "ghost": _vs(5, 1)},
    ],
)
def test_degenerate_data_gives_json_safe_answers_with_warnings(totals):
    for rule in ("fixed_horizon", "sequential"):
        report = analyze(
            [("treatment", 0.5), ("control", 0.5)],
            totals,
            control="control",
            config=AnalysisConfig(decision_rule=rule),
            elapsed_seconds=60.0,
        )
        json.dumps(report, allow_nan=False)
        assert report["recommendation"]["action"] in {
            "ship_treatment",
            "keep_control",
            "keep_running",
            "stop",
        }
        assert report["recommendation"]["reason"]
        for key in (
            "control",
            "treatment",
            "p_value",
            "statistically_significant",
            "improvement",
            "metrics",
            "srm",
            "power",
            "sequential",
            "bayesian",
        ):
            assert key in report
        if totals.get("control", VariantStats()).count == 0:
            assert report["warnings"]


def test_analysis_recommends_ship_only_at_planned_size_and_stops_on_srm():
    cfg = AnalysisConfig(minimum_detectable_effect=0.2)
    weights = [("treatment", 0.5), ("control", 0.5)]
    small = analyze(
        weights, {"control": _vs(500, 50), "treatment": _vs(500, 80)}, control="control", config=cfg
    )
    assert (
        small["statistically_significant"] and small["recommendation"]["action"] == "keep_running"
    )
    big = analyze(
        weights,
        {"control": _vs(20000, 2000), "treatment": _vs(20000, 2400)},
        control="control",
        config=cfg,
    )
    assert big["recommendation"]["action"] == "ship_treatment"
    assert big["recommendation"]["winner"] == "treatment"
    assert _close(big["improvement"]["relative_improvement"], 20.0)
    srm = analyze(
        weights,
        {"control": _vs(20000, 2000), "treatment": _vs(18000, 1800)},
        control="control",
        config=cfg,
    )
    assert srm["srm"]["detected"] and srm["recommendation"]["action"] == "stop"
    seq = analyze(
        weights,
        {"control": _vs(3000, 300), "treatment": _vs(3000, 420)},
        control="control",
        config=AnalysisConfig(decision_rule="sequential"),
    )
    assert seq["sequential"]["statistically_significant"]
    assert seq["recommendation"]["action"] == "ship_treatment"


def test_guardrails_flag_worse_latency_and_error_rate_and_error_rate_uses_the_z_test():
    c = VariantStats(count=20000, successes=2000, errors=200)
    t = VariantStats(count=20000, successes=2400, errors=500)
    for _ in range(50):
        c.latency.add(0.020)
        c.latency.add(0.022)
        t.latency.add(0.030)
        t.latency.add(0.032)
    report = analyze([("treatment", 0.5), ("control", 0.5)], {"control": c, "treatment": t},
                     control="control", config=AnalysisConfig(minimum_detectable_effect=0.2))
    z, p = proportions_ztest([500, 200], [20000, 20000])
    assert _close(report["metrics"]["error_rate"]["p_value"], p) and _close(
        report["metrics"]["error_rate"]["z_score"], z
    )
    rec = report["recommendation"]
    assert rec["action"] == "ship_treatment"
    assert any(g.startswith("latency") for g in rec["guardrails"])
    assert any(g.startswith("error_rate") for g in rec["guardrails"])
    assert "guardrail" in rec["reason"]
