"""Sufficient statistics of traffic, shared by the sidecar, the control plane and analysis.

Every type here is a small mergeable aggregate (the shape of gbstats' ``SampleMeanStatistic``):
partial aggregates combine with ``+`` (commutative, associative, ``T()`` is the identity),
so a sidecar's batch, a stored time window and a whole experiment are the same object.
``to_dict()`` / ``T.from_dict(d)`` give a JSON-safe dict (no NaN/inf) for storage and the
wire. Pure standard library.

API (stable):

``Moments(n=0, sum=0.0, sum_squares=0.0)``
    ``add(x)``, ``Moments.of(values)``, ``mean``, ``variance`` (sample, n-1 denominator,
    0.0 when n < 2, clamped at 0), ``std``.
``LatencyHistogram``
    Latency in SECONDS. Fixed log-spaced bucket upper bounds :data:`LATENCY_BOUNDS`
    (40 per decade from 1 microsecond to 10 000 s; bucket ``i`` holds ``BOUNDS[i-1] <= v <
    BOUNDS[i]``, bucket 0 everything below ``BOUNDS[0]``, bucket ``len(BOUNDS)`` everything
    at or above the last bound). Fields ``counts: dict[int, int]`` (sparse), ``count``,
    ``sum``, ``sum_squares``, ``min``, ``max``. ``add(seconds)``, ``mean``, ``std``,
    ``quantile(q)`` (linear interpolation inside the bucket, clamped to [min, max] when
    known; None when empty; relative error below the bucket width, ~6%), ``moments()``,
    ``dense()`` / ``LatencyHistogram.from_dense(buckets, moments, lowest, highest)`` (the
    wire form of routing.proto: counts per bucket index, trailing zeros omitted).
``VariantStats``
    ``count`` (requests), ``errors`` (failed calls), ``successes`` (positive outcomes: the
    primary metric's numerator; late outcomes add here without adding to ``count``),
    ``latency: LatencyHistogram``, ``custom: dict[str, Moments]``,
    ``status_codes: dict[str, int]``. ``observe(success=None, latency=None, error=False,
    custom=None, status_code=None)`` records one request; ``success_rate``, ``error_rate``.
``ShadowStats``
    ``compared`` (pairs judged), ``agreements``, ``primary_latency`` / ``shadow_latency``
    histograms, ``shadow_errors``, ``dropped`` (mirror queue full), and ``disagreements``:
    the most recent :data:`MAX_DISAGREEMENT_SAMPLES` disagreeing pairs (JSON dicts, e.g.
    ``{"request_id": ..., "primary": ..., "shadow": ...}``). ``agreement_rate``.

Histogram bucket scheme changes would be a new :data:`HISTOGRAM_SCHEME`; ``from_dict``
rejects histograms written with another scheme rather than merging them wrongly.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "HISTOGRAM_SCHEME",
    "LATENCY_BOUNDS",
    "MAX_DISAGREEMENT_SAMPLES",
    "LatencyHistogram",
    "Moments",
    "ShadowStats",
    "VariantStats",
]

BUCKETS_PER_DECADE = 40
_LOW_EXP = -6 * BUCKETS_PER_DECADE  # 1e-6 s
_HIGH_EXP = 4 * BUCKETS_PER_DECADE  # 1e4 s
LATENCY_BOUNDS: tuple[float, ...] = tuple(
    10.0 ** (k / BUCKETS_PER_DECADE) for k in range(_LOW_EXP, _HIGH_EXP + 1)
)
HISTOGRAM_SCHEME = "log10x40:1e-6..1e4"
MAX_DISAGREEMENT_SAMPLES = 20


def _finite(x: float, what: str) -> float:
    x = float(x)
    if not math.isfinite(x):
        raise ValueError(f"{what} must be a finite number, got {x!r}")
    return x


@dataclass(slots=True)
class Moments:
    """Count, sum and sum of squares of one numeric metric."""

    n: int = 0
    sum: float = 0.0
    sum_squares: float = 0.0

    def add(self, x: float) -> None:
        x = _finite(x, "metric value")
        self.n += 1
        self.sum += x
        self.sum_squares += x * x

    @classmethod
    def of(cls, values: Iterable[float]) -> Moments:
        m = cls()
        for v in values:
            m.add(v)
        return m

    def __add__(self, other: Moments) -> Moments:
        return Moments(self.n + other.n, self.sum + other.sum, self.sum_squares + other.sum_squares)

    @property
    def mean(self) -> float:
        return self.sum / self.n if self.n else 0.0

    @property
    def variance(self) -> float:
        if self.n < 2:
            return 0.0
        return max((self.sum_squares - self.sum * self.sum / self.n) / (self.n - 1), 0.0)

    @property
    def std(self) -> float:
        return math.sqrt(self.variance)

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "sum": self.sum, "sum_squares": self.sum_squares}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Moments:
        return cls(int(d.get("n", 0)), float(d.get("sum", 0.0)), float(d.get("sum_squares", 0.0)))


def latency_bucket(seconds: float) -> int:
    """Index of the histogram bucket holding ``seconds``."""
    return bisect.bisect_right(LATENCY_BOUNDS, seconds)


@dataclass(slots=True)
class LatencyHistogram:
    """Mergeable latency distribution on the fixed :data:`LATENCY_BOUNDS`."""

    counts: dict[int, int] = field(default_factory=dict)
    count: int = 0
    sum: float = 0.0
    sum_squares: float = 0.0
    min: float | None = None
    max: float | None = None

    def add(self, seconds: float, times: int = 1) -> None:
        seconds = _finite(seconds, "latency")
        if seconds < 0:
            raise ValueError(f"latency must be >= 0, got {seconds!r}")
        i = bisect.bisect_right(LATENCY_BOUNDS, seconds)
        self.counts[i] = self.counts.get(i, 0) + times
        self.count += times
        self.sum += seconds * times
        self.sum_squares += seconds * seconds * times
        if self.min is None or seconds < self.min:
            self.min = seconds
        if self.max is None or seconds > self.max:
            self.max = seconds

    def __add__(self, other: LatencyHistogram) -> LatencyHistogram:
        counts = dict(self.counts)
        for i, c in other.counts.items():
            counts[i] = counts.get(i, 0) + c
        mins = [v for v in (self.min, other.min) if v is not None]
        maxs = [v for v in (self.max, other.max) if v is not None]
        return LatencyHistogram(
            counts,
            self.count + other.count,
            self.sum + other.sum,
            self.sum_squares + other.sum_squares,
            min(mins) if mins else None,
            max(maxs) if maxs else None,
        )

    def moments(self) -> Moments:
        return Moments(self.count, self.sum, self.sum_squares)

    def dense(self) -> list[int]:
        """Counts per bucket index 0..k, trailing empty buckets omitted (the wire form)."""
        if not self.counts:
            return []
        out = [0] * (max(self.counts) + 1)
        for i, c in self.counts.items():
            out[i] = c
        return out

    @classmethod
    def from_dense(
        cls,
        buckets: Iterable[int],
        moments: Moments | None = None,
        lowest: float | None = None,
        highest: float | None = None,
    ) -> LatencyHistogram:
        """Rebuild from :meth:`dense` counts plus the latency moments (count, sum, sum_squares)."""
        counts: dict[int, int] = {}
        for i, c in enumerate(buckets):
            if c < 0:
                raise ValueError("histogram counts must be >= 0")
            if c:
                counts[i] = int(c)
        if counts and max(counts) > len(LATENCY_BOUNDS):
            raise ValueError("too many histogram buckets")
        total = sum(counts.values())
        m = moments or Moments(total, 0.0, 0.0)
        return cls(counts, m.n or total, m.sum, m.sum_squares, lowest, highest)

    @property
    def mean(self) -> float | None:
        return self.sum / self.count if self.count else None

    @property
    def std(self) -> float:
        return self.moments().std

    def quantile(self, q: float) -> float | None:
        """The q-quantile (0 <= q <= 1) by linear interpolation within its bucket."""
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"quantile must be in [0, 1], got {q!r}")
        total = sum(c for c in self.counts.values() if c > 0)
        if total == 0:
            return None
        rank = q * total
        seen = 0
        for i in sorted(self.counts):
            c = self.counts[i]
            if c <= 0:
                continue
            if seen + c >= rank:
                lo = LATENCY_BOUNDS[i - 1] if i > 0 else 0.0
                hi = LATENCY_BOUNDS[i] if i < len(LATENCY_BOUNDS) else (self.max or lo)
                # Observed extremes (when known) tighten the edge buckets.
                if self.min is not None:
                    lo = max(lo, min(self.min, hi))
                if self.max is not None:
                    hi = max(min(hi, self.max), lo)
                return lo + (hi - lo) * ((rank - seen) / c)
            seen += c
        return self.max

    def to_dict(self) -> dict[str, Any]:
        return {
            "scheme": HISTOGRAM_SCHEME,
            "counts": {str(i): c for i, c in sorted(self.counts.items())},
            "count": self.count,
            "sum": self.sum,
            "sum_squares": self.sum_squares,
            "min": self.min,
            "max": self.max,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LatencyHistogram:
        scheme = d.get("scheme", HISTOGRAM_SCHEME)
        if scheme != HISTOGRAM_SCHEME:
            raise ValueError(f"histogram scheme {scheme!r} is not {HISTOGRAM_SCHEME!r}")
        counts = {int(i): int(c) for i, c in (d.get("counts") or {}).items()}
        for i in counts:
            if not 0 <= i <= len(LATENCY_BOUNDS):
                raise ValueError(f"histogram bucket {i} is out of range")
        mn, mx = d.get("min"), d.get("max")
        return cls(
            counts,
            int(d.get("count", 0)),
            float(d.get("sum", 0.0)),
            float(d.get("sum_squares", 0.0)),
            None if mn is None else float(mn),
            None if mx is None else float(mx),
        )


def _add_maps(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for k, v in b.items():
        out[k] = out[k] + v if k in out else v
    return out


@dataclass(slots=True)
class VariantStats:
    """Everything the analysis needs about one variant's traffic."""

    count: int = 0
    errors: int = 0
    successes: int = 0
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    custom: dict[str, Moments] = field(default_factory=dict)
    status_codes: dict[str, int] = field(default_factory=dict)

    def observe(
        self,
        *,
        success: bool | None = None,
        latency: float | None = None,
        error: bool = False,
        custom: Mapping[str, float] | None = None,
        status_code: str | int | None = None,
    ) -> None:
        """Record one request (validates everything before changing anything)."""
        values = {str(k): _finite(v, f"custom metric {k!r}") for k, v in (custom or {}).items()}
        if latency is not None:
            latency = _finite(latency, "latency")
            if latency < 0:
                raise ValueError(f"latency must be >= 0, got {latency!r}")
            self.latency.add(latency)
        self.count += 1
        if error:
            self.errors += 1
        if success:
            self.successes += 1
        for k, v in values.items():
            self.custom.setdefault(k, Moments()).add(v)
        if status_code is not None:
            key = str(status_code)
            self.status_codes[key] = self.status_codes.get(key, 0) + 1

    def __add__(self, other: VariantStats) -> VariantStats:
        return VariantStats(
            self.count + other.count,
            self.errors + other.errors,
            self.successes + other.successes,
            self.latency + other.latency,
            _add_maps(self.custom, other.custom),
            _add_maps(self.status_codes, other.status_codes),
        )

    @property
    def success_rate(self) -> float | None:
        return self.successes / self.count if self.count else None

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.count if self.count else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "errors": self.errors,
            "successes": self.successes,
            "latency": self.latency.to_dict(),
            "custom": {k: m.to_dict() for k, m in sorted(self.custom.items())},
            "status_codes": dict(sorted(self.status_codes.items())),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> VariantStats:
        return cls(
            int(d.get("count", 0)),
            int(d.get("errors", 0)),
            int(d.get("successes", 0)),
            LatencyHistogram.from_dict(d.get("latency") or {}),
            {str(k): Moments.from_dict(m) for k, m in (d.get("custom") or {}).items()},
            {str(k): int(v) for k, v in (d.get("status_codes") or {}).items()},
        )


