"""Multi-armed bandit: Thompson sampling's weights from the arms' posteriors (no I/O).

A ``multi_armed_bandit`` test moves traffic towards the arm that is probably best. Every
interval the control plane (:mod:`.bandit_loop`) reads each arm's totals and calls
:func:`reweight`, which

1. builds each arm's posterior of the success metric
   (:func:`posterior`): for a **conversion** metric the Beta-Bernoulli conjugate update of
   a uniform prior, ``p | s successes in n trials ~ Beta(1 + s, 1 + n - s)`` (posterior
   mean ``(1 + s) / (2 + n)``); for a **continuous** metric the large-sample posterior of
   the mean under a flat prior, ``mu | data ~ N(xbar, s^2 / n)`` with ``s^2`` the sample
   variance (Gelman et al., *Bayesian Data Analysis*, 3rd ed., section 3.2, with the
   variance at its estimate);
2. estimates ``P(arm is best)`` by Monte Carlo: :data:`DRAWS` joint draws from the
   posteriors, the share of draws in which each arm has the highest (``minimize``: the
   lowest) value. The standard error of each share is at most ``0.5 / sqrt(DRAWS)``
   = 0.0025, so a weight is stable to +-0.01 (4 standard errors) from seed to seed;
3. sets the weights to these probabilities ("probability matching": Thompson 1933,
   *Biometrika* 25(3/4):285-294; Russo, Van Roy, Kazerouni, Osband & Wen, *A Tutorial on
   Thompson Sampling*, 2018, section 3, which shows that sampling an arm with the
   probability that it is optimal is exactly Thompson sampling), floored at ``min_share``
   and renormalised (:func:`floored`: arms under the floor get exactly the floor, the rest
   share what is left in proportion to their probabilities).

Before the first reweighting a burn-in must pass: every arm has ``burn_in_units``
observations and the test has run ``burn_in_seconds``. Draws come from
``numpy.random.default_rng([seed, sequence])``, so a reweighting is reproducible.

The regret estimate (:func:`regret`) is the plug-in estimator of the expected cumulative
regret ``sum_t n_t * (mu* - mu_arm(t))``: every observation of an arm costs the gap
between the best posterior mean and that arm's posterior mean.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from neural.mlops.server import validation as v
from neural.mlops.server.errors import InvalidArgument
from neural.mlops.v1.traffic import Moments, VariantStats

CONVERSION = "conversion"
CONTINUOUS = "continuous"
METRIC_KINDS = (CONVERSION, CONTINUOUS)
SUCCESS_RATE = "success_rate"
DEFAULT_INTERVAL = 3600.0
MIN_INTERVAL = 1.0
MAX_INTERVAL = 30 * 86400.0
DEFAULT_BURN_IN_UNITS = 100
DEFAULT_MIN_SHARE = 0.05
DRAWS = 40_000

__all__ = ["BanditConfig", "Reweighting", "floored", "parse_bandit", "probability_best",
           "regret", "reweight"]


@dataclass(frozen=True, slots=True)
class BanditConfig:
    """How a bandit test reweights (see the module docstring)."""

    interval_seconds: float = DEFAULT_INTERVAL
    burn_in_units: int = DEFAULT_BURN_IN_UNITS
    burn_in_seconds: float = 0.0
    min_share: float = DEFAULT_MIN_SHARE
    metric: str = SUCCESS_RATE
    metric_kind: str = CONVERSION
    seed: int = 0
    minimize: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> BanditConfig | None:
        """The stored form back (None: not a bandit)."""
        if not d:
            return None
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        return cls(**known)


_OPTIONS = frozenset(BanditConfig.__dataclass_fields__)


def parse_bandit(value: object, is_bandit: bool, arms: int) -> BanditConfig | None:
    """A bandit test's settings (None / {} / a :class:`BanditConfig`: defaults), checked;
    None for other strategies, which must not pass any."""
    if not is_bandit:
        if value:
            raise InvalidArgument("bandit settings need strategy multi_armed_bandit",
                                  field="bandit")
        return None
    if isinstance(value, BanditConfig):
        value = value.to_dict()
    if value is None:
        value = {}
    if not isinstance(value, Mapping):
        raise InvalidArgument("bandit must be a mapping of settings", field="bandit")
    unknown = sorted(set(map(str, value)) - _OPTIONS)
    if unknown:
        raise InvalidArgument(f"unknown bandit settings {unknown}; known: {sorted(_OPTIONS)}",
                              field="bandit")
    d = {**BanditConfig().to_dict(), **{k: x for k, x in value.items() if x is not None}}
    return BanditConfig(
        interval_seconds=_ranged(d["interval_seconds"], "interval_seconds", MIN_INTERVAL,
                                 MAX_INTERVAL),
        burn_in_units=_integer(d["burn_in_units"], "burn_in_units", 0, 10**9),
        burn_in_seconds=_ranged(d["burn_in_seconds"], "burn_in_seconds", 0, MAX_INTERVAL),
        min_share=_min_share(d["min_share"], arms),
        **_metric(d["metric"], d["metric_kind"]),
        seed=_integer(d["seed"], "seed", -(2**63), 2**63 - 1),
        minimize=_flag(d["minimize"]),
    )


def _ranged(x: object, name: str, lo: float, hi: float) -> float:
    where = f"bandit.{name}"
    value = v.finite(x, where)
    if not lo <= value <= hi:
        raise InvalidArgument(f"{where} must be in [{lo:g}, {hi:g}], got {x!r}", field=where)
    return value


def _integer(x: object, name: str, lo: int, hi: int) -> int:
    where = f"bandit.{name}"
    if isinstance(x, bool) or not isinstance(x, int) or not lo <= x <= hi:
        raise InvalidArgument(f"{where} must be an integer in [{lo}, {hi}], got {x!r}",
                              field=where)
    return x


def _min_share(x: object, arms: int) -> float:
    share = v.finite(x, "bandit.min_share")
    if not 0.0 <= share <= 1.0 / arms:
        raise InvalidArgument(
            f"bandit.min_share must be in [0, 1/arms] = [0, {1.0 / arms:.6g}] for {arms} arms, "
            f"got {x!r}", field="bandit.min_share")
    return share


def _metric(metric: object, kind: object) -> dict[str, Any]:
    name = v.name(metric or SUCCESS_RATE, "bandit.metric")
    kind = str(getattr(kind, "value", kind) or CONVERSION).lower()
    if kind not in METRIC_KINDS:
        raise InvalidArgument(f"bandit.metric_kind must be one of {', '.join(METRIC_KINDS)}, "
                              f"got {kind!r}", field="bandit.metric_kind")
    if name == SUCCESS_RATE and kind != CONVERSION:
        raise InvalidArgument("bandit.metric success_rate is a conversion metric",
                              field="bandit.metric_kind")
    return {"metric": name, "metric_kind": kind}


def _flag(x: object) -> bool:
    if not isinstance(x, bool):
        raise InvalidArgument(f"bandit.minimize must be true or false, got {x!r}",
                              field="bandit.minimize")
    return x


# --- posteriors ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ArmData:
    """What one arm's posterior is built from: ``n`` observations summing to ``total``."""

    n: int
    total: float
    sum_squares: float = 0.0

    @property
    def mean(self) -> float | None:
        return self.total / self.n if self.n > 0 else None

    @property
    def variance(self) -> float | None:
        """The sample variance (n - 1 denominator); None below two observations."""
        if self.n < 2:
            return None
        return max((self.sum_squares - self.total * self.total / self.n) / (self.n - 1), 0.0)


