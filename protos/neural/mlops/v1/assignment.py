"""Variant assignment: the hash every sidecar, SDK and the control plane agree on.

The normative, language-neutral description is ``ASSIGNMENT.md`` beside this file, with
test vectors in ``assignment_vectors.json``. Pure standard library, no state for the
hash strategy.

API (stable):

``bucket_u64(salt, unit_id) -> int``
    ``uint64_be(sha256(utf8(salt + ":" + unit_id))[:8])``.
``bucket(salt, unit_id) -> float``
    ``bucket_u64(...) / 2**64`` as an IEEE-754 double (correctly rounded), in ``[0, 1]``.
``pick(bucket_value, weights) -> int``
    Index of the variant whose cumulative weight (declared order, left-to-right float64
    sums) first exceeds the bucket; the last variant with a positive weight when rounding
    leaves the bucket at or above the total.
``assign(salt, unit_id, weights) -> int``
    ``pick(bucket(salt, unit_id), weights)``.
``Strategy``
    ``HASH`` ("hash"), ``RANDOM`` ("random"), ``ROUND_ROBIN`` ("round_robin"); the same
    strings as ``ModelRoute.strategy``.
``Assigner(salt, variants, strategy=Strategy.HASH, forced=None, seed=None)``
    Precomputed assigner for one route / experiment: ``variants`` is a sequence of
    ``(name, weight)``; ``assigner.choose(unit_id)`` returns the variant name and
    ``assigner.choose_index(unit_id)`` its index. ``forced`` maps unit ids to variant
    names (QA overrides; they win over every strategy). RANDOM ignores the unit id and
    draws from ``random.Random(seed)``; ROUND_ROBIN is smooth weighted round-robin
    (deterministic; after n calls each variant has been chosen within 1 of ``n * w``).
``pick_range(bucket_value, ranges) -> int``
    Layers (ASSIGNMENT.md "Layers"): index of the ``(start, end)`` range, among the
    disjoint ranges of one layer's tests, with ``start <= bucket_value < end``; -1 if
    none holds it.
``layer_test(layer_id, unit_id, ranges) -> int``
    ``pick_range(bucket(layer_id, unit_id), ranges)``: which test of the layer the unit
    is in (-1: none). Its arm is then ``assign(test_id, unit_id, weights)``.
``validate_weights(weights) -> tuple[float, ...]``
    Raises ``ValueError`` unless every weight is finite, in ``[0, 1]``, at least one is
    positive, and they sum to 1 within 1e-9.

Two-arm convention: ``treatment iff bucket < split``, i.e. the arm whose share grows
during a ramp-up is declared FIRST (``[("treatment", split), ("control", 1 - split)]``).
Growing ``split`` then never moves a unit out of treatment (sticky ramp-up); it only
moves control units in. Salts differ per experiment / deployment, so assignments of
different routes are independent.
"""

from __future__ import annotations

import bisect
import hashlib
import math
import random
import threading
from collections.abc import Mapping, Sequence
from enum import StrEnum

__all__ = [
    "TWO_POW_64",
    "Assigner",
    "Strategy",
    "assign",
    "bucket",
    "bucket_u64",
    "layer_test",
    "pick",
    "pick_range",
    "validate_weights",
]

TWO_POW_64 = 2**64
# float(u) * 2**-64 == u / 2**64 exactly (scaling by a power of two is exact in binary64),
# and it avoids a big-integer division on the hot path.
_INV_2_64 = 2.0**-64
_sha256 = hashlib.sha256
_from_bytes = int.from_bytes
_bisect_right = bisect.bisect_right
WEIGHT_TOLERANCE = 1e-9


class Strategy(StrEnum):
    HASH = "hash"
    RANDOM = "random"
    ROUND_ROBIN = "round_robin"


