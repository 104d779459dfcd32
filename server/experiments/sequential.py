"""Always-valid inference for a difference of means: the normal-mixture mSPRT.

Johari, Koomen, Pekelis and Walsh, "Peeking at A/B Tests: Why it matters, and what to
do about it", KDD 2017 (and "Always Valid Inference", Operations Research 70(3), 2022).
For an estimate ``theta`` of the effect (treatment minus control) with variance ``V``
and a N(0, tau^2) mixing distribution on the effect, the mixture likelihood ratio is::

    Lambda = sqrt(V / (V + tau^2)) * exp(tau^2 theta^2 / (2 V (V + tau^2)))

Under H0 (no difference) Lambda is (asymptotically) a nonnegative martingale, so by
Ville's inequality ``P(exists n: Lambda_n >= 1/alpha) <= alpha``: rejecting the first
time ``p_n = min(1, 1/Lambda_n) <= alpha`` keeps the false-positive rate at alpha no
matter how often, or when, anyone looks. Inverting the test gives the confidence
sequence, time-uniformly valid, so the intersection over looks is valid too::

    theta +- sqrt(V (V + tau^2) / tau^2 * (2 ln(1/alpha) + ln((V + tau^2) / V)))

``V`` is the UNPOOLED variance of the estimate (``p_c (1-p_c)/n_c + p_t (1-p_t)/n_t``
for rates, ``s_c^2/n_c + s_t^2/n_t`` for means): the pooled null variance is right for
the test of 0 but not for the interval around an effect that is not 0, and under-covers
at unequal splits with unequal rates.

The mixture. By default it is scaled to the data as gbstats does
(``SequentialTwoSidedTTest``; Waudby-Smith, Arbour, Sinha, Kennedy and Ramdas,
"Time-uniform central limit theory and asymptotic confidence sequences", arXiv
2103.06476v7, eqs. 9, 155, 161): with ``N = n_c + n_t`` and ``s^2 = V N`` (the
variance of one observation's contribution)::

    rho^2 = (-2 ln(alpha) + ln(-2 ln(alpha) + 1)) / n*
    tau^2 = rho^2 s^2

where the tuning parameter ``n*`` (default 5,000) is the total sample size at which the
boundary is tightest. Substituted above, the halfwidth is gbstats'
``sqrt(s^2) sqrt(2 (N rho^2 + 1) ln(sqrt(N rho^2 + 1) / alpha) / (N rho)^2)`` and
``1/Lambda`` its p-value ``sqrt(N rho^2 + 1) exp(-rho^2 N theta^2 / (2 V (N rho^2 + 1)))``.
``rho`` uses the test's configured alpha (the mixture is part of the design, fixed
before the data); an analysis at another confidence level changes only the boundary.
A fixed absolute ``tau`` (on the effect's own scale) may be given instead.

By unit (:func:`msprt_by_unit`): when the report counts randomized units, ``V`` is the
delta-method variance of the ratio metrics (:func:`.ratio.delta`, CUPED-adjusted when
the fixed-horizon test is) and ``N`` the number of units, as gbstats' ``RatioStatistic``
counts them, so ``n*`` is then in units. Counting a unit's correlated requests as
independent makes ``V`` too small and the always-valid p-value invalid: an A/A test
with users sending ~20 requests each is "significant" at some look in ~15-20% of runs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from neural.mlops.server.experiments.statistics import sample_moments

DEFAULT_TUNING = 5000.0
# Before these, an arm's plug-in variance is too noisy for the asymptotic interval.
MIN_EVENTS = 5  # successes and failures per arm (rates)
MIN_N = 100  # values per arm (means): latency is skewed
MIN_UNITS = 10  # units per arm (by unit): the delta-method variance of fewer is too noisy

ArrayLike = float | np.ndarray


def _f(x: ArrayLike) -> np.ndarray:
    return np.asarray(x, dtype=float)


@dataclass(frozen=True, slots=True)
class Mixture:
    """The mixing distribution: ``tau`` absolute, or scaled by ``tuning`` (``tau=None``)."""

    tuning: float = DEFAULT_TUNING
    tau: float | None = None
    design_alpha: float = 0.05

    @property
    def rho2(self) -> float:
        """gbstats' ``rho^2`` (eq. 161 of arXiv 2103.06476v7)."""
        a = self.design_alpha
        return (-2.0 * math.log(a) + math.log(-2.0 * math.log(a) + 1.0)) / self.tuning

    def tau2(self, variance: np.ndarray, n: np.ndarray) -> np.ndarray:
        """The mixing variance for an estimate of ``variance`` from ``n`` observations."""
        if self.tau is not None:
            return np.full(np.shape(variance), float(self.tau) ** 2)
        out: np.ndarray = self.rho2 * variance * n
        return out


@dataclass(frozen=True, slots=True)
class SequentialResult:
    p_value: ArrayLike  # this look's mixture p-value (the caller keeps the running minimum)
    log_likelihood_ratio: ArrayLike
    ci_low: ArrayLike
    ci_high: ArrayLike
    tau: ArrayLike  # the mixing standard deviation used, on the effect's scale


