"""By-unit metric tests honour the test's multiple-testing correction and carry the same
sequential and Bayesian views as the request-level ones, computed from the by-unit
(delta-method) variances."""

from __future__ import annotations

import math

import numpy as np
import pytest

from neural.mlops.server.experiments import sequential, statistics
from neural.mlops.server.experiments.analysis import AnalysisConfig, build_report
from neural.mlops.server.experiments.ratio import compare_ratio
from neural.mlops.server.experiments.unitstats import aggregate
from neural.mlops.v1.traffic import VariantStats

WEIGHTS = [("treatment", 0.5), ("control", 0.5)]


def _arm(rng: np.random.Generator, users: int, err: float, lat: float, rev: float):
    n = rng.geometric(1 / 10, size=users)
    s = rng.binomial(n, rng.beta(2.0, 6.0, size=users))
    e = rng.binomial(n, err)
    latency = n * lat * rng.lognormal(0.0, 0.3, size=users)
    revenue = n * rev * rng.gamma(2.0, 0.5, size=users)
    units = aggregate(n, s, e, latency, custom={"revenue": (n, revenue)})
    # Request-level totals (per-request custom values are not simulated: the by-unit
    # metrics come from the unit totals).
    stats = VariantStats(count=int(n.sum()), successes=int(s.sum()), errors=int(e.sum()))
    return stats, units


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(21)
    c = _arm(rng, 800, 0.05, 0.02, 1.0)
    t = _arm(rng, 800, 0.062, 0.021, 1.04)
    return {"control": c[0], "treatment": t[0]}, {"control": c[1], "treatment": t[1]}


@pytest.mark.parametrize("method", [statistics.HOLM, statistics.BENJAMINI_HOCHBERG])
def test_by_unit_metrics_are_adjusted_by_the_chosen_correction(data, method):
    stats, units = data
    cfg = AnalysisConfig(decision_rule="sequential", multiple_testing=method)
    rep = build_report(WEIGHTS, stats, control="control", config=cfg, units=units)
    assert rep.units.unit == "unit"
    metrics = rep.top.metrics
    assert set(metrics) == {"error_rate", "latency", "revenue"}
    raw = [metrics[k].p_value for k in metrics]
    expected = statistics.adjust(raw, method)
    assert [metrics[k].p_value_adjusted for k in metrics] == pytest.approx(list(expected))
    for k, adj in zip(metrics, expected, strict=True):
        assert metrics[k].statistically_significant == bool(adj < 0.05)
    seq = [metrics[k].sequential.p_value for k in metrics]
    seq_expected = statistics.adjust(seq, method)
    assert [metrics[k].sequential.p_value_adjusted for k in metrics] == pytest.approx(
        list(seq_expected))


def test_bh_and_holm_differ_on_these_data(data):
    stats, units = data
    adj = {
        m: build_report(WEIGHTS, stats, control="control", units=units,
                        config=AnalysisConfig(multiple_testing=m)).top.metrics
        for m in (statistics.HOLM, statistics.BENJAMINI_HOCHBERG)
    }
    holm = [x.p_value_adjusted for x in adj[statistics.HOLM].values()]
    bh = [x.p_value_adjusted for x in adj[statistics.BENJAMINI_HOCHBERG].values()]
    assert holm != pytest.approx(bh) and all(b <= h + 1e-12 for b, h in zip(bh, holm, strict=True))


def test_by_unit_metrics_carry_sequential_and_bayesian_views_by_unit(data):
    stats, units = data
    cfg = AnalysisConfig(decision_rule="sequential")
    rep = build_report(WEIGHTS, stats, control="control", config=cfg, units=units)
    plain = build_report(WEIGHTS, stats, control="control", config=cfg)
    for key, m in rep.top.metrics.items():
        r = compare_ratio(units["control"], units["treatment"], key, 0.95)
        assert r is not None and m.n_control == r.units_control  # counts units
        expected = sequential.msprt_by_unit(r.difference, r.standard_error**2, r.units_control,
                                            r.units_treatment, 0.05, cfg.mixture())
        assert math.isclose(m.sequential.p_value_current, float(expected.p_value), rel_tol=1e-9)
        assert m.sequential.confidence_sequence_current == pytest.approx(
            (float(expected.ci_low), float(expected.ci_high)))
        # The posterior's sd is the delta-method standard error (flat prior) ...
        assert math.isclose(m.bayesian_absolute.std, r.standard_error, rel_tol=1e-9)
        assert m.bayesian_relative is not None
        assert m.sequential.running.p_value == m.sequential.p_value
    # Success rates vary by user (Beta(2, 6)): the by-unit posterior of the success rate is
    # wider than the request-level one, as clustered requests carry less information.
    assert rep.top.bayesian.absolute.std > 1.5 * plain.top.bayesian.absolute.std