@dataclass(slots=True)
class ShadowStats:
    """Primary-vs-shadow comparison aggregate for one shadow target."""

    compared: int = 0
    agreements: int = 0
    primary_latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    shadow_latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    shadow_errors: int = 0
    dropped: int = 0
    disagreements: list[dict[str, Any]] = field(default_factory=list)

    def observe(
        self,
        *,
        agreed: bool | None,
        primary_latency: float | None = None,
        shadow_latency: float | None = None,
        shadow_error: bool = False,
        sample: dict[str, Any] | None = None,
    ) -> None:
        """Record one mirrored call; ``agreed=None`` when it could not be compared."""
        for value in (primary_latency, shadow_latency):
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise ValueError(f"latency must be a finite number >= 0, got {value!r}")
        if primary_latency is not None:
            self.primary_latency.add(primary_latency)
        if shadow_latency is not None:
            self.shadow_latency.add(shadow_latency)
        if shadow_error:
            self.shadow_errors += 1
        if agreed is not None:
            self.compared += 1
            if agreed:
                self.agreements += 1
            elif sample is not None:
                self.disagreements.append(sample)
                del self.disagreements[:-MAX_DISAGREEMENT_SAMPLES]

    def __add__(self, other: ShadowStats) -> ShadowStats:
        return ShadowStats(
            self.compared + other.compared,
            self.agreements + other.agreements,
            self.primary_latency + other.primary_latency,
            self.shadow_latency + other.shadow_latency,
            self.shadow_errors + other.shadow_errors,
            self.dropped + other.dropped,
            (self.disagreements + other.disagreements)[-MAX_DISAGREEMENT_SAMPLES:],
        )

    @property
    def agreement_rate(self) -> float | None:
        return self.agreements / self.compared if self.compared else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "compared": self.compared,
            "agreements": self.agreements,
            "primary_latency": self.primary_latency.to_dict(),
            "shadow_latency": self.shadow_latency.to_dict(),
            "shadow_errors": self.shadow_errors,
            "dropped": self.dropped,
            "disagreements": list(self.disagreements),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ShadowStats:
        return cls(
            int(d.get("compared", 0)),
            int(d.get("agreements", 0)),
            LatencyHistogram.from_dict(d.get("primary_latency") or {}),
            LatencyHistogram.from_dict(d.get("shadow_latency") or {}),
            int(d.get("shadow_errors", 0)),
            int(d.get("dropped", 0)),
            list(d.get("disagreements") or [])[-MAX_DISAGREEMENT_SAMPLES:],
        )
