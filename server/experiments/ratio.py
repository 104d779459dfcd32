"""Ratio metrics analysed by unit: delta-method variances, and CUPED.

Pure functions of two :class:`~.unitstats.UnitTotals`. For one arm with ``N`` units and
per-unit numerator ``x``, denominator ``y``, covariate ``c`` (sample moments with the
``N - 1`` denominator, as gbstats does):

* Ratio ``R = sum x / sum y = mean_x / mean_y``; its variance by the delta method
  (Deng, Knoblich & Lu, KDD 2018, sec. 3; gbstats ``RatioStatistic.variance``)::

      Var(R) = (s_xx / m_y^2 - 2 m_x s_xy / m_y^3 + m_x^2 s_yy / m_y^4) / N

* Difference ``D = R_t - R_c``, ``Var(D) = Var(R_t) + Var(R_c)`` (independent arms),
  ``z = D / sqrt(Var D)``, two-sided normal p-value, interval ``D +- z_{1-a/2} sqrt(Var D)``.
* Relative lift ``L = D / R_c`` with ``Var(L) = Var(R_t) / R_c^2 + R_t^2 Var(R_c) / R_c^4``
  (gbstats' relative difference); with CUPED the same delta method on ``D_cv / R_c``.
* CUPED (Deng, Xu, Kohavi & Walker, WSDM 2013), for a ratio by the delta method:
  ``Cov(R, mean_c) = (s_xc / m_y - m_x s_yc / m_y^2) / N`` and
  ``Var(mean_c) = s_cc / N`` per arm; ``theta = sum_arms Cov / sum_arms Var(mean_c)``
  (pooled over both arms, as gbstats' regression adjustment), ``D_cv = D - theta
  (mean_c_t - mean_c_c)`` and ``Var(D_cv) = Var(D) - 2 theta sum Cov + theta^2 sum
  Var(mean_c)``. ``variance_reduction = 1 - Var(D_cv) / Var(D)``; with a covariate
  correlated ``rho`` with the unit's metric it approaches ``rho^2``.

Undefined values (an arm with fewer than 2 units, a zero denominator, zero variance)
come back as ``None``; nothing here raises on data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from neural.mlops.server.experiments.unitstats import RatioSums, UnitTotals

__all__ = ["ArmRatio", "RatioTest", "arm", "compare_ratio", "delta"]

ArrayLike = float | np.ndarray


def delta(
    n: ArrayLike, x: ArrayLike, xx: ArrayLike, y: ArrayLike, yy: ArrayLike, xy: ArrayLike
) -> tuple[np.ndarray, np.ndarray]:
    """An arm's ratio and its delta-method variance (the formula above) from its unit
    count and sums, vectorised (over looks, runs); NaN where undefined (fewer than 2
    units, no denominator)."""
    n, x, xx, y, yy, xy = (np.asarray(a, dtype=float) for a in (n, x, xx, y, yy, xy))
    with np.errstate(divide="ignore", invalid="ignore"):
        mx, my = x / n, y / n
        k = n - 1.0
        sxx = np.maximum((xx - n * mx * mx) / k, 0.0)
        syy = np.maximum((yy - n * my * my) / k, 0.0)
        sxy = (xy - n * mx * my) / k
        var = (sxx / my**2 - 2.0 * mx * sxy / my**3 + mx * mx * syy / my**4) / n
        ok = (n >= 2) & (my > 0)
        return np.where(ok, mx / my, np.nan), np.where(ok, np.maximum(var, 0.0), np.nan)


@dataclass(frozen=True, slots=True)
class ArmRatio:
    """One arm's ratio, its delta-method variance and its covariance with the covariate."""

    units: int
    ratio: float
    variance: float  # of the ratio
    cov_c: float  # Cov(ratio, mean covariate)
    var_c: float  # Var(mean covariate)
    mean_c: float


def arm(t: UnitTotals, key: str) -> ArmRatio | None:
    """The arm's statistics for metric ``key`` (None: undefined)."""
    n = t.units
    m = t.metrics.get(key)
    if m is None or n < 2 or m.y <= 0:
        return None
    return _arm(n, m, t.c, t.cc)


