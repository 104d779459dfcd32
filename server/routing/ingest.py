"""Metric batches from the sidecars: validated window by window, applied exactly once.

A batch is refused whole (nothing applied) when any window is not something a sidecar
could have measured: negative or inconsistent counts, non-finite or out-of-range
latencies, a route or variant (or shadow) that no routing table of this control plane
has served. Forged numbers would otherwise flow straight into A/B verdicts and rollout
decisions.

Windows of experiment routes may carry per-unit counts (the routing key's unit); they
are checked against their window (at most :data:`MAX_UNITS_PER_WINDOW` units, every sum
within the window's own, the unit map of a window split over several messages of a batch
summed first) and added to the experiment's per-unit store
(:mod:`neural.mlops.server.experiments.unitstore`) in the same transaction as the dedup
marker, so they too are applied exactly once.

Each ``(sidecar_id, session, sequence)`` is recorded in ``metric_batches`` in the same
transaction that folds its windows into the traffic store, so a batch resent after a lost
acknowledgement changes nothing. ``session`` is a secret the sidecar process draws at
start: the sidecar id is public, and without it anyone could pre-empt a sidecar's next
sequence numbers and have its real batches dropped as duplicates. With authentication
on, the first principal that reports under a sidecar id owns it; another principal
reporting under that id is refused.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from neural.mlops.server import traffic
from neural.mlops.server.errors import InvalidArgument, PermissionDenied
from neural.mlops.server.experiments import unitstore
from neural.mlops.server.storage import Database
from neural.mlops.server.storage.schema import metric_batches, sidecar_owners
from neural.mlops.v1.traffic import (
    LATENCY_BOUNDS,
    MAX_DISAGREEMENT_SAMPLES,
    LatencyHistogram,
    Moments,
    ShadowStats,
    VariantStats,
)
from neural.mlops.v1.units import MAX_UNITS_PER_WINDOW, UnitCounts

DEDUP_RETENTION_US = 7 * 24 * 3600 * 1_000_000
MAX_WINDOWS_PER_BATCH = 10_000
MAX_SIDECAR_ID = 200
# One window covers about a second of one sidecar's traffic; 10^9 requests in it is far
# beyond any real proxy and keeps every later sum exact in int64 and float64.
MAX_WINDOW_COUNT = 1_000_000_000
# A request slower than a day is not a latency; the histogram's last bound is 1e4 s.
MAX_LATENCY_SECONDS = 86_400.0
# Custom metric values (a score, a revenue) are bounded so sums of squares stay finite.
MAX_CUSTOM_ABS = 1e12
MAX_CUSTOM_METRICS = 64
MAX_STATUS_CODES = 64
MAX_NAME = 200
# The largest window start accepted: year 9999 in microseconds.
MAX_WINDOW_START_US = 253_402_300_799_999_999
# Empty for sidecars older than sessions; else 16-64 URL-safe characters.
_SESSION = re.compile(r"(?:[A-Za-z0-9_-]{16,64})?")


@dataclass(frozen=True, slots=True)
class VariantWindow:
    route_id: str
    variant: str
    window_start_us: int
    stats: VariantStats
    units: Mapping[int, UnitCounts] = field(default_factory=dict)  # unit key -> counts
    unit_overflow: int = 0  # requests of units the sidecar did not count (its cap)


@dataclass(frozen=True, slots=True)
class ShadowWindow:
    route_id: str
    shadow_id: str
    window_start_us: int
    stats: ShadowStats


@dataclass(frozen=True, slots=True)
class MetricsBatch:
    sidecar_id: str
    sequence: int
    windows: tuple[VariantWindow, ...] = ()
    shadows: tuple[ShadowWindow, ...] = field(default=())
    session: str = ""


@dataclass(frozen=True, slots=True)
class KnownRoute:
    """What a served route lets a sidecar report: its variants and its shadows."""

    variants: frozenset[str]
    shadows: frozenset[str]
    kind: str = ""  # "experiment" routes may carry per-unit counts


def _bad(message: str, field_name: str) -> InvalidArgument:
    return InvalidArgument(message, field=field_name)


# float: a unit's custom-metric count travels as a float (units.UnitCounts.custom).
def _count(value: float, what: str, field_name: str, upper: int = MAX_WINDOW_COUNT) -> None:
    if not 0 <= value <= upper:
        raise _bad(f"{what} must be in [0, {upper}], got {value}", field_name)


def _check_histogram(h: LatencyHistogram, limit: int, field_name: str) -> None:
    """Bucket counts, moments and extremes that requests of [0, MAX_LATENCY] could give."""
    _count(h.count, "latency count", field_name, limit)
    if sum(h.counts.values()) != h.count and h.counts:
        raise _bad(f"latency buckets hold {sum(h.counts.values())} requests, "
                   f"latency count says {h.count}", field_name)
    if h.counts and (min(h.counts) < 0 or max(h.counts) > len(LATENCY_BOUNDS)):
        raise _bad("latency bucket index outside the histogram", field_name)
    for v in h.counts.values():
        _count(v, "latency bucket count", field_name, limit)
    top = MAX_LATENCY_SECONDS
    if not (math.isfinite(h.sum) and 0.0 <= h.sum <= h.count * top):
        raise _bad(f"latency sum must be finite and in [0, count x {top:g} s]", field_name)
    if not (math.isfinite(h.sum_squares) and 0.0 <= h.sum_squares <= h.count * top * top):
        raise _bad("latency sum of squares must be finite and in range", field_name)
    for extreme in (h.min, h.max):
        if extreme is not None and not (math.isfinite(extreme) and 0.0 <= extreme <= top):
            raise _bad(f"latency min/max must be in [0, {top:g}] s", field_name)


def _check_moments(name: str, m: Moments, limit: int) -> None:
    field_name = "custom"
    if not name or len(name) > MAX_NAME:
        raise _bad(f"custom metric names must be 1-{MAX_NAME} characters", field_name)
    _count(m.n, f"custom metric {name[:40]!r} n", field_name, limit)
    bound = m.n * MAX_CUSTOM_ABS
    if not (math.isfinite(m.sum) and abs(m.sum) <= bound):
        raise _bad(f"custom metric {name[:40]!r}: sum must be finite, |value| <= "
                   f"{MAX_CUSTOM_ABS:g}", field_name)
    if not (math.isfinite(m.sum_squares) and 0.0 <= m.sum_squares <= bound * MAX_CUSTOM_ABS):
        raise _bad(f"custom metric {name[:40]!r}: sum of squares out of range", field_name)


def check_variant_stats(s: VariantStats) -> None:
    """Raise InvalidArgument (naming the field) unless ``s`` is a measurable window."""
    _count(s.count, "count", "count")
    _count(s.errors, "errors", "errors", s.count)
    _count(s.successes, "successes", "successes", s.count)
    _check_histogram(s.latency, s.count, "latency")
    if len(s.custom) > MAX_CUSTOM_METRICS:
        raise _bad(f"at most {MAX_CUSTOM_METRICS} custom metrics per window", "custom")
    for name, m in s.custom.items():
        _check_moments(name, m, s.count)
    _check_status_codes(s.status_codes, s.count)


def _check_status_codes(codes: Mapping[str, int], count: int) -> None:
    if len(codes) > MAX_STATUS_CODES:
        raise _bad(f"at most {MAX_STATUS_CODES} status codes per window", "status_codes")
    for code, n in codes.items():
        if not code or len(code) > MAX_NAME:
            raise _bad(f"status codes must be 1-{MAX_NAME} characters", "status_codes")
        _count(n, "status code count", "status_codes", count)
    if sum(codes.values()) > count:
        raise _bad("status code counts add up to more than count", "status_codes")


def units_from_arrays(
    keys: Sequence[int], requests: Sequence[int], errors: Sequence[int],
    latency: Sequence[float], custom: Mapping[str, tuple[Sequence[int], Sequence[float]]],
) -> dict[int, UnitCounts]:
    """A window's per-unit counts from the wire's parallel arrays (a unit's successes are
    its requests minus its errors; every request has a latency). Arrays of different
    lengths are refused; a key listed twice (two ids with one 64-bit key) is summed."""
    n = len(keys)
    if len(requests) != n or len(errors) != n or len(latency) != n or any(
            len(cn) != n or len(cs) != n for cn, cs in custom.values()):
        raise _bad("the unit arrays (keys, requests, errors, latency, custom) must have "
                   "equal lengths", "units")
    if n > MAX_UNITS_PER_WINDOW:
        raise _bad(f"at most {MAX_UNITS_PER_WINDOW} units per window", "units")
    # Repeated protobuf fields index slowly: each array becomes a list once.
    metrics = [(name, list(cn), list(cs)) for name, (cn, cs) in custom.items()]
    out: dict[int, UnitCounts] = {}
    for i, (k, r, e, lat) in enumerate(zip(list(keys), list(requests), list(errors),
                                           list(latency), strict=True)):
        r, e, k = int(r), int(e), int(k)
        u = UnitCounts(r, r - e, e, r, float(lat),
                       {name: [int(cn[i]), float(cs[i])] for name, cn, cs in metrics if cn[i]}
                       if metrics else {})
        out[k] = out[k] + u if k in out else u
    return out


def _check_units(units: Mapping[int, UnitCounts], overflow: int, s: VariantStats) -> None:
    """One window's units (every message of it summed) against the window's counts."""
    if len(units) > MAX_UNITS_PER_WINDOW:
        raise _bad(f"at most {MAX_UNITS_PER_WINDOW} units per window", "units")
    _count(overflow, "unit overflow requests", "units", s.count)
    requests = errors = successes = 0
    latency = 0.0
    custom: dict[str, float] = {}
    for u in units.values():
        _count(u.requests, "unit requests", "units", s.count)
        _count(u.errors, "unit errors", "units", u.requests)
        if not (math.isfinite(u.latency_sum)
                and 0.0 <= u.latency_sum <= u.latency_n * MAX_LATENCY_SECONDS):
            raise _bad("unit latency sums must be finite and in [0, requests x "
                       f"{MAX_LATENCY_SECONDS:g} s]", "units")
        for name, (n, x) in u.custom.items():
            m = s.custom.get(name)
            if m is None:
                raise _bad(f"units report custom metric {name[:40]!r} the window has not",
                           "units")
            _count(n, "unit custom metric n", "units", m.n)
            if not (math.isfinite(x) and abs(x) <= n * MAX_CUSTOM_ABS):
                raise _bad("unit custom metric sums must be finite and in range", "units")
            custom[name] = custom.get(name, 0) + n
        requests += u.requests
        errors += u.errors
        successes += u.successes
        latency += u.latency_sum
    if requests + overflow > s.count or errors > s.errors or successes > s.successes:
        raise _bad("the units hold more requests, errors or successes than their window",
                   "units")
    if latency > s.latency.sum * (1.0 + 1e-9) + 1e-9:
        raise _bad("the units' latency sum exceeds their window's", "units")
    for name, n in custom.items():
        if n > s.custom[name].n:
            raise _bad(f"the units hold more values of {name[:40]!r} than their window",
                       "units")


def _merged_units(windows: Sequence[VariantWindow]) -> dict[tuple[str, str, int], tuple[
        VariantStats, dict[int, UnitCounts], int]]:
    """Per (route, variant, window start): the window's stats, units and overflow, over
    every message of the batch that carries part of it."""
    out: dict[tuple[str, str, int], tuple[VariantStats, dict[int, UnitCounts], int]] = {}
    for w in windows:
        if not w.units and not w.unit_overflow:
            continue
        key = (w.route_id, w.variant, w.window_start_us)
        stats, units, overflow = out.get(key) or (VariantStats(), {}, 0)
        merged = dict(units)
        for k, u in w.units.items():
            merged[k] = merged[k] + u if k in merged else u
        out[key] = (stats + w.stats, merged, overflow + w.unit_overflow)
    return out


def check_shadow_stats(s: ShadowStats) -> None:
    _count(s.compared, "compared", "compared")
    _count(s.agreements, "agreed", "agreed", s.compared)
    _count(s.shadow_errors, "errors", "errors")
    _count(s.dropped, "dropped", "dropped")
    _check_histogram(s.primary_latency, MAX_WINDOW_COUNT, "primary_latency")
    _check_histogram(s.shadow_latency, MAX_WINDOW_COUNT, "latency")
    if len(s.disagreements) > MAX_DISAGREEMENT_SAMPLES:
        raise _bad(f"at most {MAX_DISAGREEMENT_SAMPLES} disagreement samples per window",
                   "samples")


def check_batch(batch: MetricsBatch, known: Mapping[str, KnownRoute]) -> None:
    """Every check of a batch that needs no store; ``known`` maps served route ids."""
    _check_envelope(batch)
    _check_variant_windows(batch.windows, known)
    for stats, units, overflow in _merged_units(batch.windows).values():
        _check_units(units, overflow, stats)
    for sw in batch.shadows:
        if not any(sw.shadow_id in r.shadows for r in known.values()):
            raise _bad(f"shadow {sw.shadow_id[:80]!r} is not served by this control plane",
                       "shadow_id")
        check_shadow_stats(sw.stats)


def _check_envelope(batch: MetricsBatch) -> None:
    """The batch's identity, size and window times."""
    if not batch.sidecar_id or len(batch.sidecar_id) > MAX_SIDECAR_ID:
        raise _bad(f"sidecar_id must be 1-{MAX_SIDECAR_ID} characters", "sidecar_id")
    if batch.sequence < 1:
        raise _bad("sequence must be >= 1", "sequence")
    if not _SESSION.fullmatch(batch.session):
        raise _bad("session must be 16-64 characters of [A-Za-z0-9_-]", "session")
    if len(batch.windows) + len(batch.shadows) > MAX_WINDOWS_PER_BATCH:
        raise _bad(f"at most {MAX_WINDOWS_PER_BATCH} windows per batch", "windows")
    windows: tuple[VariantWindow | ShadowWindow, ...] = (*batch.windows, *batch.shadows)
    for w in windows:
        if not 0 <= w.window_start_us <= MAX_WINDOW_START_US:
            raise _bad("window_start_us must be in [0, year 9999]", "window_start_us")