def arm_data(config: BanditConfig, stats: VariantStats) -> ArmData:
    """The arm's observations of the success metric: requests and their successes
    (``success_rate``; late outcomes included, capped at the requests) or the values of a
    custom metric (a conversion metric's values are read as 0/1 outcomes)."""
    if config.metric == SUCCESS_RATE:
        return ArmData(stats.count, float(min(stats.successes, stats.count)))
    m = stats.custom.get(config.metric, Moments())
    total = m.sum
    if config.metric_kind == CONVERSION:
        total = min(max(total, 0.0), float(m.n))
    return ArmData(m.n, total, m.sum_squares)


@dataclass(frozen=True, slots=True)
class Posterior:
    """Beta(a, b) (conversion) or N(mean, sd^2) (continuous)."""

    kind: str
    a: float  # Beta alpha, or the Normal's mean
    b: float  # Beta beta, or the Normal's standard deviation

    @property
    def mean(self) -> float:
        return self.a / (self.a + self.b) if self.kind == CONVERSION else self.a

    def draw(self, rng: np.random.Generator, size: int) -> np.ndarray:
        if self.kind == CONVERSION:
            return rng.beta(self.a, self.b, size)
        return rng.normal(self.a, self.b, size)


def posteriors(config: BanditConfig, arms: Sequence[ArmData]) -> list[Posterior]:
    """Each arm's posterior. Continuous arms with fewer than two values borrow the pooled
    variance (and, with none, the pooled mean) of the others, else a unit variance."""
    if config.metric_kind == CONVERSION:
        return [Posterior(CONVERSION, 1.0 + a.total, 1.0 + a.n - a.total) for a in arms]
    n = sum(a.n for a in arms)
    pooled_mean = sum(a.total for a in arms) / n if n else 0.0
    known = [(a.n - 1, a.variance) for a in arms if a.variance is not None]
    dof = sum(d for d, _ in known)
    pooled_var = sum(d * s for d, s in known) / dof if dof > 0 else 1.0
    out = []
    for a in arms:
        var = a.variance if a.variance is not None else pooled_var
        mean = a.mean if a.mean is not None else pooled_mean
        out.append(Posterior(CONTINUOUS, mean, math.sqrt(var / max(a.n, 1))))
    return out


