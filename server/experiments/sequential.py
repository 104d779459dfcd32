"""Always-valid inference for the success-rate difference: the normal-mixture mSPRT.

Johari, Koomen, Pekelis and Walsh, "Peeking at A/B Tests: Why it matters, and what to
do about it", KDD 2017 (and "Always Valid Inference", Operations Research 70(3), 2022).
With the difference estimate ``theta = p_t - p_c``, its variance under the null
``V = p (1 - p) (1/n_c + 1/n_t)`` (pooled ``p``) and a N(0, tau^2) mixing distribution on
the effect, the mixture likelihood ratio is::

    Lambda = sqrt(V / (V + tau^2)) * exp(tau^2 theta^2 / (2 V (V + tau^2)))

Under H0 (no difference) Lambda is (asymptotically) a nonnegative martingale, so by
Ville's inequality ``P(exists n: Lambda_n >= 1/alpha) <= alpha``: rejecting the first
time ``p_n = min(1, 1/Lambda_n) <= alpha`` keeps the false-positive rate at alpha no
matter how often, or when, anyone looks. The always-valid p-value is the running
minimum of ``p_n`` over the looks; ``p_n`` at the current look is reported (and is an
upper bound of it). Inverting the test gives the confidence sequence::

    theta +- sqrt(V (V + tau^2) / tau^2 * (2 ln(1/alpha) + ln((V + tau^2) / V)))

``tau`` sets where the test is most powerful: effects of about ``tau`` (absolute, on
the rate scale) are detected fastest. Validity does not depend on it; it must be fixed
before the data are seen (it is part of the experiment's configuration).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_TAU = 0.02

ArrayLike = float | np.ndarray


@dataclass(frozen=True, slots=True)
class SequentialResult:
    p_value: ArrayLike
    log_likelihood_ratio: ArrayLike
    ci_low: ArrayLike
    ci_high: ArrayLike


def msprt_proportions(
    x_c: ArrayLike,
    n_c: ArrayLike,
    x_t: ArrayLike,
    n_t: ArrayLike,
    alpha: float = 0.05,
    tau: float = DEFAULT_TAU,
) -> SequentialResult:
    """mSPRT p-value and confidence sequence for ``p_t - p_c`` (vectorised)."""
    x_c, n_c, x_t, n_t = (np.asarray(a, dtype=float) for a in (x_c, n_c, x_t, n_t))
    tau2 = float(tau) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        theta = x_t / n_t - x_c / n_c
        pooled = (x_c + x_t) / (n_c + n_t)
        v = pooled * (1.0 - pooled) * (1.0 / n_c + 1.0 / n_t)
        log_lr = 0.5 * np.log(v / (v + tau2)) + tau2 * theta**2 / (2.0 * v * (v + tau2))
        p = np.minimum(1.0, np.exp(-log_lr))
        half = np.sqrt(v * (v + tau2) / tau2 * (2.0 * np.log(1.0 / alpha) + np.log((v + tau2) / v)))
    return SequentialResult(p, log_lr, theta - half, theta + half)
