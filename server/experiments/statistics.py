"""Frequentist tests on sufficient statistics, vectorised over numpy arrays.

Every function takes counts / sums / sums of squares (scalars or equally-shaped arrays,
so 1,000 simulated experiments cost one call) and returns plain floats or arrays. They
are the textbook formulas, checked against scipy.stats and statsmodels in
``tests/test_stats_*.py``. Undefined results (zero variance, empty arms) come back as
NaN here; :mod:`.analysis` turns them into ``None`` plus a warning.

References
----------
* Pooled two-proportion z-test and the unpooled Wald interval of the difference:
  Agresti, *Categorical Data Analysis* (3rd ed., 2013), sec. 3.1.3 / 3.1.4;
  statsmodels ``proportions_ztest`` and ``confint_proportions_2indep(method="wald")``.
* Welch's unequal-variance t-test and the Welch-Satterthwaite degrees of freedom:
  Welch, *Biometrika* 34 (1947) 28-35; scipy ``ttest_ind_from_stats(equal_var=False)``.
* Confidence interval of the rate ratio ``p_t / p_c`` on the log scale (Katz et al.,
  *Biometrics* 34 (1978) 469-474); statsmodels ``confint_proportions_2indep(compare="ratio",
  method="log")``. The relative lift's interval is that ratio interval minus 1.
* Holm's step-down correction: Holm, *Scand. J. Statist.* 6 (1979) 65-70; the
  Benjamini-Hochberg step-up procedure: Benjamini and Hochberg, *J. R. Statist. Soc. B*
  57 (1995) 289-300 (statsmodels ``multipletests``, ``holm`` / ``fdr_bh``).
* Sample-ratio mismatch: Pearson's chi-square goodness of fit (scipy ``chisquare``);
  Fabijan et al., "Diagnosing Sample Ratio Mismatch in Online Controlled Experiments",
  KDD 2019, for the p < 0.001 alarm.
* Power of the two-proportion test with Cohen's arcsine effect size h: Cohen,
  *Statistical Power Analysis for the Behavioral Sciences* (2nd ed., 1988), ch. 6;
  statsmodels ``NormalIndPower`` / ``proportion_effectsize``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import numpy as np

ArrayLike = float | np.ndarray


def norm_sf(x: ArrayLike) -> ArrayLike:
    from scipy import special  # here: scipy costs a process start ~0.4 s
    out: ArrayLike = special.ndtr(-np.asarray(x, dtype=float))
    return out


def norm_ppf(p: ArrayLike) -> ArrayLike:
    from scipy import special  # here: scipy costs a process start ~0.4 s
    out: ArrayLike = special.ndtri(p)
    return out


def _f(x: ArrayLike) -> np.ndarray:
    return np.asarray(x, dtype=float)


@dataclass(frozen=True, slots=True)
class ProportionTest:
    """Treatment minus control on the success rate."""

    rate_control: ArrayLike
    rate_treatment: ArrayLike
    difference: ArrayLike
    z: ArrayLike
    p_value: ArrayLike
    ci_low: ArrayLike
    ci_high: ArrayLike
    relative: ArrayLike  # difference / control rate (a fraction, not percent)


def two_proportion_ztest(
    x_c: ArrayLike, n_c: ArrayLike, x_t: ArrayLike, n_t: ArrayLike, confidence: float = 0.95
) -> ProportionTest:
    """Pooled two-proportion z-test (two-sided) with the unpooled Wald CI of ``p_t - p_c``.

    ``z = (p_t - p_c) / sqrt(p (1 - p) (1/n_c + 1/n_t))`` with ``p = (x_c + x_t) / (n_c + n_t)``;
    CI ``p_t - p_c +- z_{1-a/2} sqrt(p_c (1-p_c)/n_c + p_t (1-p_t)/n_t)``.
    """
    from scipy import special  # here: scipy costs a process start ~0.4 s
    x_c, n_c, x_t, n_t = _f(x_c), _f(n_c), _f(x_t), _f(n_t)
    with np.errstate(divide="ignore", invalid="ignore"):
        p_c = x_c / n_c
        p_t = x_t / n_t
        pooled = (x_c + x_t) / (n_c + n_t)
        se0 = np.sqrt(pooled * (1.0 - pooled) * (1.0 / n_c + 1.0 / n_t))
        diff = p_t - p_c
        z = diff / se0
        p = 2.0 * special.ndtr(-np.abs(z))
        se1 = np.sqrt(p_c * (1.0 - p_c) / n_c + p_t * (1.0 - p_t) / n_t)
        q = norm_ppf(0.5 + confidence / 2.0)
        rel = diff / p_c
    return ProportionTest(p_c, p_t, diff, z, p, diff - q * se1, diff + q * se1, rel)


def ratio_ci_log(
    x_c: ArrayLike, n_c: ArrayLike, x_t: ArrayLike, n_t: ArrayLike, confidence: float = 0.95
) -> tuple[ArrayLike, ArrayLike]:
    """Katz log interval of ``p_t / p_c``:
    ``exp(log r +- z sqrt(1/x_t - 1/n_t + 1/x_c - 1/n_c))``."""
    x_c, n_c, x_t, n_t = _f(x_c), _f(n_c), _f(x_t), _f(n_t)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = (x_t / n_t) / (x_c / n_c)
        se = np.sqrt(1.0 / x_t - 1.0 / n_t + 1.0 / x_c - 1.0 / n_c)
        q = norm_ppf(0.5 + confidence / 2.0)
        return ratio * np.exp(-q * se), ratio * np.exp(q * se)


@dataclass(frozen=True, slots=True)
class WelchTest:
    mean_control: ArrayLike
    mean_treatment: ArrayLike
    difference: ArrayLike
    t: ArrayLike
    df: ArrayLike
    p_value: ArrayLike
    ci_low: ArrayLike
    ci_high: ArrayLike
    relative: ArrayLike  # difference / control mean


def sample_moments(
    n: ArrayLike, total: ArrayLike, sumsq: ArrayLike
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sample variance (n-1 denominator) from (n, sum, sum of squares); a
    variance rounding makes negative is 0, and too few values give NaN or inf, not a
    warning."""
    n, total = _f(n), _f(total)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = total / n
        variance = np.maximum((_f(sumsq) - total * mean) / (n - 1.0), 0.0)
    return mean, variance