def msprt(
    theta: ArrayLike,
    variance: ArrayLike,
    n: ArrayLike,
    alpha: float = 0.05,
    mixture: Mixture | None = None,
) -> SequentialResult:
    """mSPRT p-value and confidence sequence for an effect estimate ``theta`` with
    ``variance`` from ``n`` observations in all (vectorised; NaN where ``variance`` is 0)."""
    mix = mixture or Mixture(design_alpha=alpha)
    theta, v, n = _f(theta), _f(variance), _f(n)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        v = np.where(v > 0, v, np.nan)
        tau2 = mix.tau2(v, n)
        ratio = (v + tau2) / v
        log_lr = -0.5 * np.log(ratio) + tau2 * theta**2 / (2.0 * v * (v + tau2))
        p = np.minimum(1.0, np.exp(-log_lr))
        half = np.sqrt(v * (v + tau2) / tau2 * (2.0 * np.log(1.0 / alpha) + np.log(ratio)))
    return SequentialResult(p, log_lr, theta - half, theta + half, np.sqrt(tau2))


def _unpooled(
    v_c: np.ndarray, n_c: np.ndarray, v_t: np.ndarray, n_t: np.ndarray, enough: np.ndarray
) -> np.ndarray:
    """``v_c/n_c + v_t/n_t``; NaN where not ``enough`` data or either arm's variance is 0.

    gbstats refuses an arm of zero variance; we also wait for :data:`MIN_EVENTS`
    successes and failures per arm (or :data:`MIN_N` values of a metric): the interval
    is asymptotic, and a plug-in variance from one or two events is far too small (a
    coverage simulation at 95/5 splits with 2% vs 3% rates drops to 89% without it).
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        v = v_c / n_c + v_t / n_t
    out: np.ndarray = np.where(enough & (v_c > 0) & (v_t > 0), v, np.nan)
    return out


def msprt_proportions(
    x_c: ArrayLike,
    n_c: ArrayLike,
    x_t: ArrayLike,
    n_t: ArrayLike,
    alpha: float = 0.05,
    mixture: Mixture | None = None,
) -> SequentialResult:
    """:func:`msprt` for ``p_t - p_c`` with the unpooled variance (gbstats'
    ``ProportionStatistic``: ``p (1 - p) / n`` per arm)."""
    x_c, n_c, x_t, n_t = _f(x_c), _f(n_c), _f(x_t), _f(n_t)
    with np.errstate(divide="ignore", invalid="ignore"):
        p_c = x_c / n_c
        p_t = x_t / n_t
        v_c = p_c * (1.0 - p_c)
        v_t = p_t * (1.0 - p_t)
        enough = (np.minimum(x_c, n_c - x_c) >= MIN_EVENTS) & (
            np.minimum(x_t, n_t - x_t) >= MIN_EVENTS
        )
    return msprt(p_t - p_c, _unpooled(v_c, n_c, v_t, n_t, enough), n_c + n_t, alpha, mixture)


def msprt_means(
    n_c: ArrayLike,
    sum_c: ArrayLike,
    sumsq_c: ArrayLike,
    n_t: ArrayLike,
    sum_t: ArrayLike,
    sumsq_t: ArrayLike,
    alpha: float = 0.05,
    mixture: Mixture | None = None,
) -> SequentialResult:
    """:func:`msprt` for ``mean_t - mean_c`` from (n, sum, sum of squares), sample
    variances with the n-1 denominator (gbstats' ``SampleMeanStatistic``)."""
    n_c, n_t = _f(n_c), _f(n_t)
    m_c, v_c = sample_moments(n_c, sum_c, sumsq_c)
    m_t, v_t = sample_moments(n_t, sum_t, sumsq_t)
    enough = (n_c >= MIN_N) & (n_t >= MIN_N)
    return msprt(m_t - m_c, _unpooled(v_c, n_c, v_t, n_t, enough), n_c + n_t, alpha, mixture)


def msprt_by_unit(
    theta: ArrayLike,
    variance: ArrayLike,
    units_c: ArrayLike,
    units_t: ArrayLike,
    alpha: float = 0.05,
    mixture: Mixture | None = None,
    enough: ArrayLike | bool = True,
) -> SequentialResult:
    """:func:`msprt` for an effect analysed by unit: ``variance`` the delta-method variance
    of ``theta`` (:mod:`.ratio`), the mixture scaled by the ``units_c + units_t`` units
    (vectorised; NaN before :data:`MIN_UNITS` units per arm or where not ``enough``,
    e.g. too few events of a rate)."""
    u_c, u_t = _f(units_c), _f(units_t)
    v = _f(variance)
    with np.errstate(invalid="ignore"):
        ok = (np.minimum(u_c, u_t) >= MIN_UNITS) & np.asarray(enough, dtype=bool) & (v > 0)
    return msprt(theta, np.where(ok, v, np.nan), u_c + u_t, alpha, mixture)


@dataclass(frozen=True, slots=True)
class Running:
    """What the looks so far leave for the next, per comparison and metric.

    ``p_value`` is the smallest mixture p-value seen (the always-valid p-value), ``sign``
    the sign of the estimate at the look that set it, ``decided`` the sign at the first
    look whose p-value reached the test's alpha (0: none yet; a sequential test is
    decided then, and later looks do not reverse it), ``low`` / ``high`` the
    intersection of the confidence sequences at the test's configured level (itself a
    valid confidence sequence, since each one covers at every look at once). Merging
    (:meth:`merge`) is commutative, associative and idempotent, so concurrent looks
    saving their state in any order give the same stored value (two concurrent looks
    deciding opposite ways, which needs contradicting data, keep the stronger one's).
    """

    p_value: float = 1.0
    sign: int = 0
    low: float = -math.inf
    high: float = math.inf
    decided: int = 0

    def merge(self, other: Running) -> Running:
        first = min(self, other, key=lambda r: (r.p_value, -abs(r.sign), r.sign))
        second = other if first is self else self
        return Running(first.p_value, first.sign, max(self.low, other.low),
                       min(self.high, other.high), first.decided or second.decided)

    def look(self, p: float | None, theta: float | None,
             interval: tuple[float | None, float | None] | None, alpha: float) -> Running:
        """This state after one more look (``interval``: None to leave the bounds alone;
        ``alpha``: the test's configured level, at which the test is decided)."""
        new = Running()
        if p is not None and theta is not None:
            sign = int(np.sign(theta))
            new = Running(p, sign, decided=sign if p <= alpha else 0)
        if interval is not None and interval[0] is not None and interval[1] is not None:
            new = replace(new, low=interval[0], high=interval[1])
        # An earlier decision stands (merge alone would take the stronger look's).
        return replace(self.merge(new), decided=self.decided or new.decided)

    @property
    def empty(self) -> bool:
        """The intersection is empty: the looks contradict each other (an effect that
        changes over time, or the rare miss the level allows)."""
        return self.low > self.high

    @property
    def direction(self) -> int:
        """The side of 0 the evidence is on: the decided sign; else the side of 0 the
        intersection lies on; else the sign at the smallest p-value (0: nothing seen)."""
        if self.decided:
            return self.decided
        if self.low > 0 and not self.empty:
            return 1
        if self.high < 0 and not self.empty:
            return -1
        return self.sign

    def to_dict(self) -> dict[str, float | int | None]:
        return {
            "p": self.p_value,
            "sign": self.sign,
            "low": self.low if math.isfinite(self.low) else None,
            "high": self.high if math.isfinite(self.high) else None,
            "decided": self.decided,
        }

    @classmethod
    def from_dict(cls, d: object) -> Running:
        """Also reads the first format: a bare number, the running minimum p-value."""
        if isinstance(d, int | float):
            return cls(float(d))
        if not isinstance(d, dict):
            return cls()
        low, high = d.get("low"), d.get("high")
        return cls(
            float(d.get("p", 1.0)),
            int(d.get("sign", 0)),
            -math.inf if low is None else float(low),
            math.inf if high is None else float(high),
            int(d.get("decided", 0)),
        )


@dataclass(frozen=True, slots=True)
class VariantState:
    """The running state of one variant against control: the success rate (``primary``)
    and each metric of the report's ``metrics`` by its key."""

    primary: Running = Running()
    metrics: dict[str, Running] = field(default_factory=dict)

    def merge(self, other: VariantState) -> VariantState:
        names = set(self.metrics) | set(other.metrics)
        return VariantState(
            self.primary.merge(other.primary),
            {k: self.metrics.get(k, Running()).merge(other.metrics.get(k, Running()))
             for k in sorted(names)},
        )

    def to_dict(self) -> dict[str, object]:
        return {"primary": self.primary.to_dict(),
                "metrics": {k: r.to_dict() for k, r in self.metrics.items()}}

    @classmethod
    def from_dict(cls, d: object) -> VariantState:
        """Also reads the first format: a bare number, the success rate's minimum p."""
        if not isinstance(d, dict):
            return cls(Running.from_dict(d))
        metrics = d.get("metrics") or {}
        return cls(Running.from_dict(d.get("primary")),
                   {str(k): Running.from_dict(r) for k, r in metrics.items()})


def merge_states(stored: Mapping[str, object], new: Mapping[str, VariantState]) -> dict[str, Any]:
    """The stored JSON state (``{variant: VariantState.to_dict()}``) merged with ``new``."""
    out = {str(k): v for k, v in stored.items()}
    for name, state in new.items():
        out[name] = VariantState.from_dict(stored.get(name)).merge(state).to_dict()
    return out


def read_states(stored: Mapping[str, object]) -> dict[str, VariantState]:
    return {str(k): VariantState.from_dict(v) for k, v in stored.items()}
