"""Custom-metric health rules of a rollout: the Welch test agrees with scipy, thresholds and
comparisons pass, fail and wait as documented, and fold into the judge's verdict."""

from __future__ import annotations

import math
import random

import pytest
from scipy import stats

from neural.mlops.server.deployments import custom_metrics as cm
from neural.mlops.server.deployments.judge import Judgement
from neural.mlops.server.deployments.model import (
    MetricDirection,
    MetricKind,
    MetricRule,
    PerformanceMetrics,
    Verdict,
)
from neural.mlops.v1.traffic import Moments, VariantStats


def _stats(values: list[float], name: str = "quality") -> VariantStats:
    return VariantStats(count=len(values), custom={name: Moments.of(values)} if values else {})


@pytest.mark.parametrize("seed", range(12))
def test_one_sided_welch_agrees_with_scipy(seed: int) -> None:
    rng = random.Random(seed)
    shift, spread = rng.uniform(-1, 1), rng.uniform(0.5, 3)
    a = [rng.gauss(10.0 + shift, spread) for _ in range(rng.randint(5, 400))]
    b = [rng.gauss(10.0, rng.uniform(0.5, 3)) for _ in range(rng.randint(5, 400))]
    ma, mb = Moments.of(a), Moments.of(b)
    for direction, alternative in ((MetricDirection.LOWER, "greater"),
                                   (MetricDirection.HIGHER, "less")):
        t, df, p = cm.one_sided_welch(ma, mb, direction)
        ref = stats.ttest_ind_from_stats(ma.mean, ma.std, ma.n, mb.mean, mb.std, mb.n,
                                         equal_var=False, alternative=alternative)
        assert t == pytest.approx(ref.statistic, rel=1e-9)
        assert p == pytest.approx(ref.pvalue, rel=1e-7, abs=1e-300)
        assert df > 0


def test_no_variance_makes_the_difference_exact() -> None:
    same, higher = Moments.of([5.0] * 50), Moments.of([6.0] * 50)
    assert cm.one_sided_welch(higher, same, MetricDirection.LOWER)[2] == 0.0
    assert cm.one_sided_welch(higher, same, MetricDirection.HIGHER)[2] == 1.0
    assert cm.one_sided_welch(same, same, MetricDirection.LOWER)[2] == 1.0