def welch_ttest(
    n_c: ArrayLike,
    sum_c: ArrayLike,
    sumsq_c: ArrayLike,
    n_t: ArrayLike,
    sum_t: ArrayLike,
    sumsq_t: ArrayLike,
    confidence: float = 0.95,
) -> WelchTest:
    """Welch's two-sided t-test of ``mean_t - mean_c`` from (n, sum, sum of squares).

    Sample variances use the n-1 denominator; ``df`` is Welch-Satterthwaite.
    """
    from scipy import special  # here: scipy costs a process start ~0.4 s
    n_c, n_t = _f(n_c), _f(n_t)
    m_c, v_c = sample_moments(n_c, sum_c, sumsq_c)
    m_t, v_t = sample_moments(n_t, sum_t, sumsq_t)
    with np.errstate(divide="ignore", invalid="ignore"):
        a_c = v_c / n_c
        a_t = v_t / n_t
        se = np.sqrt(a_c + a_t)
        df = (a_c + a_t) ** 2 / (a_c**2 / (n_c - 1.0) + a_t**2 / (n_t - 1.0))
        diff = m_t - m_c
        t = diff / se
        p = 2.0 * special.stdtr(df, -np.abs(t))
        q = special.stdtrit(df, 0.5 + confidence / 2.0)
        rel = diff / m_c
    return WelchTest(m_c, m_t, diff, t, df, p, diff - q * se, diff + q * se, rel)


def holm(p_values: np.ndarray | list[float]) -> np.ndarray:
    """Holm step-down adjusted p-values (NaN entries stay NaN and are not counted)."""

    def step_down(p: np.ndarray) -> np.ndarray:
        m = p.size
        return np.maximum.accumulate(np.minimum((m - np.arange(m)) * p, 1.0))

    return _adjust_sorted(p_values, step_down)


def benjamini_hochberg(p_values: np.ndarray | list[float]) -> np.ndarray:
    """Benjamini-Hochberg step-up adjusted p-values (false discovery rate; NaN entries
    stay NaN and are not counted): ``min(1, min_{j >= i} m p_(j) / j)`` over the sorted
    p-values (statsmodels ``multipletests(method="fdr_bh")``)."""

    def step_up(p: np.ndarray) -> np.ndarray:
        scaled = p.size * p / np.arange(1, p.size + 1)
        return np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)

    return _adjust_sorted(p_values, step_up)