def _check_variant_windows(
    windows: Sequence[VariantWindow], known: Mapping[str, KnownRoute]
) -> None:
    """Each variant window names a served route and variant, and its counts add up."""
    for vw in windows:
        route = known.get(vw.route_id)
        if route is None:
            raise _bad(f"route {vw.route_id[:80]!r} is not served by this control plane",
                       "route_id")
        if vw.variant not in route.variants:
            raise _bad(f"route {vw.route_id[:80]!r} has no variant {vw.variant[:80]!r}",
                       "variant")
        check_variant_stats(vw.stats)
        if (vw.units or vw.unit_overflow) and route.kind != "experiment":
            raise _bad(f"route {vw.route_id[:80]!r} is not an experiment; it takes no "
                       "per-unit counts", "units")


async def _claim(conn: AsyncConnection, sidecar_id: str, principal: str,
                 now_us: int) -> None:
    """Bind ``sidecar_id`` to ``principal`` on first use; refuse anyone else after."""
    owner = (await conn.execute(sa.select(sidecar_owners.c.principal).where(
        sidecar_owners.c.sidecar_id == sidecar_id))).scalar_one_or_none()
    if owner is None:
        await conn.execute(sa.insert(sidecar_owners).values(
            sidecar_id=sidecar_id, principal=principal, first_seen_us=now_us))
    elif owner != principal:
        raise PermissionDenied(
            f"sidecar_id {sidecar_id[:80]!r} belongs to another principal; a sidecar reports "
            "metrics only under its own identity", field="sidecar_id")


