"""The bandit's weight computation on simulated outcomes (no network, seeded): traffic
moves to the better arm and a losing arm stays at exactly its floor; equal arms share
evenly on average; P(best) agrees with numerical integration (scipy); the Monte Carlo
estimate is stable to +-0.01; settings are validated naming the wrong one."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from scipy import integrate, stats

from neural.mlops.server.errors import InvalidArgument
from neural.mlops.server.experiments.bandit import (
    ArmData,
    BanditConfig,
    floored,
    parse_bandit,
    posteriors,
    regret,
    reweight,
)


def _simulate(p: dict[str, float], *, intervals: int, per_interval: int, seed: int,
              min_share: float = 0.1) -> list[dict[str, float]]:
    """Run ``intervals`` reweightings: each interval ``per_interval`` units are split by the
    current weights and convert with their arm's probability. The weights after each."""
    config = BanditConfig(min_share=min_share, burn_in_units=0, seed=seed)
    rng = np.random.default_rng(seed + 1000)
    names = list(p)
    weights = {n: 1.0 / len(names) for n in names}
    n = dict.fromkeys(names, 0)
    s = dict.fromkeys(names, 0)
    history = []
    for seq in range(1, intervals + 1):
        counts = rng.multinomial(per_interval, [weights[a] for a in names])
        for a, c in zip(names, counts, strict=True):
            n[a] += int(c)
            s[a] += int(rng.binomial(int(c), p[a]))
        r = reweight(config, {a: ArmData(n[a], float(s[a])) for a in names}, seq)
        weights = r.weights
        history.append(weights)
    return history


def test_traffic_moves_to_the_better_arm_and_the_loser_stays_at_exactly_its_floor() -> None:
    history = _simulate({"treatment": 0.13, "control": 0.10}, intervals=30, per_interval=2000,
                        seed=7)
    final = history[-1]
    assert final["treatment"] > 0.8
    assert final["control"] == 0.1  # exactly the minimum share, not just near it
    assert math.fsum(final.values()) == pytest.approx(1.0, abs=1e-12)
    # The better arm's share grew over time: the last third averages above the first third.
    first = np.mean([h["treatment"] for h in history[:10]])
    last = np.mean([h["treatment"] for h in history[-10:]])
    assert last > first and last > 0.8


def test_three_arms_each_loser_kept_at_its_floor() -> None:
    history = _simulate({"a": 0.10, "b": 0.16, "control": 0.10}, intervals=25,
                        per_interval=3000, seed=3, min_share=0.05)
    final = history[-1]
    assert final["b"] == pytest.approx(0.9, abs=1e-12)
    assert final["a"] == 0.05 and final["control"] == 0.05


def test_equal_arms_stay_near_an_even_split_on_average() -> None:
    finals = [_simulate({"treatment": 0.10, "control": 0.10}, intervals=15, per_interval=1000,
                        seed=seed)[-1]["treatment"] for seed in range(40)]
    assert abs(float(np.mean(finals)) - 0.5) < 0.1
    # Neither arm is starved: with no difference no run pins an arm at its floor for good.
    assert 0.3 < float(np.median(finals)) < 0.7


def _p_beta_greater(a1: float, b1: float, a2: float, b2: float) -> float:
    """P(X1 > X2) for independent Betas: integral of f1(x) * F2(x) over [0, 1]."""
    value, _ = integrate.quad(lambda x: stats.beta.pdf(x, a1, b1) * stats.beta.cdf(x, a2, b2),
                              0, 1, limit=200)
    return float(value)


def test_probability_best_agrees_with_numerical_integration_for_beta_posteriors() -> None:
    arms = {"treatment": ArmData(400, 52.0), "control": ArmData(420, 44.0)}
    r = reweight(BanditConfig(min_share=0.0, burn_in_units=0), arms, 1)
    # Beta(1 + s, 1 + n - s): the posterior of a uniform prior.
    expected = _p_beta_greater(53, 349, 45, 377)
    assert r.p_best["treatment"] == pytest.approx(expected, abs=0.01)
    assert r.means["treatment"] == pytest.approx(stats.beta.mean(53, 349))
    assert r.weights["treatment"] == pytest.approx(r.p_best["treatment"])  # no floor


def test_probability_best_agrees_with_the_normal_closed_form_for_a_continuous_metric() -> None:
    rng = np.random.default_rng(5)
    x1, x2 = rng.normal(1.02, 0.5, 300), rng.normal(1.0, 0.6, 250)
    arms = {"a": ArmData(300, float(x1.sum()), float((x1 ** 2).sum())),
            "b": ArmData(250, float(x2.sum()), float((x2 ** 2).sum()))}
    config = BanditConfig(min_share=0.0, burn_in_units=0, metric="revenue",
                          metric_kind="continuous")
    r = reweight(config, arms, 1)
    se = math.sqrt(x1.var(ddof=1) / 300 + x2.var(ddof=1) / 250)
    expected = stats.norm.cdf((x1.mean() - x2.mean()) / se)
    assert r.p_best["a"] == pytest.approx(expected, abs=0.01)
    lower = reweight(BanditConfig(min_share=0.0, burn_in_units=0, metric="revenue",
                                  metric_kind="continuous", minimize=True), arms, 1)
    assert lower.p_best["b"] == pytest.approx(expected, abs=0.01)