def _adjust_sorted(
    p_values: np.ndarray | list[float], adjust: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """``adjust`` applied to the non-NaN p-values in ascending order (ties keep their
    input order), its results put back in place; NaN entries stay NaN and are not counted
    in ``m``, so a metric without data does not weaken the others' correction."""
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    if ok.size:
        order = ok[np.argsort(p[ok], kind="stable")]
        out[order] = adjust(p[order])
    return out


HOLM = "holm"
BENJAMINI_HOCHBERG = "benjamini_hochberg"
CORRECTIONS = (HOLM, BENJAMINI_HOCHBERG)


def adjust(p_values: np.ndarray | list[float], method: str = HOLM) -> np.ndarray:
    """Adjusted p-values by ``method``: :data:`HOLM` (family-wise error rate) or
    :data:`BENJAMINI_HOCHBERG` (false discovery rate)."""
    if method == BENJAMINI_HOCHBERG:
        return benjamini_hochberg(p_values)
    if method != HOLM:
        raise ValueError(f"unknown multiple-testing correction {method!r}")
    return holm(p_values)


@dataclass(frozen=True, slots=True)
class ChiSquare:
    statistic: float
    df: int
    p_value: float


def srm_chisquare(observed: list[int] | np.ndarray, weights: list[float] | np.ndarray) -> ChiSquare:
    """Pearson's chi-square of observed arm sizes against the configured split.

    Arms with weight 0 are left out (they cannot receive traffic by design).
    """
    from scipy import special  # here: scipy costs a process start ~0.4 s
    obs = np.asarray(observed, dtype=float)
    w = np.asarray(weights, dtype=float)
    keep = w > 0
    obs, w = obs[keep], w[keep]
    total = obs.sum()
    if obs.size < 2 or total <= 0:
        return ChiSquare(float("nan"), max(int(obs.size) - 1, 0), float("nan"))
    expected = total * w / w.sum()
    stat = float(np.sum((obs - expected) ** 2 / expected))
    df = int(obs.size - 1)
    return ChiSquare(stat, df, float(special.chdtrc(df, stat)))


def cohens_h(p_treatment: float, p_control: float) -> float:
    """Cohen's effect size for proportions: ``2 asin(sqrt(p_t)) - 2 asin(sqrt(p_c))``."""
    return float(2.0 * np.arcsin(np.sqrt(p_treatment)) - 2.0 * np.arcsin(np.sqrt(p_control)))


def power_two_proportions(h: float, n_control: float, ratio: float, alpha: float = 0.05) -> float:
    """Power of the two-sided two-sample z-test for effect size ``h`` with ``n_control`` in
    control and ``ratio * n_control`` in treatment (both tails counted)."""
    from scipy import special  # here: scipy costs a process start ~0.4 s
    n_eff = 1.0 / (1.0 / n_control + 1.0 / (n_control * ratio))
    crit = norm_ppf(1.0 - alpha / 2.0)
    shift = abs(h) * np.sqrt(n_eff)
    return float(special.ndtr(shift - crit) + special.ndtr(-shift - crit))


def sample_size_two_proportions(
    h: float, ratio: float = 1.0, alpha: float = 0.05, power: float = 0.8
) -> float:
    """Control-arm sample size reaching ``power`` (treatment needs ``ratio`` times it).

    Solves :func:`power_two_proportions` ``== power`` exactly (the closed form
    ``((z_{1-a/2} + z_{power}) / h)^2 (1 + 1/ratio)`` ignores the far tail and is the
    starting bracket). Returns inf when ``h == 0``.
    """
    from scipy import optimize  # here: scipy costs a process start ~0.4 s
    if h == 0 or not np.isfinite(h):
        return float("inf")
    z = norm_ppf(1.0 - alpha / 2.0) + norm_ppf(power)
    approx = (z / abs(h)) ** 2 * (1.0 + 1.0 / ratio)

    def gap(n: ArrayLike) -> float:  # a numpy scalar here: ``approx`` comes from norm_ppf
        return power_two_proportions(h, cast(float, n), ratio, alpha) - power

    lo = approx * 0.5
    while gap(lo) > 0 and lo > 1e-12:
        lo *= 0.5
    return float(optimize.brentq(gap, lo, approx * 1.01 + 1e-9, xtol=1e-12, rtol=1e-14))