def probability_best(
    posts: Sequence[Posterior], rng: np.random.Generator, *, minimize: bool = False,
    draws: int = DRAWS,
) -> tuple[np.ndarray, np.ndarray]:
    """(P(arm is best), E[best value - arm value]) per arm, from ``draws`` joint draws."""
    samples = np.column_stack([p.draw(rng, draws) for p in posts])
    if minimize:
        samples = -samples
    best = samples.argmax(axis=1)
    share = np.bincount(best, minlength=len(posts)) / draws
    gap = (samples.max(axis=1)[:, None] - samples).mean(axis=0)
    return share, gap


def floored(p: Sequence[float], min_share: float) -> list[float]:
    """``p`` with every share at least ``min_share``, summing to 1: arms below the floor get
    exactly the floor, the others split the rest in proportion to ``p`` (repeated until no
    proportional share falls under the floor). Needs ``min_share * len(p) <= 1``."""
    k = len(p)
    fixed: set[int] = set()
    weights = [0.0] * k
    while True:
        free = [i for i in range(k) if i not in fixed]
        mass = 1.0 - len(fixed) * min_share
        total = math.fsum(max(p[i], 0.0) for i in free)
        for i in free:
            weights[i] = mass * max(p[i], 0.0) / total if total > 0 else mass / len(free)
        low = [i for i in free if weights[i] < min_share]
        if not low or len(low) == len(free):
            break
        fixed.update(low)
    for i in fixed:
        weights[i] = min_share
    free = [i for i in range(k) if i not in fixed]
    if free:  # the largest free share takes the rounding: the shares sum to 1 exactly
        top = max(free, key=lambda i: weights[i])
        weights[top] = 1.0 - math.fsum(weights[i] for i in range(k) if i != top)
    return weights


@dataclass(frozen=True, slots=True)
class Reweighting:
    """One recomputation: the new weights and what they were computed from."""

    sequence: int
    weights: dict[str, float]
    p_best: dict[str, float]
    observations: dict[str, int]
    means: dict[str, float]  # posterior means
    expected_gap: dict[str, float]  # E[best - arm] per observation (posterior)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def burn_in_left(config: BanditConfig, observations: Mapping[str, int],
                 running_seconds: float) -> str:
    """Why the burn-in is not over yet ("" when it is)."""
    short = sorted(n for n, c in observations.items() if c < config.burn_in_units)
    if short:
        return f"burn-in: arms {short} have fewer than {config.burn_in_units} observations"
    if running_seconds < config.burn_in_seconds:
        return (f"burn-in: running {running_seconds:.0f} s of {config.burn_in_seconds:.0f} s")
    return ""


def reweight(config: BanditConfig, arms: Mapping[str, ArmData], sequence: int, *,
             draws: int = DRAWS) -> Reweighting:
    """The weights of reweighting number ``sequence`` (arms in the test's order)."""
    names = list(arms)
    posts = posteriors(config, [arms[n] for n in names])
    rng = np.random.default_rng([config.seed & (2**64 - 1), sequence])
    share, gap = probability_best(posts, rng, minimize=config.minimize, draws=draws)
    weights = floored([float(x) for x in share], config.min_share)
    return Reweighting(
        sequence=sequence,
        weights=dict(zip(names, weights, strict=True)),
        p_best={n: float(x) for n, x in zip(names, share, strict=True)},
        observations={n: arms[n].n for n in names},
        means={n: p.mean for n, p in zip(names, posts, strict=True)},
        expected_gap={n: float(g) for n, g in zip(names, gap, strict=True)},
    )


def regret(observations: Mapping[str, int], means: Mapping[str, float], *,
           minimize: bool = False) -> float:
    """Plug-in expected cumulative regret ``sum_arm N_arm * (mu* - mu_arm)`` with the
    posterior means (``minimize``: ``mu_arm - mu*`` with the lowest mean as ``mu*``); equal
    to ``sum_t n_t * (mu* - mu_arm(t))`` since the means do not depend on t."""
    if not means:
        return 0.0
    best = min(means.values()) if minimize else max(means.values())
    return math.fsum(n * abs(best - means[a]) for a, n in observations.items() if a in means)