def _rule(**kw: object) -> MetricRule:
    base: dict[str, object] = {"metric": "quality", "min_samples": 30}
    base.update(kw)
    return MetricRule(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize("direction,threshold,verdict", [
    ("lower", 10.5, Verdict.PASS), ("lower", 9.5, Verdict.FAIL),
    ("higher", 9.5, Verdict.PASS), ("higher", 10.5, Verdict.FAIL),
])
def test_threshold_rule(direction: str, threshold: float, verdict: Verdict) -> None:
    new = _stats([9.0, 11.0] * 50)  # mean 10
    [res] = cm.evaluate([_rule(kind="threshold", direction=direction, threshold=threshold)],
                        new, None, 100)
    assert res.verdict is verdict
    assert res.values["mean"] == 10.0 and res.values["n"] == 100
    assert res.values["threshold"] == threshold


def test_rules_wait_below_their_sample_size() -> None:
    few = _stats([1.0] * 10)
    rules = [_rule(kind="threshold", threshold=0.0),
             _rule(kind="comparison", max_degradation=0.0)]
    res = cm.evaluate(rules, few, _stats([1.0] * 100), 100)
    assert [r.verdict for r in res] == [Verdict.WAIT, Verdict.WAIT]
    assert "10 values on the new version, 30 needed" in res[0].reason
    # min_samples 0 = the deployment's min_requests_before_check
    [res0] = cm.evaluate([_rule(kind="threshold", threshold=0.0, min_samples=0)], few, None, 5)
    assert res0.verdict is Verdict.FAIL
    # a metric the new version never reported waits too
    [none] = cm.evaluate([_rule(kind="threshold", threshold=0.0)], VariantStats(), None, 1)
    assert none.verdict is Verdict.WAIT and none.values["mean"] is None


def test_comparison_rule_needs_both_a_degradation_beyond_the_limit_and_significance() -> None:
    rng = random.Random(3)
    stable = _stats([rng.gauss(100, 5) for _ in range(400)])
    worse = _stats([rng.gauss(110, 5) for _ in range(400)])  # ~10 % higher
    lower_better = _rule(kind="comparison", direction="lower", max_degradation=0.05)
    [r] = cm.evaluate([lower_better], worse, stable, 100)
    assert r.verdict is Verdict.FAIL
    assert r.values["degradation"] == pytest.approx(0.10, abs=0.02) and r.values["p_value"] < 1e-6
    assert "Welch" in r.reason and "metric_rules[0] quality" in r.reason
    # Within the tolerance: passes even though significant.
    [ok] = cm.evaluate([_rule(kind="comparison", direction="lower", max_degradation=0.2)],
                       worse, stable, 100)
    assert ok.verdict is Verdict.PASS and ok.values["p_value"] < 1e-6
    # Higher is better: the same data is an improvement.
    [up] = cm.evaluate([_rule(kind="comparison", direction="higher")], worse, stable, 100)
    assert up.verdict is Verdict.PASS and up.values["p_value"] > 0.99
    # Beyond the tolerance but noise: not significant, passes.
    noisy_s = _stats([rng.gauss(100, 60) for _ in range(40)])
    noisy_n = _stats([rng.gauss(108, 60) for _ in range(40)])
    [n] = cm.evaluate([_rule(kind="comparison", direction="lower", max_degradation=0.01,
                             alpha=0.01)], noisy_n, noisy_s, 30)
    if n.values["degradation"] > 0.01:
        assert n.values["p_value"] >= 0.01
    assert n.verdict is Verdict.PASS


def test_comparisons_are_skipped_where_the_stable_serves_nothing() -> None:
    new = _stats([5.0, 7.0] * 50)
    rules = [_rule(kind="comparison"), _rule(kind="threshold", threshold=1.0)]
    skipped, failed = cm.evaluate(rules, new, VariantStats(), 30, compare=False)
    assert skipped.verdict is Verdict.PASS and "no traffic" in skipped.values["skipped"]
    assert failed.verdict is Verdict.FAIL  # thresholds still judge
    waiting, _ = cm.evaluate(rules, new, VariantStats(), 30)  # at a split step: waits
    assert waiting.verdict is Verdict.WAIT


def test_a_zero_stable_mean_makes_any_worsening_infinite() -> None:
    stable, new = _stats([0.0, 0.0, 1.0, -1.0] * 25), _stats([1.0, 2.0] * 50)
    [r] = cm.evaluate([_rule(kind="comparison", max_degradation=5.0)], new, stable, 30)
    assert r.verdict is Verdict.FAIL and r.values["degradation"] is None  # inf is not JSON
    assert "infinitely worse" in r.reason


def _judgement(verdict: Verdict) -> Judgement:
    return Judgement(verdict, ["base reason"] if verdict is not Verdict.PASS else [],
                     PerformanceMetrics(request_count=100))


def test_apply_folds_rules_into_the_verdict_and_names_the_deciding_rule() -> None:
    new, stable = _stats([10.0, 12.0] * 50), _stats([10.0, 12.0] * 50)
    failing = _rule(kind="threshold", threshold=5.0)
    passing = _rule(kind="threshold", threshold=50.0)
    waiting = _rule(kind="threshold", threshold=50.0, min_samples=1000)
    j = cm.apply(_judgement(Verdict.PASS), [passing, failing], new, stable, 100)
    assert j.verdict is Verdict.FAIL and j.tests["decided_by"] == ["metric_rules[1]"]
    assert [r["verdict"] for r in j.tests["custom_metrics"]] == ["pass", "fail"]
    assert j.reasons == [j.reasons[0]] and "mean 11 > threshold 5" in j.reasons[0]
    assert cm.apply(_judgement(Verdict.PASS), [passing], new, stable, 100).verdict is Verdict.PASS
    w = cm.apply(_judgement(Verdict.PASS), [passing, waiting], new, stable, 100)
    assert w.verdict is Verdict.WAIT and "1000 needed" in w.reasons[0]
    # A failing base keeps its reasons; an inconclusive one is not turned into a wait.
    f = cm.apply(_judgement(Verdict.FAIL), [failing], new, stable, 100)
    assert f.reasons[0] == "base reason" and len(f.reasons) == 2
    assert cm.apply(_judgement(Verdict.INCONCLUSIVE), [waiting], new, stable,
                    100).verdict is Verdict.INCONCLUSIVE
    assert cm.apply(_judgement(Verdict.PASS), [], new, stable, 100).tests == {}


@pytest.mark.parametrize("rule,field,words", [
    (MetricRule(""), "r[0].metric", "metric name"),
    (MetricRule("Quality", threshold=1.0), "r[0].metric", "lower case"),
    (MetricRule("q", kind="bogus"), "r[0].kind", "one of"),
    (MetricRule("q", direction="up", threshold=1.0), "r[0].direction", "one of"),
    (MetricRule("q"), "r[0].threshold", "required"),
    (MetricRule("q", threshold=math.nan), "r[0].threshold", "finite"),
    (MetricRule("q", kind="comparison", threshold=1.0), "r[0].threshold", "threshold rules"),
    (MetricRule("q", kind="comparison", max_degradation=-0.1), "r[0].max_degradation",
     "negative"),
    (MetricRule("q", kind="comparison", alpha=1.0), "r[0].alpha", "(0, 1)"),
    (MetricRule("q", threshold=1.0, min_samples=-1), "r[0].min_samples", "non-negative"),
])
def test_invalid_rules_are_refused_naming_the_part(rule: MetricRule, field: str,
                                                  words: str) -> None:
    from neural.mlops.server.errors import InvalidArgument

    with pytest.raises(InvalidArgument) as err:
        cm.validate_rules([rule], "r")
    assert err.value.field == field and words in str(err.value)


def test_valid_rules_are_normalised() -> None:
    [r] = cm.validate_rules([MetricRule("q", kind="comparison", direction="higher", alpha=0)],
                            "r")
    assert r.kind is MetricKind.COMPARISON and r.direction is MetricDirection.HIGHER
    assert r.alpha == 0.05 and r.threshold is None
    assert MetricRule.from_dict(r.to_dict()) == r
