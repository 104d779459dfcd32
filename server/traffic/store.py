"""Per-window traffic statistics in SQL, merged by addition.

One row per ``(route_id, variant, window_start_us)`` holds a
:class:`neural.mlops.v1.traffic.VariantStats` (JSON text); one row per
``(shadow_id, window_start_us)`` a :class:`~neural.mlops.v1.traffic.ShadowStats`.
Everything that counts traffic writes here: ``record_request`` of the experiments
domain, the sidecars' metric batches (routing ingestion) and anything else; deployments
and analysis read it.

Functions take the caller's connection and run inside the caller's transaction
(``async with db.change(...) as ch: await traffic.apply(ch.conn, ...)``), so a metric
batch and its dedup marker, or a request and its audit-free change, commit together.

Besides the windows, each route (and shadow) keeps a running **total row**
(``window_start_us = -1``) updated by every :func:`apply`. Reading the totals of a route
over its whole life is therefore one row per variant whatever the traffic volume or the
age of the route; a time range (``since_us`` / ``until_us``) sums the windows it covers:
``since_us <= window_start_us < until_us``.

Window starts are chosen by the writer (:func:`window_start` aligns a timestamp to the
default one-minute grid); windows of different widths may coexist, a reader only sees
their start times.
"""

from __future__ import annotations

import json
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from neural.mlops.server.storage.schema import shadow_windows as shadow_table
from neural.mlops.server.storage.schema import traffic_windows as window_table
from neural.mlops.v1.traffic import ShadowStats, VariantStats

# A row merges with statistics of its own kind only: a window with VariantStats, a shadow
# window with ShadowStats.
_Stats = TypeVar("_Stats", VariantStats, ShadowStats)

DEFAULT_WINDOW_US = 60_000_000
TOTAL = -1  # window_start_us of the running-total row


def window_start(ts_us: int, width_us: int = DEFAULT_WINDOW_US) -> int:
    """Start of the window of width ``width_us`` that contains ``ts_us``."""
    if width_us <= 0:
        raise ValueError("window width must be positive")
    return ts_us - ts_us % width_us


def _dump(obj: VariantStats | ShadowStats) -> str:
    return json.dumps(obj.to_dict(), sort_keys=True, separators=(",", ":"), allow_nan=False)


def _insert(conn: AsyncConnection, table: sa.Table) -> sa.Insert:
    """INSERT ... ON CONFLICT DO NOTHING for the connection's dialect."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).on_conflict_do_nothing()
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table).on_conflict_do_nothing()


async def _merge_row(
    conn: AsyncConnection,
    table: sa.Table,
    key: dict[str, object],
    stats: _Stats,
    count: int,
    now_us: int,
) -> None:
    empty = type(stats)()
    await conn.execute(
        _insert(conn, table).values(**key, count=0, stats=_dump(empty), updated_us=now_us)
    )
    where = sa.and_(*(table.c[k] == v for k, v in key.items()))
    row = (
        await conn.execute(sa.select(table.c.stats).where(where).with_for_update())
    ).one()
    merged = type(stats).from_dict(json.loads(row.stats)) + stats
    await conn.execute(
        sa.update(table)
        .where(where)
        .values(count=table.c.count + count, stats=_dump(merged), updated_us=now_us)
    )


async def apply(
    conn: AsyncConnection,
    route_id: str,
    variant: str,
    window_start_us: int,
    stats: VariantStats,
    *,
    now_us: int = 0,
) -> None:
    """Add ``stats`` to the window (and to the route's running total)."""
    if window_start_us < 0:
        raise ValueError("window_start_us must be >= 0")
    for start in (window_start_us, TOTAL):
        key = {"route_id": route_id, "variant": variant, "window_start_us": start}
        await _merge_row(conn, window_table, key, stats, stats.count, now_us)


def _range(
    col: sa.Column[int], since_us: int | None, until_us: int | None
) -> list[sa.ColumnElement[bool]]:
    conds = [col >= (since_us if since_us is not None else 0)]
    if until_us is not None:
        conds.append(col < until_us)
    return conds


async def totals(
    conn: AsyncConnection,
    route_id: str,
    since_us: int | None = None,
    until_us: int | None = None,
) -> dict[str, VariantStats]:
    """Summed statistics per variant; the whole life of the route when no range is given."""
    t = window_table
    query = sa.select(t.c.variant, t.c.stats).where(t.c.route_id == route_id)
    if since_us is None and until_us is None:
        query = query.where(t.c.window_start_us == TOTAL)
    else:
        query = query.where(*_range(t.c.window_start_us, since_us, until_us))
    out: dict[str, VariantStats] = {}
    for row in await conn.execute(query):
        stats = VariantStats.from_dict(json.loads(row.stats))
        out[row.variant] = out[row.variant] + stats if row.variant in out else stats
    return out


async def windows(
    conn: AsyncConnection,
    route_id: str,
    since_us: int | None = None,
    until_us: int | None = None,
) -> list[tuple[int, str, VariantStats]]:
    """``(window_start_us, variant, stats)`` in time order (a time series)."""
    t = window_table
    query = (
        sa.select(t.c.window_start_us, t.c.variant, t.c.stats)
        .where(t.c.route_id == route_id, *_range(t.c.window_start_us, since_us, until_us))
        .order_by(t.c.window_start_us, t.c.variant)
    )
    return [
        (row.window_start_us, row.variant, VariantStats.from_dict(json.loads(row.stats)))
        for row in await conn.execute(query)
    ]


async def apply_shadow(
    conn: AsyncConnection,
    shadow_id: str,
    window_start_us: int,
    stats: ShadowStats,
    *,
    now_us: int = 0,
) -> None:
    """Add ``stats`` to the shadow's window (and to its running total)."""
    if window_start_us < 0:
        raise ValueError("window_start_us must be >= 0")
    for start in (window_start_us, TOTAL):
        key = {"shadow_id": shadow_id, "window_start_us": start}
        await _merge_row(conn, shadow_table, key, stats, stats.compared, now_us)


async def shadow_totals(
    conn: AsyncConnection,
    shadow_id: str,
    since_us: int | None = None,
    until_us: int | None = None,
) -> ShadowStats:
    t = shadow_table
    query = sa.select(t.c.stats).where(t.c.shadow_id == shadow_id)
    if since_us is None and until_us is None:
        query = query.where(t.c.window_start_us == TOTAL)
    else:
        query = query.where(*_range(t.c.window_start_us, since_us, until_us))
    out = ShadowStats()
    for row in await conn.execute(query.order_by(t.c.window_start_us)):
        out = out + ShadowStats.from_dict(json.loads(row.stats))
    return out


async def shadow_windows(
    conn: AsyncConnection,
    shadow_id: str,
    since_us: int | None = None,
    until_us: int | None = None,
) -> list[tuple[int, ShadowStats]]:
    t = shadow_table
    query = (
        sa.select(t.c.window_start_us, t.c.stats)
        .where(t.c.shadow_id == shadow_id, *_range(t.c.window_start_us, since_us, until_us))
        .order_by(t.c.window_start_us)
    )
    return [
        (row.window_start_us, ShadowStats.from_dict(json.loads(row.stats)))
        for row in await conn.execute(query)
    ]


async def delete_route(conn: AsyncConnection, route_id: str) -> int:
    """Remove every window of a route (e.g. when its experiment is deleted)."""
    result = await conn.execute(sa.delete(window_table).where(window_table.c.route_id == route_id))
    return int(result.rowcount or 0)

