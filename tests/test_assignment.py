"""The variant-assignment contract: vectors, stickiness under ramp-up, split accuracy."""

from __future__ import annotations

import hashlib
import json
import math
import struct
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

import neural.mlops.v1 as contract
from neural.mlops.v1.assignment import (
    Assigner,
    Strategy,
    assign,
    bucket,
    bucket_u64,
    pick,
    validate_weights,
)

VECTORS = Path(contract.__file__).parent / "assignment_vectors.json"


def _independent_bucket(salt: str, unit: str) -> float:
    """The spec's steps written out again without the module (guards against self-agreement)."""
    digest = hashlib.sha256((salt + ":" + unit).encode("utf-8")).digest()
    (u,) = struct.unpack(">Q", digest[:8])
    return float(u) * 2.0**-64


def test_vectors_file_is_large_and_every_vector_reproduces():
    doc = json.loads(VECTORS.read_text(encoding="utf-8"))
    vectors = doc["vectors"]
    assert len(vectors) >= 1000
    for vec in vectors:
        assert bucket_u64(vec["salt"], vec["unit_id"]) == int(vec["uint64"])
        b = bucket(vec["salt"], vec["unit_id"])
        assert b == vec["bucket"] == _independent_bucket(vec["salt"], vec["unit_id"])
        assert pick(b, vec["weights"]) == vec["variant"]
        assert (
            Assigner(vec["salt"], [(str(i), w) for i, w in enumerate(vec["weights"])]).choose_index(
                vec["unit_id"]
            )
            == vec["variant"]
        )


def test_bucket_equal_to_threshold_goes_to_the_next_variant():
    b = bucket("edge", "user0")
    assert pick(b, [b, 1 - b]) == 1
    assert pick(b, [math.nextafter(b, 1.0), 1 - b]) == 0


def test_zero_weight_variant_is_never_chosen_and_rounding_falls_to_last_positive():
    assert pick(0.0, [0.0, 1.0]) == 1
    assert pick(1.0, [0.5, 0.5, 0.0]) == 1  # bucket 1.0 (u >= 2^64 - 2^10)
    a = Assigner("s", [("a", 0.0), ("b", 0.5), ("c", 0.5)])
    assert all(a.choose(f"u{i}") != "a" for i in range(5000))


def test_ramp_up_is_sticky_treatment_never_loses_a_unit():
    units = [f"user{i}" for i in range(20000)]
    previous: set[str] = set()
    for split in (0.01, 0.05, 0.1, 0.25, 0.5, 1.0):
        treated = {u for u in units if assign("test_ramp", u, [split, 1 - split]) == 0}
        assert previous <= treated
        previous = treated
    assert previous == set(units)


def test_split_accuracy_over_100k_ids_is_within_binomial_noise():
    n = 100_000
    for salt, split in (("exp-a", 0.1), ("exp-b", 0.5), ("exp-c", 0.01)):
        a = Assigner(salt, [("treatment", split), ("control", 1 - split)])
        k = sum(1 for i in range(n) if a.choose_index(f"user-{i}") == 0)
        # two-sided binomial test at 1e-4: a correct hash fails this once in 10,000 runs
        assert stats.binomtest(k, n, split).pvalue > 1e-4, (salt, split, k)


def test_multi_variant_split_matches_weights_chi_square():
    weights = [0.2, 0.3, 0.5]
    a = Assigner("multi", [("a", 0.2), ("b", 0.3), ("c", 0.5)])
    counts = np.bincount([a.choose_index(f"u{i}") for i in range(60_000)], minlength=3)
    assert stats.chisquare(counts, 60_000 * np.array(weights)).pvalue > 1e-4


def test_experiments_are_independent_across_salts():
    units = [f"user{i}" for i in range(40_000)]
    x = np.array([assign("exp-1", u, [0.5, 0.5]) for u in units])
    y = np.array([assign("exp-2", u, [0.5, 0.5]) for u in units])
    table = np.array([[np.sum((x == i) & (y == j)) for j in (0, 1)] for i in (0, 1)])
    assert stats.chi2_contingency(table).pvalue > 1e-4


def test_forced_variants_win_and_unknown_forced_variant_is_rejected():
    a = Assigner("qa", [("treatment", 0.0), ("control", 1.0)], forced={"qa-user": "treatment"})
    assert a.choose("qa-user") == "treatment"
    assert a.choose("someone") == "control"
    with pytest.raises(ValueError):
        Assigner("qa", [("treatment", 0.5), ("control", 0.5)], forced={"u": "ghost"})


def test_round_robin_is_exact_and_random_is_unbiased():
    rr = Assigner("rr", [("a", 0.25), ("b", 0.75)], Strategy.ROUND_ROBIN)
    picks = [rr.choose() for _ in range(1000)]
    for n in range(1, 1001):
        assert abs(picks[:n].count("a") - 0.25 * n) <= 1
    rnd = Assigner("rnd", [("a", 0.25), ("b", 0.75)], Strategy.RANDOM, seed=1)
    k = sum(rnd.choose() == "a" for _ in range(40_000))
    assert stats.binomtest(k, 40_000, 0.25).pvalue > 1e-4
    with pytest.raises(ValueError):
        Assigner("h", [("a", 1.0)]).choose(None)


@pytest.mark.parametrize(
    "weights",
    [[], [0.5, 0.4], [1.5, -0.5], [float("nan"), 1.0], [0.0, 0.0], [float("inf")]],
)
def test_invalid_weights_are_rejected(weights):
    with pytest.raises(ValueError):
        validate_weights(weights)
