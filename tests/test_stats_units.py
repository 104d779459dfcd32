"""Analysis by the randomized unit: A/A false positive rates, delta method, CUPED, store.

The A/A proof: users (the unit assignment hashes) send a geometric number of requests
(mean 20) with a per-user success probability (Beta(1, 9): users differ, as real ones
do). Counting requests as independent observations rejects a true null far more often
than alpha; the by-unit analysis (the product's aggregation and report) keeps it at alpha.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np
import pytest

from neural.mlops.ab_testing import ABTestManager
from neural.mlops.server.experiments.analysis import build_report
from neural.mlops.server.experiments.ratio import compare_ratio
from neural.mlops.server.experiments.unitstats import SUCCESS, UnitTotals, aggregate
from neural.mlops.v1.traffic import VariantStats
from neural.mlops.v1.units import UnitCounts, unit_key

ALPHA = 0.05
RUNS = 1200
USERS = 300  # per run, split 50/50
WEIGHTS = [("treatment", 0.5), ("control", 0.5)]


def _arm(rng: np.random.Generator, users: int) -> tuple[np.ndarray, np.ndarray]:
    """Requests and successes per user: geometric(mean 20) requests, Beta(1, 9) rates."""
    n = rng.geometric(1 / 20, size=users)
    p = rng.beta(1.0, 9.0, size=users)
    return n, rng.binomial(n, p)


def _rates() -> tuple[float, float, float]:
    rng = np.random.default_rng(20240515)
    by_unit = by_request = 0
    t_units_requests = 0.0
    for _ in range(RUNS):
        users_t = int(rng.binomial(USERS, 0.5))
        n_t, s_t = _arm(rng, users_t)
        n_c, s_c = _arm(rng, USERS - users_t)
        stats = {
            "treatment": VariantStats(count=int(n_t.sum()), successes=int(s_t.sum())),
            "control": VariantStats(count=int(n_c.sum()), successes=int(s_c.sum())),
        }
        units = {"treatment": aggregate(n_t, s_t), "control": aggregate(n_c, s_c)}
        unit_rep = build_report(WEIGHTS, stats, control="control", units=units)
        req_rep = build_report(WEIGHTS, stats, control="control")
        assert unit_rep.units.unit == "unit" and req_rep.units.unit == "request"
        by_unit += unit_rep.top.p_value < ALPHA
        by_request += req_rep.top.p_value < ALPHA
        t_units_requests += unit_rep.srm.observed_counts["treatment"] / users_t
    return by_unit / RUNS, by_request / RUNS, t_units_requests / RUNS


def test_aa_false_positive_rate_is_alpha_by_unit_and_far_above_by_request():
    by_unit, by_request, srm_units = _rates()
    print(f"\nA/A, {RUNS} runs of {USERS} users (geometric requests, mean 20): false positive "
          f"rate by unit = {by_unit:.4f}, by request = {by_request:.4f} (alpha = {ALPHA})")
    assert srm_units == 1.0  # the sample-ratio check counts units
    assert 0.035 <= by_unit <= 0.065
    assert by_request > 0.2


def _units(rng: np.random.Generator, users: int, rho: float) -> tuple[np.ndarray, ...]:
    """Per-user requests, successes and a pre-period covariate correlated with the rate."""
    n = rng.geometric(1 / 10, size=users)
    z = rng.normal(size=users)
    pre = rho * z + math.sqrt(1 - rho * rho) * rng.normal(size=users)
    p = 1 / (1 + np.exp(-(-1.5 + 0.8 * z)))
    return n, rng.binomial(n, p), pre


def test_cuped_reduces_the_variance_and_keeps_the_estimate_unbiased():
    rng = np.random.default_rng(7)
    diffs, plain, reductions = [], [], []
    for _ in range(300):
        n_c, s_c, x_c = _units(rng, 2000, 0.8)
        n_t, s_t, x_t = _units(rng, 2000, 0.8)
        c, t = aggregate(n_c, s_c, covariate=x_c), aggregate(n_t, s_t, covariate=x_t)
        r = compare_ratio(c, t, SUCCESS, 0.95, cuped=True)
        r0 = compare_ratio(c, t, SUCCESS, 0.95)
        assert r is not None and r0 is not None and r.cuped and not r0.cuped
        diffs.append(r.difference)
        plain.append(r0.difference)
        reductions.append(r.variance_reduction)
    # The estimated reduction matches the observed one across runs.
    observed = 1 - np.var(diffs) / np.var(plain)
    assert abs(np.mean(reductions) - observed) < 0.1
    assert np.mean(reductions) > 0.15
    assert abs(np.mean(diffs)) < 3 * np.std(diffs) / math.sqrt(len(diffs))


def test_delta_method_variance_matches_the_spread_of_the_ratio():
    rng = np.random.default_rng(11)
    ratios, variances = [], []
    for _ in range(400):
        n, s = _arm(rng, 500)
        c = aggregate(n, s)
        r = compare_ratio(c, c, SUCCESS, 0.95)
        assert r is not None
        ratios.append(r.control_mean)
        variances.append(r.standard_error**2 / 2)  # both arms are the same data
    assert np.var(ratios) == pytest.approx(np.mean(variances), rel=0.15)


def test_incremental_totals_equal_the_aggregate_of_the_units():
    rng = np.random.default_rng(3)
    n, s = _arm(rng, 50)
    lat = rng.gamma(2.0, 0.01, size=50) * n
    cov = rng.normal(size=50)
    totals = UnitTotals()
    held: dict[int, UnitCounts] = {}
    for i in range(50):  # each unit arrives in pieces, as windows and batches bring it
        for part in range(int(n[i])):
            add = UnitCounts(requests=1, successes=int(part < s[i]), latency_n=1,
                             latency_sum=float(lat[i] / n[i]))
            old = held.get(i)
            new = add if old is None else old + add
            totals.move(old, new, float(cov[i]) if i % 2 else None)
            held[i] = new
    for i in range(0, 50, 2):  # covariates of the even units arrive after their traffic
        totals.recovariate(held[i], None, float(cov[i]))
    ref = aggregate(n, s, latency_sum=lat, covariate=cov)
    assert totals.units == ref.units and totals.with_covariate == 50
    assert totals.c == pytest.approx(ref.c) and totals.cc == pytest.approx(ref.cc)
    for key in ("success_rate", "latency"):
        assert totals.metrics[key].to_list() == pytest.approx(ref.metrics[key].to_list())


@pytest.mark.parametrize("names", [("score",), ("score", "clicks"), ("latency", "custom:latency")])
def test_move_many_is_move_unit_by_unit_bit_for_bit(names: tuple[str, ...]) -> None:
    """The batch form the ingest uses takes the same additions in the same order as
    ``move`` per unit (returning and new units, covariates or none, custom metrics on some
    units, and a custom name whose key collides with another's)."""
    rng = np.random.default_rng(11)
    held: dict[int, UnitCounts] = {}
    one, many = UnitTotals(), UnitTotals()
    for _ in range(6):  # batches; about half the units come back
        keys = [int(k) for k in rng.choice(120, size=60, replace=False)]
        olds, news, covs = [], [], []
        for k in keys:
            n = int(rng.integers(1, 5))
            custom = {name: [float(rng.integers(1, 3)), float(rng.normal())]
                      for name in names if rng.random() < 0.5}
            add = UnitCounts(requests=n, successes=int(rng.integers(0, n + 1)),
                             errors=int(rng.integers(0, 2)), latency_n=n,
                             latency_sum=float(rng.gamma(2.0, 0.01)), custom=custom)
            old = held.get(k)
            new = add if old is None else old + add
            olds.append(old)
            news.append(new)
            covs.append(float(rng.normal()) if k % 3 else None)
            held[k] = new
        for args in zip(olds, news, covs, strict=True):
            one.move(*args)
        many.move_many(olds, news, covs)
    assert many.to_dict() == one.to_dict()


def test_the_api_records_units_and_analyses_by_them():
    rng = np.random.default_rng(5)
    with tempfile.TemporaryDirectory() as tmp:
        m = ABTestManager(str(Path(tmp) / "store"))
        tid = m.create_test(name="units", control_variant="m:1", treatment_variant="m:2").test_id
        m.start_test(tid)
        records, per_user = [], {}
        for u in range(120):
            n, s = int(rng.geometric(0.2)), float(rng.beta(2, 5))
            per_user[f"user{u}"] = n
            records += [{"user_id": f"user{u}", "success": bool(rng.random() < s),
                         "latency": 0.01, "custom_metrics": {"score": float(rng.random())}}
                        for _ in range(n)]
        records.append({"variant": "control", "success": True})  # no unit
        m.record_requests(tid, records)
        m.record_outcome(tid, "user1", success=True)
        m.set_covariates(tid, {u: float(n) for u, n in per_user.items()})
        a = m.analyze_test(tid)
        m.close()
    unit = a["analysis_unit"]
    assert unit["unit"] == "unit"
    assert sum(unit["units"].values()) == 120
    assert a["srm"]["unit"] == "unit" and a["srm"]["observed_counts"] == unit["units"]
    assert 0 < unit["coverage"]["control"] < 1 and unit["coverage"]["treatment"] == 1
    assert any("named no unit" in w for w in a["warnings"])
    assert {"latency", "score"} <= set(a["metrics"])
    assert a["metrics"]["score"]["n_control"] == unit["units"]["control"]
    assert "treatment:success_rate" in unit["cuped"]


def test_unit_keys_are_stable_signed_64_bit():
    assert unit_key("user-1") == unit_key("user-1") != unit_key("user-2")
    assert -(2**63) <= unit_key("x" * 300) < 2**63


def test_cuped_benchmark_smoke_prints_reported_measured_and_theory():
    import subprocess
    import sys

    bench = Path(__file__).resolve().parents[1] / "benchmarks" / "cuped.py"
    out = subprocess.run([sys.executable, str(bench), "--smoke"], capture_output=True,
                         text=True, timeout=120, check=True).stdout
    rows = {line[:28].strip(): line[28:].split() for line in out.splitlines()[2:]}
    reported, _, theory = (float(x) for x in rows["continuous, rho = 0.9"])
    assert abs(reported - theory) < 0.05
    assert "success rate (ratio)" in rows