def bucket_u64(salt: str, unit_id: str) -> int:
    """The first 8 bytes of ``sha256(utf8(salt + ":" + unit_id))`` as a big-endian uint64."""
    digest = hashlib.sha256(f"{salt}:{unit_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def bucket(salt: str, unit_id: str) -> float:
    """The unit's position in ``[0, 1]`` for this salt (1.0 only with probability 2**-54)."""
    return bucket_u64(salt, unit_id) / TWO_POW_64


def cumulative(weights: Sequence[float]) -> list[float]:
    """Left-to-right float64 running sums of ``weights`` (the comparison thresholds)."""
    out: list[float] = []
    total = 0.0
    for w in weights:
        total += float(w)
        out.append(total)
    return out


def _last_positive(weights: Sequence[float]) -> int:
    for i in range(len(weights) - 1, -1, -1):
        if weights[i] > 0:
            return i
    raise ValueError("no variant has a positive weight")


def pick(bucket_value: float, weights: Sequence[float]) -> int:
    """Index of the first variant with ``bucket_value < cumulative weight``."""
    total = 0.0
    for i, w in enumerate(weights):
        total += float(w)
        if bucket_value < total and w > 0:
            return i
    return _last_positive(weights)


def assign(salt: str, unit_id: str, weights: Sequence[float]) -> int:
    """Variant index of ``unit_id`` under ``salt`` (the HASH strategy)."""
    return pick(bucket(salt, unit_id), weights)


def pick_range(bucket_value: float, ranges: Sequence[tuple[float, float]]) -> int:
    """Index of the range ``[start, end)`` holding ``bucket_value`` (-1: none). The ranges
    are one layer's tests' and do not overlap; their order does not matter."""
    for i, (start, end) in enumerate(ranges):
        if start <= bucket_value < end:
            return i
    return -1


def layer_test(layer_id: str, unit_id: str, ranges: Sequence[tuple[float, float]]) -> int:
    """Which of a layer's tests (given by their ranges) ``unit_id`` is in; -1 if none."""
    return pick_range(bucket(layer_id, unit_id), ranges)


def validate_weights(weights: Sequence[float]) -> tuple[float, ...]:
    """Check a weight vector; returns it as floats or raises ``ValueError``."""
    out = tuple(float(w) for w in weights)
    if not out:
        raise ValueError("at least one variant is required")
    for w in out:
        if not math.isfinite(w) or w < 0 or w > 1:
            raise ValueError(f"weight {w!r} is not in [0, 1]")
    if not any(w > 0 for w in out):
        raise ValueError("at least one weight must be positive")
    if abs(math.fsum(out) - 1.0) > WEIGHT_TOLERANCE:
        raise ValueError(f"weights sum to {math.fsum(out)!r}, not 1")
    return out


class Assigner:
    """Assignment for one route: precomputed thresholds and the per-strategy state.

    Thread-safe. ``choose`` costs one SHA-256 of a short string for HASH.
    """

    __slots__ = (
        "salt",
        "names",
        "weights",
        "strategy",
        "forced",
        "_thresholds",
        "_prefix",
        "_last",
        "_fast",
        "_rng",
        "_current",
        "_lock",
    )

    def __init__(
        self,
        salt: str,
        variants: Sequence[tuple[str, float]],
        strategy: Strategy | str = Strategy.HASH,
        forced: Mapping[str, str] | None = None,
        seed: int | None = None,
    ) -> None:
        self.salt = salt
        self.names = tuple(name for name, _ in variants)
        self.weights = validate_weights([w for _, w in variants])
        self.strategy = Strategy(strategy)
        self.forced = dict(forced or {})
        for unit, name in self.forced.items():
            if name not in self.names:
                raise ValueError(f"forced variant {name!r} for {unit!r} is not a variant")
        self._last = _last_positive(self.weights)
        # Cumulative thresholds with the last positive variant's set to +inf, so that
        # bisect_right always lands on a variant and implements rule 3 (rounding) for free.
        thresholds = cumulative(self.weights)
        for i in range(self._last, len(thresholds)):
            thresholds[i] = math.inf
        self._thresholds = thresholds
        self._prefix = f"{salt}:"
        self._fast = self.strategy is Strategy.HASH and not self.forced
        self._rng = random.Random(seed)
        self._current = [0.0] * len(self.weights)
        self._lock = threading.Lock()

    def _index_of_bucket(self, b: float) -> int:
        # The first threshold > b; a zero-weight variant repeats the previous threshold,
        # so it is never the first one above b.
        return bisect.bisect_right(self._thresholds, b)

    def hash_index(self, unit_id: str) -> int:
        digest = _sha256((self._prefix + unit_id).encode()).digest()
        return _bisect_right(self._thresholds, _from_bytes(digest[:8], "big") * _INV_2_64)

    def choose_index(self, unit_id: str | None = None) -> int:
        if unit_id is not None and self.forced:
            name = self.forced.get(unit_id)
            if name is not None:
                return self.names.index(name)
        if self.strategy is Strategy.HASH:
            if unit_id is None:
                raise ValueError("the hash strategy needs a unit id")
            return self.hash_index(unit_id)
        if self.strategy is Strategy.RANDOM:
            with self._lock:
                return self._index_of_bucket(self._rng.random())
        with self._lock:
            # Smooth weighted round-robin (as in nginx): deterministic and evenly interleaved.
            cur = self._current
            best = -1
            for i, w in enumerate(self.weights):
                if w <= 0:
                    continue
                cur[i] += w
                if best < 0 or cur[i] > cur[best]:
                    best = i
            cur[best] -= 1.0
            return best

    def choose(self, unit_id: str | None = None) -> str:
        if self._fast and unit_id is not None:
            digest = _sha256((self._prefix + unit_id).encode()).digest()
            return self.names[
                _bisect_right(self._thresholds, _from_bytes(digest[:8], "big") * _INV_2_64)
            ]
        return self.names[self.choose_index(unit_id)]
