"""Per-variant sufficient statistics over units, kept incrementally.

Every per-request metric is a ratio of two per-unit sums (Deng, Knoblich & Lu,
"Applying the Delta Method in Metric Analytics", KDD 2018): for unit ``u`` a numerator
``x_u`` and a denominator ``y_u``:

============== ======================== ===========================
metric         x_u                      y_u
============== ======================== ===========================
success_rate   successes (late outcomes requests
               included)
error_rate     errors                   requests
latency        latency sum (seconds)    requests with a latency
<custom name>  sum of the metric        values of the metric
============== ======================== ===========================

A variant's :class:`UnitTotals` holds, per metric, the sums over its units of ``x``,
``x^2``, ``y``, ``y^2``, ``x y`` (gbstats' ``RatioStatistic`` fields) and, for CUPED,
``x c`` and ``y c`` with ``c_u`` the unit's pre-experiment covariate (0 when none was
given; Deng et al. 2013 allow any pre-treatment variable), plus ``units``, ``sum c`` and
``sum c^2``. These are not additive over time windows (a unit's square is not the sum of
its windows' squares), so the store keeps each unit's running counts and updates the
totals by differences: when ``x_u`` goes from ``a`` to ``a + d``, ``sum x^2`` grows by
``(a + d)^2 - a^2`` (:meth:`UnitTotals.move`). :func:`aggregate` computes the same totals
from per-unit arrays in one pass (simulations, benchmarks, and the check that both agree).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from neural.mlops.v1.units import UnitCounts

SUCCESS = "success_rate"
ERRORS = "error_rate"
LATENCY = "latency"
BUILT_IN = (SUCCESS, ERRORS, LATENCY)

__all__ = ["BUILT_IN", "ERRORS", "LATENCY", "SUCCESS", "RatioSums", "UnitTotals", "aggregate",
           "metric_key", "pairs"]


def metric_key(custom_name: str) -> str:
    """The report key of a custom metric (prefixed when it would shadow a built-in one)."""
    return f"custom:{custom_name}" if custom_name in BUILT_IN else custom_name


def pairs(u: UnitCounts) -> dict[str, tuple[float, float]]:
    """(numerator, denominator) of every metric of one unit."""
    out: dict[str, tuple[float, float]] = {
        SUCCESS: (u.successes, u.requests),
        ERRORS: (u.errors, u.requests),
        LATENCY: (u.latency_sum, u.latency_n),
    }
    for name, (n, s) in u.custom.items():
        out[metric_key(name)] = (s, n)
    return out


@dataclass(slots=True)
class RatioSums:
    """Sums over a variant's units of one metric's numerator x and denominator y."""

    x: float = 0.0
    xx: float = 0.0
    y: float = 0.0
    yy: float = 0.0
    xy: float = 0.0
    xc: float = 0.0  # x times the unit's covariate
    yc: float = 0.0

    def add(self, x0: Sequence[float], x1: Sequence[float], y0: Sequence[float],
            y1: Sequence[float], c: Sequence[float]) -> None:
        """Units ``i`` went from ``(x0[i], y0[i])`` to ``(x1[i], y1[i])``, covariate ``c[i]``;
        the same additions, in the same order, as :meth:`UnitTotals.move` unit by unit."""
        x, xx, y, yy, xy, xc, yc = self.x, self.xx, self.y, self.yy, self.xy, self.xc, self.yc
        for a0, a1, b0, b1, ci in zip(x0, x1, y0, y1, c, strict=True):
            x += a1 - a0
            xx += a1 * a1 - a0 * a0
            y += b1 - b0
            yy += b1 * b1 - b0 * b0
            xy += a1 * b1 - a0 * b0
            xc += ci * (a1 - a0)
            yc += ci * (b1 - b0)
        self.x, self.xx, self.y, self.yy, self.xy, self.xc, self.yc = x, xx, y, yy, xy, xc, yc

    def to_list(self) -> list[float]:
        return [self.x, self.xx, self.y, self.yy, self.xy, self.xc, self.yc]

    @classmethod
    def from_list(cls, v: list[float]) -> RatioSums:
        return cls(*(float(a) for a in v))


@dataclass(slots=True)
class UnitTotals:
    """One variant's units: count, covariate moments and every metric's :class:`RatioSums`."""

    units: int = 0
    with_covariate: int = 0
    c: float = 0.0
    cc: float = 0.0
    metrics: dict[str, RatioSums] = field(default_factory=dict)

    def move(self, old: UnitCounts | None, new: UnitCounts, covariate: float | None) -> None:
        """A unit's counts went from ``old`` (None: a new unit) to ``new``."""
        c = covariate or 0.0
        if old is None:
            self.units += 1
            if covariate is not None:
                self.with_covariate += 1
                self.c += c
                self.cc += c * c
        before = pairs(old) if old is not None else {}
        for key, (x1, y1) in pairs(new).items():
            x0, y0 = before.get(key, (0.0, 0.0))
            m = self.metrics.get(key)
            if m is None:
                m = self.metrics[key] = RatioSums()
            m.x += x1 - x0
            m.xx += x1 * x1 - x0 * x0
            m.y += y1 - y0
            m.yy += y1 * y1 - y0 * y0
            m.xy += x1 * y1 - x0 * y0
            m.xc += c * (x1 - x0)
            m.yc += c * (y1 - y0)

    def move_many(self, old: Sequence[UnitCounts | None], new: Sequence[UnitCounts],
                  covariates: Sequence[float | None]) -> None:
        """:meth:`move` of every unit ``i`` (``old[i]`` to ``new[i]``, ``covariates[i]``) in
        order, bit for bit: each sum takes the same additions in the same order, one metric
        at a time instead of one unit at a time (no per-unit dicts)."""
        names = {name for u in new if u.custom for name in u.custom}
        if len({metric_key(name) for name in names}) < len(names):  # "latency" and
            for args in zip(old, new, covariates, strict=True):  # "custom:latency": one key
                self.move(*args)
            return
        cs = [c or 0.0 for c in covariates]
        for was, c in zip(old, covariates, strict=True):
            if was is None:
                self.units += 1
                if c is not None:
                    self.with_covariate += 1
                    self.c += c
                    self.cc += c * c
        zero = UnitCounts()  # int 0 - x is x, as move's 0.0 - x (float(x) either way)
        olds = [zero if o is None else o for o in old]
        if new:
            r0, r1 = [o.requests for o in olds], [u.requests for u in new]
            self._sums(SUCCESS).add([o.successes for o in olds], [u.successes for u in new],
                                    r0, r1, cs)
            self._sums(ERRORS).add([o.errors for o in olds], [u.errors for u in new], r0, r1, cs)
            self._sums(LATENCY).add([o.latency_sum for o in olds], [u.latency_sum for u in new],
                                    [o.latency_n for o in olds], [u.latency_n for u in new], cs)
        for name in names:
            x0, x1, y0, y1, cn = [], [], [], [], []
            for o, u, c in zip(olds, new, cs, strict=True):
                got = u.custom.get(name)
                if got is not None:
                    n0, s0 = o.custom.get(name, (0.0, 0.0))
                    x0.append(s0)
                    y0.append(n0)
                    x1.append(got[1])
                    y1.append(got[0])
                    cn.append(c)
            self._sums(metric_key(name)).add(x0, x1, y0, y1, cn)

    def _sums(self, key: str) -> RatioSums:
        m = self.metrics.get(key)
        if m is None:
            m = self.metrics[key] = RatioSums()
        return m

    def recovariate(self, counts: UnitCounts, old: float | None, new: float) -> None:
        """The covariate of a unit already counted (with ``counts``) went from ``old``."""
        c0 = old or 0.0
        if old is None:
            self.with_covariate += 1
        self.c += new - c0
        self.cc += new * new - c0 * c0
        for key, (x, y) in pairs(counts).items():
            m = self.metrics.get(key)
            if m is None:
                m = self.metrics[key] = RatioSums()
            m.xc += (new - c0) * x
            m.yc += (new - c0) * y

    def to_dict(self) -> dict[str, Any]:
        return {"units": self.units, "with_covariate": self.with_covariate, "c": self.c,
                "cc": self.cc, "metrics": {k: m.to_list() for k, m in sorted(self.metrics.items())}}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> UnitTotals:
        return cls(int(d.get("units", 0)), int(d.get("with_covariate", 0)),
                   float(d.get("c", 0.0)), float(d.get("cc", 0.0)),
                   {str(k): RatioSums.from_list(v) for k, v in (d.get("metrics") or {}).items()})


