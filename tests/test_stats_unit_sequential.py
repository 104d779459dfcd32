"""The sequential and Bayesian views and the sample-size plan by unit, on clustered traffic.

Users (the unit assignment hashes) send a geometric number of requests (mean 20), spread
uniformly over the test, with a per-user success probability Beta(1, 9); the test is
looked at every few hundred requests. Counting requests as independent, the always-valid
p-value reaches alpha at some look far more often than alpha; with the by-unit
(delta-method) variances it stays at or below it.
"""

from __future__ import annotations

import math

import numpy as np

from neural.mlops.server.experiments import ratio, sequential
from neural.mlops.server.experiments.analysis import AnalysisConfig, build_report
from neural.mlops.server.experiments.byunit import GAUSSIAN_BY_UNIT
from neural.mlops.server.experiments.sequential import Mixture, VariantState
from neural.mlops.server.experiments.unitstats import aggregate
from neural.mlops.v1.traffic import VariantStats

ALPHA = 0.05
RUNS = 600
USERS = 600  # per run (~12,000 requests), each to either arm with probability 1/2
LOOKS = 30  # one every ~400 requests
WEIGHTS = [("treatment", 0.5), ("control", 0.5)]
SEQ = AnalysisConfig(decision_rule="sequential")


def _traffic(rng: np.random.Generator, runs: int, users: int, looks: int
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per user: treated or not (runs, users); cumulative requests and successes at each
    look (runs, users, looks)."""
    n = rng.geometric(1 / 20, size=(runs, users))
    p = rng.beta(1.0, 9.0, size=(runs, users))
    treated = rng.random((runs, users)) < 0.5
    per_look = rng.multinomial(n, np.full(looks, 1.0 / looks))  # uniform request times
    successes = rng.binomial(per_look, p[..., None])
    return treated, per_look.cumsum(axis=2), successes.cumsum(axis=2)


def _sums(arm: np.ndarray, y: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, ...]:
    """One arm's units, sum x, x^2, y, y^2, x y at each look (runs, looks): the fields of
    the store's per-unit totals (a unit counts once it has sent a request)."""
    m = arm[..., None]
    y, x = y.astype(float), x.astype(float)
    return tuple((v * m).sum(axis=1) for v in ((y > 0) * 1.0, x, x * x, y, y * y, x * y))


def _first_hit(p: np.ndarray) -> np.ndarray:
    """Per run: the always-valid p-value reached alpha at some look."""
    return np.nanmin(np.where(np.isnan(p), 1.0, p), axis=1) <= ALPHA


def _false_positive_rates(tuning_units: float, tuning_requests: float) -> tuple[float, float]:
    rng = np.random.default_rng(20240601)
    by_unit = by_request = 0
    for _ in range(RUNS // 100):  # batches bound the memory (~15 MB per array)
        treated, y, x = _traffic(rng, 100, USERS, LOOKS)
        c, t = _sums(~treated, y, x), _sums(treated, y, x)
        r_c, v_c = ratio.delta(*c)
        r_t, v_t = ratio.delta(*t)
        events = np.minimum.reduce([c[1], c[3] - c[1], t[1], t[3] - t[1]])
        unit = sequential.msprt_by_unit(r_t - r_c, v_c + v_t, c[0], t[0], ALPHA,
                                        Mixture(tuning_units),
                                        events >= sequential.MIN_EVENTS)
        request = sequential.msprt_proportions(c[1], c[3], t[1], t[3], ALPHA,
                                               Mixture(tuning_requests))
        by_unit += int(_first_hit(unit.p_value).sum())
        by_request += int(_first_hit(request.p_value).sum())
    return by_unit / RUNS, by_request / RUNS


def test_aa_sequential_false_positive_rate_by_unit_and_far_above_by_request():
    """The default mixture (n* = 5,000) and one tuned to the planned size (600 units,
    12,000 requests), under which the request-level test is at its least conservative."""
    default = _false_positive_rates(sequential.DEFAULT_TUNING, sequential.DEFAULT_TUNING)
    tuned = _false_positive_rates(USERS, 20 * USERS)
    for name, (unit, request) in (("default n*", default), ("n* = planned size", tuned)):
        print(f"\nA/A sequential, {RUNS} runs of {USERS} users (geometric requests, mean 20), "
              f"{LOOKS} looks, {name}: false positive rate by unit = {unit:.4f}, "
              f"by request = {request:.4f} (alpha = {ALPHA})")
    assert default[0] <= 0.065 and tuned[0] <= 0.065
    assert tuned[1] > 0.12 and tuned[1] > 4 * max(tuned[0], 0.01)
    assert default[1] > 2 * max(default[0], 0.01)


def _report(treated, y, x, look, state, cfg=SEQ):
    arms = {"treatment": treated, "control": ~treated}
    stats, units = {}, {}
    for name, arm in arms.items():
        active = arm & (y[:, look] > 0)
        n, s = y[active, look], x[active, look]
        stats[name] = VariantStats(count=int(n.sum()), successes=int(s.sum()))
        units[name] = aggregate(n, s)
    return build_report(WEIGHTS, stats, control="control", config=cfg,
                        sequential_state=state, units=units)


def test_the_report_takes_its_sequential_look_by_unit_and_keeps_the_running_minimum():
    """Look after look through the product's report (state carried as the store does):
    the always-valid p-value is the running minimum of the vectorised by-unit p-values
    above, never the request-level ones."""
    rng = np.random.default_rng(3)
    treated, y, x = _traffic(rng, 2, 400, 12)
    c, t = _sums(~treated, y, x), _sums(treated, y, x)
    r_c, v_c = ratio.delta(*c)
    r_t, v_t = ratio.delta(*t)
    events = np.minimum.reduce([c[1], c[3] - c[1], t[1], t[3] - t[1]])
    expected = sequential.msprt_by_unit(r_t - r_c, v_c + v_t, c[0], t[0], ALPHA,
                                        SEQ.mixture(), events >= sequential.MIN_EVENTS)
    for run in range(2):
        state: dict[str, VariantState] = {}
        running = 1.0
        for look in range(12):
            rep = _report(treated[run], y[run], x[run], look, state)
            assert rep.units.unit == "unit"
            p = float(expected.p_value[run, look])
            running = min(running, p) if not math.isnan(p) else running
            seq = rep.top.sequential
            assert seq is not None and seq.p_value is not None
            assert math.isclose(seq.p_value, running, rel_tol=1e-9)
            if not math.isnan(p):
                assert math.isclose(seq.p_value_current or 1.0, p, rel_tol=1e-9)
            state = {"treatment": state.get("treatment", VariantState()).merge(
                VariantState(seq.running))}


def test_bayesian_view_and_power_plan_use_the_by_unit_variance():
    rng = np.random.default_rng(8)
    treated, y, x = _traffic(rng, 1, 2000, 1)
    rep = _report(treated[0], y[0], x[0], 0, {}, AnalysisConfig())
    bayes = rep.top.bayesian
    assert bayes is not None and bayes.absolute is not None and bayes.relative is not None
    assert bayes.prior.startswith(GAUSSIAN_BY_UNIT)
    # The posterior's spread is the delta-method standard error (flat prior), not the
    # binomial one, and the chance to beat control is the Gaussian model's.
    se = (rep.top.improvement.confidence_interval[1] - rep.top.improvement.absolute) / 1.959964
    assert math.isclose(bayes.absolute.std, se, rel_tol=1e-5)
    assert bayes.chance_to_beat_control == bayes.absolute.chance_positive
    c, t = rep.variants["control"], rep.variants["treatment"]
    binomial = math.sqrt(c.success_rate * (1 - c.success_rate) / c.n
                         + t.success_rate * (1 - t.success_rate) / t.n)
    deff = rep.power.design_effect
    assert deff is not None and deff > 3  # ~20 correlated requests per user
    assert math.isclose(deff, (se / binomial) ** 2, rel_tol=1e-4)
    plain = build_report(WEIGHTS, {n: VariantStats(count=v.n, successes=v.successes)
                                   for n, v in rep.variants.items()}, control="control")
    assert plain.power.design_effect is None
    need, plain_need = rep.power.required_per_arm["control"], plain.power.required_per_arm[
        "control"]
    assert abs(need - deff * plain_need) <= deff + 1  # both rounded up
    assert rep.power.achieved_power < plain.power.achieved_power
    d = rep.to_dict()
    assert d["power"]["design_effect"] == deff
    assert d["analysis_unit"]["design_effect"]["treatment"] == deff
