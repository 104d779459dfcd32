"""The contract's sufficient statistics: merge by +, exact moments, histogram quantiles, JSON."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from neural.mlops.v1.traffic import (
    LATENCY_BOUNDS,
    LatencyHistogram,
    Moments,
    ShadowStats,
    VariantStats,
)


def _variant(rng: random.Random, n: int) -> VariantStats:
    s = VariantStats()
    for _ in range(n):
        s.observe(success=rng.random() < 0.4, latency=rng.lognormvariate(-3, 0.6),
                  error=rng.random() < 0.05, custom={"revenue": rng.gauss(20, 5)},
                  status_code=rng.choice(["OK", "INTERNAL"]))
    return s


def test_merging_parts_equals_observing_everything() -> None:
    rng = random.Random(1)
    parts = [_variant(rng, 200) for _ in range(5)]
    merged = parts[0] + parts[1] + parts[2] + parts[3] + parts[4]
    regrouped = (parts[4] + parts[2]) + (parts[0] + (parts[3] + parts[1]))
    assert merged.count == regrouped.count == 1000
    assert merged.latency.counts == regrouped.latency.counts
    assert merged.status_codes == regrouped.status_codes
    assert merged.custom["revenue"].sum == pytest.approx(regrouped.custom["revenue"].sum, rel=1e-12)
    assert VariantStats() + merged == merged  # identity


def test_moments_match_numpy() -> None:
    x = np.random.default_rng(2).normal(1000, 3, size=50_000)
    m = Moments.of(x.tolist())
    assert m.mean == pytest.approx(x.mean(), rel=1e-12)
    assert m.variance == pytest.approx(x.var(ddof=1), rel=1e-6)
    assert Moments().variance == 0.0 and Moments.of([5.0]).variance == 0.0


def test_histogram_quantiles_within_bucket_width() -> None:
    x = np.random.default_rng(3).lognormal(-3.5, 0.8, size=100_000)
    h = LatencyHistogram()
    for v in x:
        h.add(float(v))
    width = LATENCY_BOUNDS[1] / LATENCY_BOUNDS[0] - 1  # ~5.9% per bucket
    for q in (0.5, 0.9, 0.95, 0.99, 0.999):
        assert abs(h.quantile(q) / np.quantile(x, q) - 1) < width
    assert h.quantile(0.0) == pytest.approx(x.min()) and h.quantile(1.0) == pytest.approx(x.max())
    assert LatencyHistogram().quantile(0.5) is None
    dense = LatencyHistogram.from_dense(h.dense(), h.moments())
    assert dense.counts == h.counts and dense.quantile(0.5) == pytest.approx(
        h.quantile(0.5), rel=width
    )
    with pytest.raises(ValueError):
        h.add(float("nan"))
    with pytest.raises(ValueError):
        h.add(-1.0)


def test_json_round_trip_is_exact_and_nan_free() -> None:
    rng = random.Random(4)
    v = _variant(rng, 300)
    text = json.dumps(v.to_dict(), allow_nan=False)
    assert VariantStats.from_dict(json.loads(text)) == v
    sh = ShadowStats()
    for i in range(50):
        sh.observe(agreed=i % 4 != 0, primary_latency=0.01, shadow_latency=0.02,
                   sample={"request_id": str(i), "primary": [1], "shadow": [2]})
    assert ShadowStats.from_dict(json.loads(json.dumps(sh.to_dict(), allow_nan=False))) == sh
    assert len(sh.disagreements) == 13 and sh.agreement_rate == pytest.approx(37 / 50)
    bad = v.to_dict()
    bad["latency"]["scheme"] = "linear:0..1"
    with pytest.raises(ValueError):
        VariantStats.from_dict(bad)


def test_observe_rejects_bad_values_without_changing_anything() -> None:
    s = VariantStats()
    with pytest.raises(ValueError):
        s.observe(success=True, latency=0.1, custom={"x": float("inf")})
    with pytest.raises(ValueError):
        s.observe(success=True, latency=float("nan"))
    assert s == VariantStats()