async def apply_batch(db: Database, batch: MetricsBatch, now_us: int,
                      principal: str | None = None) -> bool:
    """Fold a checked batch into the traffic store once; True if it was applied before.
    ``principal``: the authenticated caller, who must own ``batch.sidecar_id``."""
    async with db.change(audited=False) as ch:
        if principal is not None:
            await _claim(ch.conn, batch.sidecar_id, principal, now_us)
        seen = (
            await ch.conn.execute(
                sa.select(metric_batches.c.sequence).where(
                    metric_batches.c.sidecar_id == batch.sidecar_id,
                    metric_batches.c.session == batch.session,
                    metric_batches.c.sequence == batch.sequence,
                )
            )
        ).first()
        if seen is not None:
            return True
        await ch.conn.execute(
            sa.insert(metric_batches).values(
                sidecar_id=batch.sidecar_id,
                session=batch.session,
                sequence=batch.sequence,
                received_us=now_us,
                windows=len(batch.windows) + len(batch.shadows),
            )
        )
        per_test: dict[str, dict[str, dict[int, UnitCounts]]] = {}
        for w in batch.windows:
            if w.units:
                per = per_test.setdefault(w.route_id, {}).setdefault(w.variant, {})
                for k, u in w.units.items():
                    per[k] = per[k] + u if k in per else u
            if w.stats.count == 0 and w.units:
                continue  # the continuation of a window's units: no traffic of its own
            await traffic.apply(ch.conn, w.route_id, w.variant,
                                traffic.window_start(w.window_start_us), w.stats, now_us=now_us)
        for test_id, parts in per_test.items():
            await unitstore.apply(ch.conn, test_id, parts, now_us=now_us)
        for s in batch.shadows:
            await traffic.apply_shadow(ch.conn, s.shadow_id,
                                       traffic.window_start(s.window_start_us), s.stats,
                                       now_us=now_us)
    return False


async def prune(db: Database, cutoff_us: int) -> int:
    """Forget dedup markers received before ``cutoff_us``."""
    async with db.change(audited=False) as ch:
        res = await ch.conn.execute(
            sa.delete(metric_batches).where(metric_batches.c.received_us < cutoff_us)
        )
    return int(res.rowcount or 0)
