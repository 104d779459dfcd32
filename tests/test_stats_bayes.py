"""Bayesian results: Beta posteriors kept precise when skewed, and gbstats' Gaussian effect
model (absolute and relative, flat or proper prior) for rates and continuous metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

from neural.mlops.server.experiments import bayes
from neural.mlops.server.experiments.analysis import AnalysisConfig, build_report
from neural.mlops.v1.traffic import Moments, VariantStats

WEIGHTS = [("treatment", 0.5), ("control", 0.5)]


def test_identical_skewed_posteriors_give_exactly_even_chances():
    for n in (500, 50_000):
        r = bayes.beta_compare(0, n, 0, n)
        assert abs(r.chance_to_beat_control - 0.5) < 1e-10
        assert abs(r.expected_loss_ship_treatment - r.expected_loss_keep_control) < 1e-15


@pytest.mark.parametrize(("x_c", "n_c", "x_t", "n_t"), [(1, 10**6, 0, 10**6), (0, 500, 2, 400),
                                                        (499, 500, 500, 500)])
def test_skewed_posteriors_match_numerical_integration(x_c, n_c, x_t, n_t):
    c = stats.beta(1 + x_c, 1 + n_c - x_c)
    t = stats.beta(1 + x_t, 1 + n_t - x_t)
    lo, hi = min(c.ppf(1e-15), t.ppf(1e-15)), max(c.isf(1e-15), t.isf(1e-15))
    beat = integrate.quad(lambda y: t.pdf(y) * c.cdf(y), lo, hi, epsabs=1e-14, limit=500,
                          points=[c.mean(), t.mean()])[0]
    assert abs(bayes.beta_compare(x_c, n_c, x_t, n_t).chance_to_beat_control - beat) < 1e-9


def _reference(estimate, variance, prior_mean, prior_sd, alpha):
    """gbstats EffectBayesianABTest, written out with scipy.stats."""
    if prior_sd > 0:
        prec = 1 / variance + 1 / prior_sd**2
        mean = (estimate / variance + prior_mean / prior_sd**2) / prec
    else:
        prec, mean = 1 / variance, estimate
    sd = math.sqrt(1 / prec)
    post = stats.norm(mean, sd)
    p_neg = post.cdf(0)
    upper = stats.truncnorm(-mean / sd, np.inf, loc=mean, scale=sd).mean()
    lower = stats.truncnorm(-np.inf, -mean / sd, loc=mean, scale=sd).mean()
    return {
        "mean": mean, "sd": sd, "ci": post.ppf([alpha / 2, 1 - alpha / 2]),
        "chance": post.sf(0), "risk_keep": (1 - p_neg) * upper, "risk_ship": -p_neg * lower,
    }


@pytest.mark.parametrize("prior", [(0.0, 0.0), (0.02, 0.3), (-0.1, 0.05)])
@pytest.mark.parametrize("relative", [False, True])
def test_gaussian_effect_matches_gbstats_formulas(prior, relative):
    rng = np.random.default_rng(4)
    for _ in range(10):
        n_c, n_t = (int(v) for v in rng.integers(200, 20_000, size=2))
        m_c, m_t = rng.uniform(0.5, 2.0, size=2)
        v_c, v_t = rng.uniform(0.1, 3.0, size=2)
        f = bayes.relative_effect if relative else bayes.absolute_effect
        est, var = f(m_c, v_c, n_c, m_t, v_t, n_t)
        scale = 1.0 if relative else m_c
        ours = bayes.gaussian_effect(est, var, bayes.GaussianPrior(*prior), 0.05, scale)
        ref = _reference(est, var, prior[0] * scale, prior[1] * scale, 0.05)
        assert math.isclose(ours.mean, ref["mean"], rel_tol=1e-12, abs_tol=1e-15)
        assert math.isclose(ours.sd, ref["sd"], rel_tol=1e-12)
        assert np.allclose([ours.ci_low, ours.ci_high], ref["ci"], rtol=1e-12, atol=1e-15)
        assert math.isclose(ours.chance_positive, ref["chance"], rel_tol=1e-9, abs_tol=1e-15)
        assert math.isclose(
            ours.loss_if_negative_assumed, ref["risk_keep"], rel_tol=1e-7, abs_tol=1e-13
        )
        assert math.isclose(
            ours.loss_if_positive_assumed, ref["risk_ship"], rel_tol=1e-7, abs_tol=1e-13
        )
    if relative:
        assert math.isclose(est, (m_t - m_c) / m_c)
        assert math.isclose(var, v_t / (m_c**2 * n_t) + v_c * m_t**2 / (m_c**4 * n_c))


def test_gaussian_effect_agrees_with_gbstats_itself():
    gb = pytest.importorskip("gbstats.bayesian.tests", reason="gbstats not installed")
    from gbstats.models.statistics import SampleMeanStatistic

    a = SampleMeanStatistic(n=1000, sum=5000.0, sum_squares=5000.0**2 / 1000 + 999 * 4)
    b = SampleMeanStatistic(n=900, sum=4600.0, sum_squares=4600.0**2 / 900 + 899 * 5)
    for kind, f, scale in (("relative", bayes.relative_effect, 1.0),
                           ("absolute", bayes.absolute_effect, a.mean)):
        config = gb.EffectBayesianConfig(
            difference_type=kind, prior_effect=gb.GaussianPrior(0.01, 0.3**2, True)
        )
        r = gb.EffectBayesianABTest(a, b, config).compute_result()
        est, var = f(a.mean, a.variance, a.n, b.mean, b.variance, b.n)
        ours = bayes.gaussian_effect(est, var, bayes.GaussianPrior(0.01, 0.3), 0.05, scale)
        assert math.isclose(ours.chance_positive, r.chance_to_win, rel_tol=1e-9)
        assert np.allclose([ours.ci_low, ours.ci_high], r.ci, rtol=1e-9)
        assert np.allclose([ours.loss_if_negative_assumed, ours.loss_if_positive_assumed], r.risk,
                           rtol=1e-9)


def test_report_has_credible_intervals_for_the_rate_lift_and_continuous_metrics():
    rng = np.random.default_rng(9)
    c, t = VariantStats(count=4000, successes=400), VariantStats(count=4000, successes=480)
    c.custom["revenue"] = Moments.of(rng.normal(10.0, 3.0, 4000))
    t.custom["revenue"] = Moments.of(rng.normal(10.3, 3.0, 4000))
    for v in rng.lognormal(-3, 0.5, 1000):
        c.latency.add(float(v))
        t.latency.add(float(v) * 1.1)
    flat = build_report(WEIGHTS, {"control": c, "treatment": t}, control="control").to_dict()
    prior = AnalysisConfig(prior_mean=0.0, prior_sd=0.01)
    shrunk = build_report(WEIGHTS, {"control": c, "treatment": t}, control="control",
                          config=prior).to_dict()
    rel = flat["bayesian"]["relative"]
    assert rel["prior"] == "flat" and math.isclose(rel["mean"], 20.0)
    lo, hi = rel["credible_interval"]
    assert lo < 20.0 < hi and rel["chance_to_beat_control"] > 0.99
    # a tight N(0, 1%^2) prior on the lift pulls the posterior towards 0
    assert 0 < shrunk["bayesian"]["relative"]["mean"] < rel["mean"]
    assert "N(0, 0.01^2)" in shrunk["bayesian"]["relative"]["prior"]
    revenue = flat["metrics"]["revenue"]["bayesian"]
    assert revenue["absolute"]["chance_of_increase"] > 0.9
    lo, hi = revenue["absolute"]["credible_interval"]
    assert lo < flat["metrics"]["revenue"]["difference"] < hi
    latency = flat["metrics"]["latency"]["bayesian"]["relative"]
    assert latency["credible_interval"][0] > 0  # treatment is 10% slower, in percent
