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

For an A/B test's route (``sequential`` given: the test's mSPRT mixture and level) each
non-baseline point also carries the sequential look at the window's cumulative counts,
computed by :func:`..experiments.sequential.msprt_proportions` exactly as AnalyzeTest's
request-level test of the success rate: the mixture p-value and the confidence sequence
of ``p_t - p_c``. Looking at every window end is a valid way to peek, so the running
minimum of these p-values is an always-valid p-value and the running intersection of the
sequences a confidence sequence (the console plots both against alpha); AnalyzeTest's
own is over the looks someone took. A test whose requests name their units is analysed
by unit, which the windows (request counts) cannot reproduce: its points carry no look.
A shadow's windows carry its comparison counts, both latency histograms and its sample
disagreements. A point is one window or, with a step, the sum of the windows of one
step (sufficient statistics add up). Pages cover ``page_size`` steps of time, oldest
first; the token holds the page's last step start.
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from dataclasses import dataclass

import sqlalchemy as sa

from neural.mlops.server.errors import InvalidArgument
from neural.mlops.server.experiments import unitstore
from neural.mlops.server.experiments.config import AnalysisConfig
from neural.mlops.server.experiments.sequential import (
    DEFAULT_TUNING,
    Mixture,
    msprt_proportions,
)
from neural.mlops.server.pagination import decode_key, encode_key, page_size
from neural.mlops.server.storage import Database
from neural.mlops.server.storage.schema import experiments, shadow_windows, traffic_windows
from neural.mlops.server.traffic import store
from neural.mlops.server.traffic.store import DEFAULT_WINDOW_US as WINDOW_US
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
    # The sequential look (p-value, confidence sequence low, high); None: not asked for,
    # the baseline, or undefined (too few events).
    sequential: tuple[float, float, float] | None = None


@dataclass(frozen=True, slots=True)
class Sequential:
    """A test's mSPRT mixture, alpha (1 - its confidence level) and control variant (the
    default baseline)."""

    mixture: Mixture
    alpha: float
    control: str = ""
    # The test's requests name their units: AnalyzeTest's sequential test then counts
    # units (delta-method variance), which the windows cannot reproduce, and a look that
    # counted correlated requests as independent would be invalid: no looks then.
    by_unit: bool = False


async def sequential_settings(db: Database, route_id: str) -> Sequential | None:
    """The mixture and alpha of the A/B test whose id is ``route_id`` (None: no such
    test, e.g. a deployment's route), as its analysis uses them."""
    async with db.read() as conn:
        text = (await conn.execute(sa.select(experiments.c.config)
                                   .where(experiments.c.test_id == route_id))).scalar()
        units = await unitstore.totals(conn, route_id) if text is not None else {}
    if text is None:
        return None
    cfg = json.loads(text)
    analysis = AnalysisConfig(confidence_level=float(cfg["confidence_level"]),
                              sequential_tau=float(cfg.get("sequential_tau", 0.0)),
                              sequential_tuning=float(cfg.get("sequential_tuning",
                                                              DEFAULT_TUNING)))
    control = str(cfg.get("control", ""))
    # As AnalyzeTest decides it (byunit.by_unit): by unit when the control has unit
    # totals and some variant counted a unit.
    by_unit = control in units and any(t.units for t in units.values())
    return Sequential(analysis.mixture(), round(1.0 - analysis.confidence_level, 12),
                      control, by_unit)


def sequential_look(c: VariantStats, t: VariantStats,
                    seq: Sequential) -> tuple[float, float, float] | None:
    """AnalyzeTest's request-level sequential look at these cumulative counts."""
    res = msprt_proportions(c.successes, c.count, t.successes, t.count, seq.alpha,
                            seq.mixture)
    p, low, high = float(res.p_value), float(res.ci_low), float(res.ci_high)
    if not all(math.isfinite(x) for x in (p, low, high)):
        return None
    return p, low, high


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


@dataclass(frozen=True, slots=True)
class Span:
    """What one page asks for: steps of ``step_us`` from ``since_us`` (or after the
    token's step) up to ``until_us`` (0 = open), at most ``steps`` of them."""

    since_us: int
    until_us: int
    step_us: int
    steps: int
    after: bool = False  # a later page (from a token)


def span(*, since_us: int = 0, until_us: int = 0, size: int = 0, token: str = "",
         step_us: int = 0) -> Span:
    """The checked request; InvalidArgument naming the wrong field."""
    for name, value in (("since_us", since_us), ("until_us", until_us), ("step_us", step_us)):
        if value < 0:
            raise InvalidArgument(f"{name} must be >= 0 (0 = the default)", field=name)
    step = step_us or WINDOW_US
    if step % WINDOW_US:
        raise InvalidArgument(f"step_us must be a multiple of {WINDOW_US} (one minute)",
                              field="step_us")
    steps = page_size(size, MAX_WINDOWS) if size else DEFAULT_WINDOWS
    after = decode_key(token, "traffic-series", (int,))
    since = since_us if after is None else max(since_us, int(after[0]) + step)
    return Span(since, until_us, step, steps, after is not None)


async def _first_start(db: Database, table: sa.Table, key_col: sa.Column[str], key: str,
                       since_us: int, until_us: int) -> int | None:
    """The first window start at or after ``since_us`` (and before ``until_us``)."""
    col = table.c.window_start_us
    conds = [key_col == key, col >= since_us]
    if until_us > 0:
        conds.append(col < until_us)
    async with db.read() as conn:
        first = (await conn.execute(sa.select(sa.func.min(col)).where(*conds))).scalar()
        return None if first is None else int(first)


