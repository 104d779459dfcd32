"""Guardrails under the sequential rule are judged by the always-valid views.

A fixed-horizon interval checked at every look fires on noise far more often than alpha;
the always-valid p-value and confidence sequence of the report's metric do not. The
automatic latency / error-rate warnings follow the same rule.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from neural.mlops.ab_testing import ABTestManager
from neural.mlops.server.experiments.analysis import AnalysisConfig, build_report
from neural.mlops.server.experiments.guardrails import Guardrail, SequentialLook, evaluate
from neural.mlops.server.experiments.sequential import VariantState
from neural.mlops.v1.traffic import VariantStats

SEQ = AnalysisConfig(decision_rule="sequential")
WEIGHTS = [("treatment", 0.5), ("control", 0.5)]


def _look(c: VariantStats, t: VariantStats, state: dict[str, VariantState]):
    rep = build_report(WEIGHTS, {"control": c, "treatment": t}, control="control", config=SEQ,
                       sequential_state=state)
    look = SequentialLook(rep.comparisons["treatment"].metrics, rep.alpha, SEQ.mixture())
    return rep, look


def test_a_marginal_regression_fires_the_fixed_interval_but_not_the_always_valid_one():
    c = VariantStats(count=4000, successes=1200, errors=200)
    t = VariantStats(count=4000, successes=1200, errors=245)  # z ~ 2.2: fixed p ~ 0.03
    rep, look = _look(c, t, {})
    fixed = evaluate([Guardrail("error_rate")], c, t, 0.95)[0]
    seq = evaluate([Guardrail("error_rate")], c, t, 0.95, sequential_look=look)[0]
    assert fixed.violated and fixed.rule == "fixed_horizon" and fixed.p_value is None
    assert not seq.violated and seq.rule == "sequential"
    assert seq.p_value == rep.comparisons["treatment"].metrics["error_rate"].sequential.p_value
    assert seq.p_value > 0.05
    assert seq.to_dict()["rule"] == "sequential" and "confidence sequence" in seq.describe()


def test_a_clear_regression_is_a_sequential_violation_with_its_confidence_sequence():
    c = VariantStats(count=20000, errors=400)
    t = VariantStats(count=20000, errors=1000)
    _, look = _look(c, t, {})
    g = evaluate([Guardrail("error_rate", tolerance=0.5), Guardrail("revenue")], c, t, 0.95,
                 sequential_look=look)
    err, missing = g
    assert err.violated and err.p_value is not None and err.p_value < 1e-6
    lo, hi = err.interval
    assert lo is not None and hi is not None and 0.5 < lo < 1.5 < hi  # 2% -> 5%: +150%
    assert not missing.violated and missing.interval == (None, None)
    # Tolerating a tripling, the same data is no violation.
    tolerant = evaluate([Guardrail("error_rate", tolerance=2.0)], c, t, 0.95,
                        sequential_look=look)[0]
    assert not tolerant.violated


def test_aa_guardrail_false_alarms_under_peeking():
    """120 A/A tests looked at 12 times (every 1,000 requests per arm, error rate 5%):
    the fixed-horizon guardrail checked at every look fires far more often than the
    sequential one, which stays within alpha."""
    rng = np.random.default_rng(12)
    runs, looks, step = 120, 12, 1000
    fixed = seq = 0
    for _ in range(runs):
        e_c = rng.binomial(step, 0.05, size=looks).cumsum()
        e_t = rng.binomial(step, 0.05, size=looks).cumsum()
        state: dict[str, VariantState] = {}
        fired_fixed = fired_seq = False
        for k in range(looks):
            c = VariantStats(count=step * (k + 1), errors=int(e_c[k]))
            t = VariantStats(count=step * (k + 1), errors=int(e_t[k]))
            rep, look = _look(c, t, state)
            g = [Guardrail("error_rate")]
            fired_fixed |= evaluate(g, c, t, 0.95)[0].violated
            fired_seq |= evaluate(g, c, t, 0.95, sequential_look=look)[0].violated
            comp = rep.comparisons["treatment"]
            state = {"treatment": state.get("treatment", VariantState()).merge(VariantState(
                comp.sequential.running,
                {k: m.sequential.running for k, m in comp.metrics.items() if m.sequential}))}
        fixed += fired_fixed
        seq += fired_seq
    print(f"\nA/A guardrail, {runs} runs x {looks} looks: fixed-horizon fired in "
          f"{fixed / runs:.3f}, sequential in {seq / runs:.3f}")
    assert seq / runs <= 0.05
    assert fixed / runs >= 0.06 and fixed > 2 * seq


def test_the_automatic_error_rate_warning_reads_the_always_valid_p_value():
    c = VariantStats(count=4000, successes=1200, errors=200)
    t = VariantStats(count=4000, successes=1200, errors=245)
    fixed = build_report(WEIGHTS, {"control": c, "treatment": t}, control="control")
    rep, _ = _look(c, t, {})
    assert any("error_rate" in g for g in fixed.recommendation.guardrails)
    assert rep.recommendation.guardrails == []
    worse = VariantStats(count=4000, successes=1200, errors=400)
    rep, _ = _look(c, worse, {})
    [text] = rep.recommendation.guardrails
    assert "error_rate" in text and "always-valid" in text


def test_a_sequential_test_is_stopped_by_its_guardrail_through_the_api():
    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory() as tmp:
        m = ABTestManager(str(Path(tmp) / "store"))
        try:
            tid = m.create_test(name="g", control_variant="m:1", treatment_variant="m:2",
                                decision_rule="sequential", guardrails=["error_rate"]).test_id
            m.start_test(tid)
            recs = []
            for variant, rate in (("control", 0.01), ("treatment", 0.08)):
                for u in range(300):
                    for _ in range(int(rng.geometric(0.1))):
                        recs.append({"variant": variant, "user_id": f"{variant}{u}",
                                     "success": bool(rng.random() < 0.3),
                                     "error": bool(rng.random() < rate)})
            m.record_requests(tid, recs)
            a = m.analyze_test(tid)
            [check] = a["guardrail_checks"]
            assert check["rule"] == "sequential" and check["by"] == "unit"
            assert check["violated"] and check["p_value"] <= 0.05
            assert a["recommendation"]["action"] == "stop"
            assert m.get_test(tid).status.value == "stopped"
        finally:
            m.close()
