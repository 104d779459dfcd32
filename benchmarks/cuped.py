"""CUPED variance reduction on simulated correlated data, against the theory's 1 - rho^2.

One command::

    python benchmarks/cuped.py            # 2,000 units per arm, 400 runs per rho
    python benchmarks/cuped.py --smoke    # a few seconds (the test suite runs this)

Each unit has a pre-experiment covariate ``x ~ N(0, 1)`` and an in-experiment value
``y = 1 + rho x + sqrt(1 - rho^2) e``, recorded as a custom metric (one value per unit),
so the correlation of covariate and metric is exactly ``rho`` and CUPED's variance of
the difference should be ``1 - rho^2`` of the unadjusted one (Deng et al., WSDM 2013).
The units are summed by the product's :func:`unitstats.aggregate` and compared by
:func:`ratio.compare_ratio` (the analysis' own functions). Printed per rho: the reduction
the analysis reports (mean over runs), the reduction measured across runs
(``1 - Var(D_cuped) / Var(D)``) and the theoretical ``rho^2``; and one row for a ratio
metric (success rate, geometric requests per user, the covariate being the user's
pre-period successes), whose theoretical reduction is the squared correlation of the
covariate with the unit's linearized contribution.
"""

from __future__ import annotations

import argparse
import math
import sys

import numpy as np

from neural.mlops.server.experiments.ratio import compare_ratio
from neural.mlops.server.experiments.unitstats import SUCCESS, aggregate


def _continuous(rng: np.random.Generator, units: int, rho: float) -> tuple:
    x = rng.normal(size=units)
    y = 1.0 + rho * x + math.sqrt(1.0 - rho * rho) * rng.normal(size=units)
    ones = np.ones(units)
    return aggregate(ones, np.zeros(units), covariate=x, custom={"y": (ones, y)})


def run_continuous(rho: float, units: int, runs: int, seed: int) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    reported, cv, plain = [], [], []
    for _ in range(runs):
        c, t = _continuous(rng, units, rho), _continuous(rng, units, rho)
        r = compare_ratio(c, t, "y", 0.95, cuped=True)
        r0 = compare_ratio(c, t, "y", 0.95)
        assert r is not None and r0 is not None
        reported.append(r.variance_reduction or 0.0)
        cv.append(r.difference)
        plain.append(r0.difference)
    return float(np.mean(reported)), float(1.0 - np.var(cv) / np.var(plain))


def _ratio_arm(rng: np.random.Generator, units: int) -> tuple:
    n = rng.geometric(1 / 10, size=units)
    pre_n = rng.geometric(1 / 10, size=units)
    p = rng.beta(1.0, 4.0, size=units)
    s = rng.binomial(n, p)
    pre = rng.binomial(pre_n, p).astype(float)
    return n, s, pre


def run_ratio(units: int, runs: int, seed: int) -> tuple[float, float, float]:
    rng = np.random.default_rng(seed)
    reported, cv, plain, rho2 = [], [], [], []
    for _ in range(runs):
        (n_c, s_c, x_c), (n_t, s_t, x_t) = _ratio_arm(rng, units), _ratio_arm(rng, units)
        c, t = aggregate(n_c, s_c, covariate=x_c), aggregate(n_t, s_t, covariate=x_t)
        r = compare_ratio(c, t, SUCCESS, 0.95, cuped=True)
        r0 = compare_ratio(c, t, SUCCESS, 0.95)
        assert r is not None and r0 is not None
        reported.append(r.variance_reduction or 0.0)
        cv.append(r.difference)
        plain.append(r0.difference)
        lin = s_c - (s_c.sum() / n_c.sum()) * n_c  # the unit's linearized contribution
        rho2.append(np.corrcoef(lin, x_c)[0, 1] ** 2)
    return float(np.mean(reported)), float(1.0 - np.var(cv) / np.var(plain)), float(np.mean(rho2))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="small sizes, a few seconds")
    args = parser.parse_args(argv)
    units, runs = (500, 60) if args.smoke else (2000, 400)
    print(f"CUPED, {units} units per arm, {runs} runs per row")
    print(f"{'metric':<28}{'reported':>10}{'measured':>10}{'theory':>10}")
    for rho in (0.0, 0.3, 0.5, 0.7, 0.9):
        reported, measured = run_continuous(rho, units, runs, seed=int(rho * 100))
        print(f"{f'continuous, rho = {rho:.1f}':<28}{reported:>10.3f}{measured:>10.3f}"
              f"{rho * rho:>10.3f}")
    reported, measured, theory = run_ratio(units, runs, seed=99)
    print(f"{'success rate (ratio)':<28}{reported:>10.3f}{measured:>10.3f}{theory:>10.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