def test_the_monte_carlo_weights_are_stable_to_one_hundredth_across_seeds() -> None:
    arms = {"t1": ArmData(500, 60.0), "t2": ArmData(500, 58.0), "control": ArmData(500, 55.0)}
    runs = [reweight(BanditConfig(min_share=0.0, burn_in_units=0, seed=s), arms, 1).weights
            for s in range(10)]
    for name in arms:
        values = [w[name] for w in runs]
        assert max(values) - min(values) < 0.02  # every pair within +-0.01 of the middle
    again = reweight(BanditConfig(min_share=0.0, burn_in_units=0, seed=3), arms, 1)
    assert again.weights == runs[3]  # seeded: the same draws, the same weights


def test_floored_gives_the_floor_exactly_and_splits_the_rest_in_proportion() -> None:
    assert floored([0.99, 0.01], 0.1) == [0.9, 0.1]
    w = floored([0.5, 0.3, 0.2, 0.0], 0.1)
    assert w[3] == 0.1
    assert w[0] / w[1] == pytest.approx(0.5 / 0.3) and w[1] / w[2] == pytest.approx(0.3 / 0.2)
    assert math.fsum(w) == pytest.approx(1.0, abs=1e-12)
    # A share pushed under the floor by the renormalisation is floored as well.
    w = floored([0.80, 0.12, 0.08], 0.15)
    assert w[1] == 0.15 and w[2] == 0.15 and w[0] == pytest.approx(0.7)
    assert floored([0.25] * 4, 0.25) == [0.25] * 4
    assert floored([1.0, 0.0], 0.0) == [1.0, 0.0]
    # One arm above the floor gets exactly the rest (0.9 * p / p can round to 0.8999...).
    for p in (0.8474337369372327, 0.651592972722763, 0.762280082457942, 0.9731):
        assert floored([p, 0.0], 0.1) == [0.9, 0.1]
    rng = random.Random(5)
    for _ in range(200):  # the shares sum to 1 to the last bit or two
        raw = [rng.random() for _ in range(rng.randint(2, 6))]
        w = floored([x / sum(raw) for x in raw], rng.choice([0.0, 0.05, 0.1]))
        assert abs(math.fsum(w) - 1.0) <= 2**-52


def test_plug_in_regret_counts_each_observation_at_its_arms_gap() -> None:
    means = {"a": 0.13, "b": 0.10}
    assert regret({"a": 1000, "b": 500}, means) == pytest.approx(500 * 0.03)
    assert regret({"a": 1000, "b": 500}, means, minimize=True) == pytest.approx(1000 * 0.03)


def test_continuous_arms_without_two_values_borrow_the_pooled_variance() -> None:
    config = BanditConfig(metric="m", metric_kind="continuous")
    posts = posteriors(config, [ArmData(0, 0.0), ArmData(10, 20.0, 48.0)])
    assert posts[0].a == pytest.approx(2.0)  # pooled mean
    assert posts[0].b == pytest.approx(math.sqrt((48.0 - 40.0) / 9))  # pooled variance / 1
    assert posts[1].b == pytest.approx(math.sqrt((48.0 - 40.0) / 9 / 10))


@pytest.mark.parametrize(("settings", "arms", "field"), [
    ({"min_share": 0.6}, 2, "bandit.min_share"),
    ({"min_share": 0.3}, 4, "bandit.min_share"),
    ({"interval_seconds": 0.5}, 2, "bandit.interval_seconds"),
    ({"burn_in_units": -1}, 2, "bandit.burn_in_units"),
    ({"burn_in_units": 1.5}, 2, "bandit.burn_in_units"),
    ({"metric_kind": "ordinal"}, 2, "bandit.metric_kind"),
    ({"metric": "success_rate", "metric_kind": "continuous"}, 2, "bandit.metric_kind"),
    ({"metric": "a/b"}, 2, "bandit.metric"),
    ({"minimize": "yes"}, 2, "bandit.minimize"),
    ({"seed": 2**63}, 2, "bandit.seed"),
    ({"intervals": 60}, 2, "bandit"),
    ("every hour", 2, "bandit"),
])
def test_bad_settings_are_refused_naming_the_setting(settings: object, arms: int,
                                                     field: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_bandit(settings, True, arms)
    assert info.value.field == field


def test_settings_are_refused_for_other_strategies_and_defaults_filled_in() -> None:
    with pytest.raises(InvalidArgument, match="multi_armed_bandit") as info:
        parse_bandit({"min_share": 0.1}, False, 2)
    assert info.value.field == "bandit"
    assert parse_bandit(None, False, 2) is None
    assert parse_bandit(None, True, 2) == BanditConfig()
    assert parse_bandit({"min_share": 0.0, "burn_in_units": 0}, True, 3) == BanditConfig(
        min_share=0.0, burn_in_units=0)