def _sums(x: np.ndarray, y: np.ndarray, c: np.ndarray) -> RatioSums:
    return RatioSums(float(x.sum()), float((x * x).sum()), float(y.sum()), float((y * y).sum()),
                     float((x * y).sum()), float((x * c).sum()), float((y * c).sum()))


def aggregate(
    requests: np.ndarray,
    successes: np.ndarray,
    errors: np.ndarray | None = None,
    latency_sum: np.ndarray | None = None,
    covariate: np.ndarray | None = None,
    custom: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
) -> UnitTotals:
    """The totals of units given as arrays (one entry per unit; ``covariate`` NaN = none;
    ``latency_sum``: every request has a latency; ``custom``: name -> (n, sum) arrays)."""
    n = np.asarray(requests, dtype=float)
    zeros = np.zeros_like(n)
    cov = zeros if covariate is None else np.asarray(covariate, dtype=float)
    has = ~np.isnan(cov)
    c = np.where(has, cov, 0.0)
    metrics = {
        SUCCESS: _sums(np.asarray(successes, dtype=float), n, c),
        ERRORS: _sums(zeros if errors is None else np.asarray(errors, dtype=float), n, c),
    }
    if latency_sum is not None:
        metrics[LATENCY] = _sums(np.asarray(latency_sum, dtype=float), n, c)
    for name, (cn, cs) in (custom or {}).items():
        metrics[metric_key(name)] = _sums(np.asarray(cs, dtype=float),
                                          np.asarray(cn, dtype=float), c)
    return UnitTotals(int(n.size), int(has.sum()), float(c.sum()), float((c * c).sum()), metrics)