def _arm(n: int, m: RatioSums, c: float, cc: float) -> ArmRatio:
    ratio, var = delta(n, m.x, m.xx, m.y, m.yy, m.xy)
    mx, my, mc = m.x / n, m.y / n, c / n
    k = n - 1.0
    scc = max((cc - n * mc * mc) / k, 0.0)
    sxc = (m.xc - n * mx * mc) / k
    syc = (m.yc - n * my * mc) / k
    cov = (sxc / my - mx * syc / my**2) / n
    return ArmRatio(n, float(ratio), float(var), cov, scc / n, mc)


@dataclass(frozen=True, slots=True)
class RatioTest:
    """Treatment minus control on one ratio metric, analysed by unit."""

    control_mean: float
    treatment_mean: float
    difference: float
    standard_error: float | None  # of the difference (CUPED-adjusted when ``cuped``)
    z: float | None
    p_value: float | None
    ci_low: float | None
    ci_high: float | None
    relative: float | None  # fraction
    relative_ci: tuple[float | None, float | None]
    units_control: int
    units_treatment: int
    cuped: bool = False
    theta: float | None = None
    variance_reduction: float | None = None  # 1 - Var(D_cv) / Var(D)
    relative_variance: float | None = None  # of ``relative``, by the delta method


def compare_ratio(
    control: UnitTotals, treatment: UnitTotals, key: str, confidence: float, *,
    cuped: bool = False,
) -> RatioTest | None:
    """Delta-method test of ``key`` by unit (CUPED-adjusted when ``cuped`` and both arms
    have covariates); None when an arm's ratio is undefined."""
    from scipy import special  # here: scipy costs a process start ~0.4 s
    a_c, a_t = arm(control, key), arm(treatment, key)
    if a_c is None or a_t is None:
        return None
    diff = a_t.ratio - a_c.ratio
    var = a_t.variance + a_c.variance
    theta = reduction = None
    cov_c = 0.0  # Cov(D_cv, R_c) beyond -Var(R_c), for the relative interval
    use_cv = cuped and control.with_covariate > 0 and treatment.with_covariate > 0
    if use_cv and a_t.var_c + a_c.var_c > 0:
        theta = (a_t.cov_c + a_c.cov_c) / (a_t.var_c + a_c.var_c)
        adjusted = var - 2.0 * theta * (a_t.cov_c + a_c.cov_c) + theta**2 * (a_t.var_c + a_c.var_c)
        reduction = 1.0 - adjusted / var if var > 0 else None
        diff -= theta * (a_t.mean_c - a_c.mean_c)
        var = max(adjusted, 0.0)
        cov_c = theta * a_c.cov_c
    q = float(special.ndtri(0.5 + confidence / 2.0))
    se = math.sqrt(var) if var > 0 else None
    z = diff / se if se else None
    p = float(2.0 * special.ndtr(-abs(z))) if z is not None else None
    rel = rel_lo = rel_hi = v_rel = None
    r_c = a_c.ratio
    if r_c != 0:
        rel = diff / r_c
        v_rel = var / r_c**2 + diff**2 * a_c.variance / r_c**4 - 2.0 * diff * (
            cov_c - a_c.variance) / r_c**3
        if v_rel > 0:
            rel_lo, rel_hi = rel - q * math.sqrt(v_rel), rel + q * math.sqrt(v_rel)
    return RatioTest(
        control_mean=a_c.ratio,
        treatment_mean=a_t.ratio,
        difference=diff,
        standard_error=se,
        z=z,
        p_value=p,
        ci_low=diff - q * se if se else None,
        ci_high=diff + q * se if se else None,
        relative=rel,
        relative_ci=(rel_lo, rel_hi),
        units_control=a_c.units,
        units_treatment=a_t.units,
        cuped=theta is not None,
        theta=theta,
        variance_reduction=reduction,
        relative_variance=v_rel if v_rel is not None and v_rel > 0 else None,
    )

