"""``ab create --strategy bandit``: the multi-armed bandit's options."""

from __future__ import annotations

import argparse
from typing import Any

STRATEGIES = {"bandit": "multi_armed_bandit"}  # the CLI's short name -> the API's


def add_bandit_arguments(q: argparse.ArgumentParser) -> None:
    g = q.add_argument_group("multi-armed bandit (--strategy bandit)")
    g.add_argument("--bandit-interval", type=float, metavar="SECONDS",
                   help="seconds between reweightings (default 3600, at least 1)")
    g.add_argument("--bandit-burn-in-units", type=int, metavar="N",
                   help="observations every arm needs before the first reweighting "
                        "(default 100)")
    g.add_argument("--bandit-burn-in-seconds", type=float, metavar="SECONDS",
                   help="running time before the first reweighting (default 0)")
    g.add_argument("--bandit-min-share", type=float, metavar="SHARE",
                   help="floor of every arm's weight (default 0.05, at most 1/arms)")
    g.add_argument("--bandit-metric", metavar="NAME",
                   help="success metric: success_rate (default) or a custom metric")
    g.add_argument("--bandit-metric-kind", choices=["conversion", "continuous"],
                   help="conversion: a 0/1 outcome (Beta posterior); continuous: a mean "
                        "(Normal posterior)")
    g.add_argument("--bandit-seed", type=int, help="Monte Carlo seed (default 0)")
    g.add_argument("--bandit-minimize", action="store_true", default=None,
                   help="lower values of the metric are better")


def strategy(args: argparse.Namespace) -> str:
    return STRATEGIES.get(args.strategy, args.strategy)


def bandit_options(args: argparse.Namespace) -> dict[str, Any] | None:
    """The bandit settings given (None when none was: defaults, or not a bandit)."""
    given = {
        "interval_seconds": args.bandit_interval,
        "burn_in_units": args.bandit_burn_in_units,
        "burn_in_seconds": args.bandit_burn_in_seconds,
        "min_share": args.bandit_min_share,
        "metric": args.bandit_metric,
        "metric_kind": args.bandit_metric_kind,
        "seed": args.bandit_seed,
        "minimize": args.bandit_minimize,
    }
    out = {k: x for k, x in given.items() if x is not None}
    return out or None
