"""Traffic per time window for the console's charts (``GetTrafficSeries``).

A route's windows (an A/B test's or a deployment's) carry each variant's counts and
latency quantiles for the window, and cumulative counts from the route's first window.
Each non-baseline variant also gets the two-sided p-value of the pooled two-proportion
z-test of its cumulative success rate against the baseline's, as statsmodels'
``proportions_ztest`` computes it:

    p = (x1 + x0) / (n1 + n0),  z = (x1/n1 - x0/n0) / sqrt(p (1 - p) (1/n1 + 1/n0)),
    p-value = 2 (1 - Phi(|z|)) = erfc(|z| / sqrt 2).

This is the curve of the fixed-horizon test over time, to show how the evidence moved;
the decision itself is AnalyzeTest's (sequential test, corrections, guardrails).
A shadow's windows carry its comparison counts, both latency histograms and its sample
disagreements. Pages hold whole windows, oldest first (keyset on the window start).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import sqlalchemy as sa

from neural.mlops.server.errors import InvalidArgument
from neural.mlops.server.pagination import decode_key, encode_key, page_size
from neural.mlops.server.storage import Database
from neural.mlops.server.storage.schema import shadow_windows, traffic_windows
from neural.mlops.server.traffic import store
from neural.mlops.v1.traffic import ShadowStats, VariantStats

DEFAULT_WINDOWS = 500
MAX_WINDOWS = 5000
BASELINES = ("control", "stable")


@dataclass(frozen=True, slots=True)
class VariantPoint:
    variant: str
    window: VariantStats
    cumulative: VariantStats
    p_value: float | None  # None: the baseline itself, or undefined


@dataclass(frozen=True, slots=True)
class WindowPoint:
    start_us: int
    variants: tuple[VariantPoint, ...] = ()
    shadow: ShadowStats | None = None


def two_proportion_p(x1: int, n1: int, x0: int, n0: int) -> float | None:
    """Two-sided pooled z-test p-value (formula in the module docstring); None when
    undefined: a side without calls, or a pooled rate of exactly 0 or 1."""
    if n1 <= 0 or n0 <= 0:
        return None
    pooled = (x1 + x0) / (n1 + n0)
    var = pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n0)
    if var <= 0.0:
        return None
    z = (x1 / n1 - x0 / n0) / math.sqrt(var)
    return math.erfc(abs(z) / math.sqrt(2.0))


def pick_baseline(variants: list[str], asked: str) -> str:
    if asked:
        return asked
    for name in BASELINES:
        if name in variants:
            return name
    return min(variants) if variants else ""


async def _starts(db: Database, table: sa.Table, key_col: sa.Column[str], key: str,
                  since_us: int, until_us: int, after: int | None, n: int) -> list[int]:
    col = table.c.window_start_us
    conds = [key_col == key, col >= max(since_us, 0)]
    if until_us > 0:
        conds.append(col < until_us)
    if after is not None:
        conds.append(col > after)
    async with db.read() as conn:
        rows = await conn.execute(sa.select(col).where(*conds).distinct()
                                  .order_by(col).limit(n + 1))
        return [int(r[0]) for r in rows]


def _page(token: str, size: int, since_us: int = 0,
          until_us: int = 0) -> tuple[int | None, int]:
    for name, value in (("since_us", since_us), ("until_us", until_us)):
        if value < 0:
            raise InvalidArgument(f"{name} must be >= 0 (0 = open)", field=name)
    n = page_size(size, MAX_WINDOWS) if size else DEFAULT_WINDOWS
    after = decode_key(token, "traffic-series", (int,))
    return (None if after is None else int(after[0])), n


async def route_series(db: Database, route_id: str, *, since_us: int = 0, until_us: int = 0,
                       size: int = 0, token: str = "",
                       baseline: str = "") -> tuple[list[WindowPoint], str]:
    if not route_id:
        raise InvalidArgument("route_id is required", field="route_id")
    after, n = _page(token, size, since_us, until_us)
    starts = await _starts(db, traffic_windows, traffic_windows.c.route_id, route_id,
                           since_us, until_us, after, n)
    page = starts[:n]
    if not page:
        return [], ""
    async with db.read() as conn:
        running = await store.totals(conn, route_id, 0, page[0])
        rows = await store.windows(conn, route_id, page[0], page[-1] + 1)
    names = sorted({v for _, v, _ in rows} | set(running))
    base = pick_baseline(names, baseline)
    by_start: dict[int, dict[str, VariantStats]] = {}
    for start, variant, stats in rows:
        by_start.setdefault(start, {})[variant] = stats
    points = []
    for start in page:
        window = by_start.get(start, {})
        for variant, stats in window.items():
            running[variant] = running[variant] + stats if variant in running else stats
        points.append(WindowPoint(start, _variants(window, running, base)))
    more = encode_key("traffic-series", (page[-1],)) if len(starts) > n else ""
    return points, more


def _variants(window: dict[str, VariantStats], running: dict[str, VariantStats],
              base: str) -> tuple[VariantPoint, ...]:
    ref = running.get(base)
    out = []
    for variant in sorted(window):
        total = running[variant]
        p = None
        if ref is not None and variant != base:
            p = two_proportion_p(total.successes, total.count, ref.successes, ref.count)
        out.append(VariantPoint(variant, window[variant], total, p))
    return tuple(out)


async def shadow_series(db: Database, shadow_id: str, *, since_us: int = 0, until_us: int = 0,
                        size: int = 0, token: str = "") -> tuple[list[WindowPoint], str]:
    if not shadow_id:
        raise InvalidArgument("route_id is required (the shadow id)", field="route_id")
    after, n = _page(token, size, since_us, until_us)
    starts = await _starts(db, shadow_windows, shadow_windows.c.shadow_id, shadow_id,
                           since_us, until_us, after, n)
    page = starts[:n]
    if not page:
        return [], ""
    async with db.read() as conn:
        rows = await store.shadow_windows(conn, shadow_id, page[0], page[-1] + 1)
    points = [WindowPoint(start, shadow=stats) for start, stats in rows]
    more = encode_key("traffic-series", (page[-1],)) if len(starts) > n else ""
    return points, more
