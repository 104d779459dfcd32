"""Sequential testing that stays right when peeked at: coverage of the confidence sequence
at unequal splits and rare events, gbstats' scaled mixture, continuous metrics, and the
decision taken from every look (intersected over looks, kept across restarts)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from support.databases import open_services

from neural.mlops.server import traffic
from neural.mlops.server.experiments import sequential
from neural.mlops.server.experiments.analysis import AnalysisConfig, build_report
from neural.mlops.server.experiments.sequential import Running, VariantState
from neural.mlops.server.experiments.spec import CreateSpec
from neural.mlops.v1.traffic import Moments, VariantStats

WEIGHTS = [("treatment", 0.5), ("control", 0.5)]
SEQ = AnalysisConfig(decision_rule="sequential")


def _simulate_rates(rng, runs, looks, step, w_t, p_c, p_t):
    """Cumulative (x_c, n_c, x_t, n_t) at every look; arms drawn per request at share w_t."""
    n_t = rng.binomial(step, w_t, size=(runs, looks))
    n_c = step - n_t
    x_c = rng.binomial(n_c, p_c).cumsum(axis=1)
    x_t = rng.binomial(n_t, p_t).cumsum(axis=1)
    return x_c, n_c.cumsum(axis=1), x_t, n_t.cumsum(axis=1)


def _time_uniform_coverage(lo, hi, truth) -> float:
    """Share of runs whose interval holds the truth at EVERY look where it is defined."""
    miss = ((lo > truth) | (hi < truth)) & ~np.isnan(lo)
    return 1.0 - float(miss.any(axis=1).mean())


def _pooled_interval(x_c, n_c, x_t, n_t, alpha=0.05, tau=0.02):
    """The confidence sequence as it was: pooled null variance, fixed tau."""
    with np.errstate(all="ignore"):
        pooled = (x_c + x_t) / (n_c + n_t)
        v = pooled * (1 - pooled) * (1 / n_c + 1 / n_t)
        theta = x_t / n_t - x_c / n_c
        half = np.sqrt(
            v * (v + tau**2) / tau**2 * (2 * np.log(1 / alpha) + np.log((v + tau**2) / v))
        )
    return theta - half, theta + half


@pytest.mark.parametrize(
    ("w_t", "p_c", "p_t"),
    [
        (0.1, 0.01, 0.05),
        (0.9, 0.01, 0.05),
        (0.1, 0.05, 0.01),
        (0.05, 0.02, 0.03),
        (0.5, 0.002, 0.002),
    ],
)
def test_confidence_sequence_covers_at_unequal_splits_and_rare_events(w_t, p_c, p_t):
    """1,000 experiments, a look every 100 requests up to 20,000: the truth stays inside
    the interval at every look in >= 94% of them (alpha = 0.05)."""
    rng = np.random.default_rng(11)
    x_c, n_c, x_t, n_t = _simulate_rates(rng, 1000, 200, 100, w_t, p_c, p_t)
    res = sequential.msprt_proportions(x_c, n_c, x_t, n_t, 0.05)
    coverage = _time_uniform_coverage(res.ci_low, res.ci_high, p_t - p_c)
    print(f"split {w_t:.2f}, {p_c:.3f} vs {p_t:.3f}: coverage {coverage:.3f}")
    assert coverage >= 0.94


def test_the_pooled_interval_undercovers_where_the_unpooled_one_does_not():
    rng = np.random.default_rng(11)
    x_c, n_c, x_t, n_t = _simulate_rates(rng, 1000, 100, 1000, 0.1, 0.01, 0.05)
    pooled = _time_uniform_coverage(*_pooled_interval(x_c, n_c, x_t, n_t), 0.04)
    res = sequential.msprt_proportions(x_c, n_c, x_t, n_t, 0.05)
    ours = _time_uniform_coverage(res.ci_low, res.ci_high, 0.04)
    print(f"90/10, 1% vs 5%: pooled coverage {pooled:.3f}, unpooled {ours:.3f}")
    assert pooled < 0.8 and ours >= 0.94


def test_aa_false_positive_rate_under_peeking_at_an_unequal_split_with_rare_events():
    rng = np.random.default_rng(5)
    x_c, n_c, x_t, n_t = _simulate_rates(rng, 2000, 100, 500, 0.1, 0.02, 0.02)
    p = sequential.msprt_proportions(x_c, n_c, x_t, n_t, 0.05).p_value
    fpr = float((np.nanmin(np.where(np.isnan(p), 1.0, p), axis=1) <= 0.05).mean())
    print(f"A/A at 90/10, 2%, 100 looks: false positive rate {fpr:.3f}")
    assert fpr <= 0.05


def test_scaled_mixture_is_gbstats_sequential_test():
    """Halfwidth (eq. 9) and p-value (eq. 155) of arXiv 2103.06476v7 with rho of eq. 161,
    written out here; and gbstats itself when it is installed."""
    x_c, n_c, x_t, n_t, alpha, n_star = 480, 5000, 560, 5100, 0.05, 5000.0
    res = sequential.msprt_proportions(x_c, n_c, x_t, n_t, alpha)
    p_c, p_t = x_c / n_c, x_t / n_t
    var = p_c * (1 - p_c) / n_c + p_t * (1 - p_t) / n_t
    big_n = n_c + n_t
    rho = math.sqrt((-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / n_star)
    half = math.sqrt(var * big_n) * math.sqrt(
        2
        * (big_n * rho**2 + 1)
        * math.log(math.sqrt(big_n * rho**2 + 1) / alpha)
        / (big_n * rho) ** 2
    )
    st2 = (p_t - p_c) ** 2 * big_n / var
    tr2p1 = big_n * rho**2 + 1
    p = min(1.0, 1 / (math.exp(rho**2 * st2 / (2 * tr2p1)) / math.sqrt(tr2p1)))
    assert math.isclose(res.ci_high - (p_t - p_c), half, rel_tol=1e-12)
    assert math.isclose(res.p_value, p, rel_tol=1e-12)
    gb = pytest.importorskip("gbstats.frequentist.tests", reason="gbstats not installed")
    from gbstats.models.statistics import ProportionStatistic

    test = gb.SequentialTwoSidedTTest(
        ProportionStatistic(n=n_c, sum=x_c), ProportionStatistic(n=n_t, sum=x_t),
        gb.SequentialConfig(difference_type="absolute", sequential_tuning_parameter=n_star),
    )
    assert math.isclose(test.p_value, float(res.p_value), rel_tol=1e-9)
    assert np.allclose(test.confidence_interval, [res.ci_low, res.ci_high], rtol=1e-9)


def test_continuous_metric_sequence_covers_skewed_latency_at_a_90_10_split():
    rng = np.random.default_rng(3)
    runs, looks, step = 1000, 100, 20
    n_t = rng.binomial(step, 0.1, size=(runs, looks))
    sums = {}
    for arm, n, sigma in (("c", step - n_t, 1.0), ("t", n_t, 0.8)):
        x = rng.lognormal(-3.0, sigma, size=(runs, looks, step))
        mask = np.arange(step) < n[..., None]
        sums[arm] = ((x * mask).sum(-1).cumsum(1), (x * x * mask).sum(-1).cumsum(1), n.cumsum(1))
    (s_c, q_c, c_n), (s_t, q_t, t_n) = sums["c"], sums["t"]
    res = sequential.msprt_means(c_n, s_c, q_c, t_n, s_t, q_t, 0.05)
    truth = math.exp(-3 + 0.8**2 / 2) - math.exp(-3 + 0.5)
    coverage = _time_uniform_coverage(res.ci_low, res.ci_high, truth)
    print(f"lognormal latency at 90/10: coverage {coverage:.3f}")
    assert coverage >= 0.94
    # the report carries it for latency and custom metrics
    c, t = VariantStats(count=2000), VariantStats(count=2000)
    for v in rng.lognormal(-3, 1.0, 2000):
        c.latency.add(float(v))
    for v in rng.lognormal(-2.0, 1.0, 2000):
        t.latency.add(float(v))
    c.custom["score"] = Moments.of(rng.normal(1.0, 1, 2000))
    t.custom["score"] = Moments.of(rng.normal(1.5, 1, 2000))
    rep = build_report(WEIGHTS, {"control": c, "treatment": t}, control="control", config=SEQ)
    for key in ("latency", "score"):
        seq = rep.top.metrics[key].sequential
        assert seq is not None and seq.statistically_significant and seq.direction == 1


def test_running_state_merges_in_any_order_and_reads_the_first_format():
    a = Running().look(0.2, 0.01, (-0.01, 0.03), 0.05)
    b = Running().look(0.01, 0.02, (0.001, 0.04), 0.05)
    c = Running().look(0.5, -0.001, (-0.02, 0.02), 0.05)
    assert a.merge(b).merge(c) == c.merge(a).merge(b) == a.merge(b).merge(b).merge(c)
    m = a.merge(b).merge(c)
    assert (m.p_value, m.sign, m.low, m.high, m.decided) == (0.01, 1, 0.001, 0.02, 1)
    assert m.direction == 1 and a.decided == 0
    legacy = VariantState.from_dict(0.003)
    assert legacy.primary.p_value == 0.003 and legacy.primary.low == -math.inf
    state = VariantState(m, {"latency": a})
    assert VariantState.from_dict(state.to_dict()) == state


def _vs(n: int, successes: int) -> VariantStats:
    return VariantStats(count=n, successes=successes)


def test_significant_at_one_look_and_flat_at_the_next_still_ships_treatment():
    """The first look is conclusive for treatment; by the second the cumulative rates are
    equal. The decision, its direction and the interval stay those of every look."""
    first = build_report(WEIGHTS, {"control": _vs(3000, 300), "treatment": _vs(3000, 420)},
                         control="control", config=SEQ)
    assert first.recommendation.action == "ship_treatment"
    state = {"treatment": VariantState(first.top.sequential.running)}
    second = build_report(WEIGHTS, {"control": _vs(5000, 500), "treatment": _vs(5000, 500)},
                          control="control", config=SEQ, sequential_state=state)
    seq = second.top.sequential
    assert seq.p_value_current > 0.05 and seq.p_value == first.top.sequential.p_value
    assert seq.statistically_significant and seq.direction == 1
    low, high = seq.confidence_sequence
    assert 0 < low <= high and seq.confidence_sequence_current[0] < 0
    rec = second.recommendation
    assert rec.action == "ship_treatment" and rec.winner == "treatment"
    assert "treatment is better" in rec.reason and "worse" not in rec.reason


def test_later_looks_that_contradict_the_decision_leave_it_but_say_so():
    """Decided for treatment at an earlier look; now treatment looks worse: the first
    conclusive look decided (as the sequential rule documents), and the reason warns."""
    state = {"treatment": VariantState(Running(0.001, 1, 0.01, 0.05, decided=1))}
    rep = build_report(WEIGHTS, {"control": _vs(30000, 3300), "treatment": _vs(30000, 2700)},
                       control="control", config=SEQ, sequential_state=state)
    assert rep.top.sequential.confidence_sequence == (None, None)
    assert rep.top.sequential.direction == 1
    assert rep.recommendation.action == "ship_treatment"
    assert "contradict" in rep.recommendation.reason
    assert any("empty" in w for w in rep.warnings)


def test_another_confidence_level_uses_this_looks_interval_and_keeps_the_direction():
    state = {"treatment": VariantState(Running(0.001, 1, 0.01, 0.05, decided=1))}
    rep = build_report(WEIGHTS, {"control": _vs(30000, 3000), "treatment": _vs(30000, 3000)},
                       control="control", config=SEQ, confidence_level=0.9,
                       sequential_state=state)
    seq = rep.top.sequential
    assert seq.confidence_sequence == seq.confidence_sequence_current
    assert seq.direction == 1 and rep.recommendation.action == "ship_treatment"
    assert seq.running.low == 0.01  # the configured level's bounds are left alone
    assert any("configured confidence level" in w for w in rep.warnings)


async def _analyse(services, test_id):
    return (await services.experiments.analysis(test_id)).report


async def _add(services, test_id, variant, n, successes, minute):
    async with services.db.change(audited=False) as ch:
        await traffic.apply(ch.conn, test_id, variant, traffic.window_start(minute * 60_000_000),
                            VariantStats(count=n, successes=successes))


async def test_the_intersection_survives_a_restart(tmp_path):
    services = await open_services(tmp_path)
    try:
        test = await services.experiments.create_test(CreateSpec(
            name="seq", control_variant="m:1", treatment_variant="m:2",
            decision_rule="sequential",
        ))
        test_id = test.test_id
        await services.experiments.start_test(test_id)
        await _add(services, test_id, "control", 3000, 300, 1)
        await _add(services, test_id, "treatment", 3000, 420, 1)
        first = await _analyse(services, test_id)
        assert first.recommendation.action == "ship_treatment"
    finally:
        await services.close()
    services = await open_services(tmp_path)  # a restart: only the store remembers
    try:
        await _add(services, test_id, "control", 2000, 200, 2)
        await _add(services, test_id, "treatment", 2000, 80, 2)  # 5000 / 500 each: flat
        second = await _analyse(services, test_id)
        seq = second.top.sequential
        assert seq.p_value == first.top.sequential.p_value and seq.p_value_current > 0.05
        assert seq.confidence_sequence[0] > 0 and seq.direction == 1
        assert second.recommendation.action == "ship_treatment"
        assert "better" in second.recommendation.reason
        assert test.sequential_tau == 0 and test.sequential_tuning == 5000
    finally:
        await services.close()