def _step_of(start_us: int, step_us: int) -> int:
    return start_us - start_us % step_us


async def _page_range(db: Database, table: sa.Table, key_col: sa.Column[str], key: str,
                      s: Span) -> tuple[int, int, str] | None:
    """(where the page's rows start, where they end, the next token); None when empty."""
    first = await _first_start(db, table, key_col, key, s.since_us, s.until_us)
    if first is None:
        return None
    start = _step_of(first, s.step_us)
    end = start + s.steps * s.step_us
    if s.until_us > 0:
        end = min(end, s.until_us)
    later = await _first_start(db, table, key_col, key, end, s.until_us)
    token = encode_key("traffic-series", (_step_of(end - 1, s.step_us),)) if later else ""
    return max(start, s.since_us), end, token


class _Pages:
    """Computed pages, reused while the route's windows up to the page's end are unchanged
    (:func:`_fingerprint`, read from the store on every call, so a window written by any
    replica invalidates). The console re-reads a test's whole series
    on every change notice; the closed, older pages then cost one small query each."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._pages: OrderedDict[tuple[object, ...], tuple[list[WindowPoint], str]] = \
            OrderedDict()

    def get(self, key: tuple[object, ...]) -> tuple[list[WindowPoint], str] | None:
        hit = self._pages.get(key)
        if hit is not None:
            self._pages.move_to_end(key)
        return hit

    def put(self, key: tuple[object, ...], page: tuple[list[WindowPoint], str]) -> None:
        self._pages[key] = page
        while len(self._pages) > self.size:
            self._pages.popitem(last=False)


_PAGES = _Pages()


async def _fingerprint(db: Database, route_id: str, end: int) -> tuple[int, int, int]:
    """Rows, calls and newest update of the route's windows before ``end``: windows only
    grow by merging (their call counts add up) or go away, so any change moves one."""
    t = traffic_windows
    async with db.read() as conn:
        row = (await conn.execute(
            sa.select(sa.func.count(), sa.func.sum(t.c.count), sa.func.max(t.c.updated_us))
            .where(t.c.route_id == route_id, t.c.window_start_us >= 0,
                   t.c.window_start_us < end))).one()
    return int(row[0]), int(row[1] or 0), int(row[2] or 0)


async def route_series(db: Database, route_id: str, s: Span, baseline: str = "",
                       seq: Sequential | None = None) -> tuple[list[WindowPoint], str]:
    if not route_id:
        raise InvalidArgument("route_id is required", field="route_id")
    found = await _page_range(db, traffic_windows, traffic_windows.c.route_id, route_id, s)
    if found is None:
        return [], ""
    key = (str(db.engine.url), route_id, s, baseline, seq, *found,
           *await _fingerprint(db, route_id, found[1]))
    page = _PAGES.get(key)
    if page is None:
        page = await _compute(db, route_id, s, baseline, found, seq)
        _PAGES.put(key, page)
    return page


async def _compute(db: Database, route_id: str, s: Span, baseline: str,
                   found: tuple[int, int, str],
                   seq: Sequential | None) -> tuple[list[WindowPoint], str]:
    start, end, more = found
    async with db.read() as conn:
        # nothing before the route's first window: the first page needs no running sums
        first = s.since_us == 0 and not s.after
        running = {} if first else await store.totals(conn, route_id, 0, start)
        rows = await store.windows(conn, route_id, start, end)
    asked = baseline or (seq.control if seq is not None else "")
    base = pick_baseline(sorted({v for _, v, _ in rows} | set(running)), asked)
    by_step: dict[int, dict[str, VariantStats]] = {}
    for window_start, variant, stats in rows:
        step = by_step.setdefault(_step_of(window_start, s.step_us), {})
        step[variant] = step[variant] + stats if variant in step else stats
    points = []
    for step_start in sorted(by_step):
        window = by_step[step_start]
        for variant, stats in window.items():
            running[variant] = running[variant] + stats if variant in running else stats
        points.append(WindowPoint(step_start, _variants(window, running, base, seq)))
    return points, more


def _variants(window: dict[str, VariantStats], running: dict[str, VariantStats],
              base: str, seq: Sequential | None) -> tuple[VariantPoint, ...]:
    ref = running.get(base)
    out = []
    for variant in sorted(window):
        total = running[variant]
        p = look = None
        if ref is not None and variant != base:
            p = two_proportion_p(total.successes, total.count, ref.successes, ref.count)
            if seq is not None and not seq.by_unit:
                look = sequential_look(ref, total, seq)
        out.append(VariantPoint(variant, window[variant], total, p, look))
    return tuple(out)


async def shadow_series(db: Database, shadow_id: str,
                        s: Span) -> tuple[list[WindowPoint], str]:
    if not shadow_id:
        raise InvalidArgument("route_id is required (the shadow id)", field="route_id")
    found = await _page_range(db, shadow_windows, shadow_windows.c.shadow_id, shadow_id, s)
    if found is None:
        return [], ""
    start, end, more = found
    async with db.read() as conn:
        rows = await store.shadow_windows(conn, shadow_id, start, end)
    by_step: dict[int, ShadowStats] = {}
    for window_start, stats in rows:
        key = _step_of(window_start, s.step_us)
        by_step[key] = by_step[key] + stats if key in by_step else stats
    return [WindowPoint(k, shadow=by_step[k]) for k in sorted(by_step)], more
