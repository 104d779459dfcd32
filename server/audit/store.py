"""The audit domain's SQL: events, the chain head, checkpoints and saved reports.

Appending events is not here: every ``db.change()`` chains its records in the same
transaction (:func:`neural.mlops.server.audit.hashchain.append`). Functions take the
caller's connection, so several reads share one snapshot (an export and its seal) and a
write joins the caller's transaction (a purge, its checkpoint and its audit event).
Stored rows come back as tuples in :data:`EVENT_FIELDS` order; :func:`row_dict` names
their fields.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
from collections.abc import AsyncIterator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from neural.mlops.server.audit.events import EventQuery
from neural.mlops.server.audit.hashchain import EVENT_FIELDS
from neural.mlops.server.pagination import after_clause
from neural.mlops.server.storage.schema import (
    audit_chain_head,
    audit_checkpoints,
    audit_events,
    audit_reports,
)

READ_PAGE = 5_000  # rows per read when walking the chain
_COLS = [audit_events.c[name] for name in EVENT_FIELDS]
_PAGE_SQL = (
    f"SELECT {', '.join(EVENT_FIELDS)} FROM audit_events WHERE seq > ? AND seq <= ? "
    "ORDER BY seq LIMIT ?"
)
_SEQ, _TS_US = EVENT_FIELDS.index("seq"), EVENT_FIELDS.index("ts_us")
_ev = audit_events.c


def row_dict(row: Sequence[Any]) -> dict[str, Any]:
    return dict(zip(EVENT_FIELDS, row, strict=True))


def column_limit(name: str) -> int:
    """The width of an event column: the one definition of how long that field may be."""
    length = audit_events.c[name].type.length  # type: ignore[attr-defined]
    assert isinstance(length, int)
    return length


# --- the chain ------------------------------------------------------------------------


async def read_pages(
    conn: AsyncConnection, after: int, last: int | None
) -> AsyncIterator[Sequence[Sequence[Any]]]:
    """Stored rows with ``after < seq <= last``, by seq, a page at a time, inside the
    caller's read transaction. The next page is read while the caller works on the
    current one. On SQLite the rows come straight from the driver (plain tuples, twice as
    fast as SQLAlchemy rows); elsewhere through SQLAlchemy Core."""
    upper = last if last is not None else 2**62
    driver = None
    if conn.dialect.name == "sqlite":
        raw = await conn.get_raw_connection()
        driver = getattr(raw, "driver_connection", None)

    async def fetch(start: int) -> Sequence[Sequence[Any]]:
        if driver is not None:
            async with driver.execute(_PAGE_SQL, (start, upper, READ_PAGE)) as cur:
                return list(await cur.fetchall())
        return (await conn.execute(
            sa.select(*_COLS).where(_ev.seq > start, _ev.seq <= upper)
            .order_by(_ev.seq).limit(READ_PAGE))).all()

    pending: asyncio.Future[Sequence[Sequence[Any]]] | None = asyncio.ensure_future(fetch(after))
    try:
        while pending is not None:
            rows = await pending
            pending = None
            if not rows:
                return
            if len(rows) == READ_PAGE and rows[-1][_SEQ] < upper:
                pending = asyncio.ensure_future(fetch(rows[-1][_SEQ]))
            yield rows
    finally:
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending


async def chain_head(conn: AsyncConnection) -> tuple[int, str]:
    """(seq, hash) of the last event appended, as the head record says."""
    head = audit_chain_head.c
    row = (await conn.execute(sa.select(head.seq, head.hash))).one()
    return int(row.seq), str(row.hash)


async def time_span_after(conn: AsyncConnection, after: int) -> tuple[int, int]:
    """(oldest, newest) ts_us of the events after seq ``after``; (0, 0) if none. Reads
    only that run of the primary key."""
    row = (await conn.execute(
        sa.select(sa.func.min(_ev.ts_us), sa.func.max(_ev.ts_us)).where(_ev.seq > after))).one()
    return (int(row[0]), int(row[1])) if row[0] is not None else (0, 0)


async def hash_at(conn: AsyncConnection, seq: int) -> str | None:
    return (await conn.execute(sa.select(_ev.hash).where(_ev.seq == seq))).scalar()


async def prev_hash_at(conn: AsyncConnection, seq: int) -> str | None:
    return (await conn.execute(sa.select(_ev.prev_hash).where(_ev.seq == seq))).scalar()


async def seq_range(
    conn: AsyncConnection, start_us: int | None, end_us: int | None
) -> tuple[int, int]:
    """(first, last) seq of the events in the time range, (0, 0) if none."""
    # Through the (ts_us, seq) index: min(seq) WHERE ts_us >= x would walk the primary
    # key from the oldest event.
    first_q = sa.select(_ev.seq).order_by(_ev.ts_us, _ev.seq).limit(1)
    last_q = sa.select(_ev.seq).order_by(_ev.ts_us.desc(), _ev.seq.desc()).limit(1)
    if start_us is not None:
        first_q = first_q.where(_ev.ts_us >= start_us)
    if end_us is not None:
        last_q = last_q.where(_ev.ts_us <= end_us)
    first = (await conn.execute(first_q)).scalar()
    last = (await conn.execute(last_q)).scalar()
    if first is None or last is None or first > last:
        return 0, 0
    return int(first), int(last)


async def oldest_seq(conn: AsyncConnection) -> int | None:
    first = (await conn.execute(sa.select(sa.func.min(_ev.seq)))).scalar()
    return None if first is None else int(first)


async def first_seq_since(conn: AsyncConnection, ts_us: int) -> int | None:
    """The seq of the oldest event at or after ``ts_us``."""
    seq = (await conn.execute(sa.select(_ev.seq).where(_ev.ts_us >= ts_us)
                              .order_by(_ev.ts_us, _ev.seq).limit(1))).scalar()
    return None if seq is None else int(seq)


async def delete_through(conn: AsyncConnection, last: int) -> int:
    """Delete the events up to seq ``last``; returns how many."""
    return int((await conn.execute(audit_events.delete().where(_ev.seq <= last))).rowcount)


# --- queries ----------------------------------------------------------------------------


def _conditions(
    q: EventQuery, severities: Sequence[str], before: tuple[int, int] | None
) -> list[Any]:
    where: list[Any] = []
    for column, value in ((_ev.actor, q.user), (_ev.resource_type, q.resource_type),
                          (_ev.resource_id, q.resource_id)):
        if value:
            where.append(column == value)
    if severities:
        where.append(_ev.severity.in_(severities))
    if q.start_us is not None:
        where.append(_ev.ts_us >= q.start_us)
    if q.end_us is not None:
        where.append(_ev.ts_us <= q.end_us)
    if q.text:
        where.append(_ev.details.icontains(q.text, autoescape=True))
    if before is not None:
        where.append(sa.tuple_(_ev.ts_us, _ev.seq) < sa.tuple_(*before))
    return where


async def newest_events(
    conn: AsyncConnection,
    q: EventQuery,
    *,
    types: Sequence[str],
    severities: Sequence[str],
    before: tuple[int, int] | None,
    limit: int,
) -> list[Any]:
    """At most ``limit`` rows matching the filters of ``q``, newest first by (ts_us, seq).
    The caller resolves the names: ``types`` and ``severities`` as stored (empty: any),
    ``before`` the (ts_us, seq) of the previous page's last event."""
    where = _conditions(q, severities, before)

    def page(*extra: Any) -> Any:
        return (sa.select(*_COLS).where(*where, *extra)
                .order_by(_ev.ts_us.desc(), _ev.seq.desc()).limit(limit))

    if len(types) <= 1:
        stmt = page(_ev.event_type == types[0]) if types else page()
        return list((await conn.execute(stmt)).all())
    # One index-ordered read per type, merged: an IN list would sort every match.
    parts = [(await conn.execute(page(_ev.event_type == t))).all() for t in types]
    merged = heapq.merge(*parts, key=lambda r: (r[_TS_US], r[_SEQ]), reverse=True)
    return list(merged)[:limit]


# --- checkpoints ----------------------------------------------------------------------


async def insert_checkpoint(conn: AsyncConnection, values: dict[str, Any]) -> None:
    """Store a checkpoint (its fields: seq, hash, created_us, kind, key_id, signature)."""
    await conn.execute(audit_checkpoints.insert().values(**values))


async def checkpoint_rows(conn: AsyncConnection) -> list[Any]:
    """Every stored checkpoint, in the order they were stored."""
    cp = audit_checkpoints.c
    return list((await conn.execute(
        sa.select(cp.seq, cp.hash, cp.created_us, cp.kind, cp.key_id, cp.signature)
        .order_by(cp.id))).all())


# --- compliance reports -------------------------------------------------------------------


async def insert_report(conn: AsyncConnection, values: dict[str, Any]) -> None:
    await conn.execute(audit_reports.insert().values(**values))


async def report_body(conn: AsyncConnection, report_id: str) -> str | None:
    r = audit_reports.c
    return (await conn.execute(sa.select(r.body).where(r.report_id == report_id))).scalar()


async def report_rows(conn: AsyncConnection, limit: int,
                      after: tuple[int, str] | None = None) -> list[Any]:
    """The newest reports' (report_id, created_us, start_us, end_us, created_by), newest
    first (by created_us, then report_id), after the key ``after`` (created_us, report_id)."""
    r = audit_reports.c
    q = (sa.select(r.report_id, r.created_us, r.start_us, r.end_us, r.created_by)
         .order_by(r.created_us.desc(), r.report_id.desc()).limit(limit))
    if after is not None:
        q = q.where(after_clause([r.created_us, r.report_id], after, descending=True))
    return list((await conn.execute(q)).all())


def _in_range(start_us: int, end_us: int) -> tuple[Any, Any]:
    return _ev.ts_us >= start_us, _ev.ts_us <= end_us


async def count_events(
    conn: AsyncConnection, start_us: int, end_us: int, types: Sequence[str] | None = None
) -> int:
    """How many events of the time range (of those types, if given)."""
    where = [*_in_range(start_us, end_us)]
    if types is not None:
        where.append(_ev.event_type.in_(types))
    return int((await conn.execute(sa.select(sa.func.count()).where(*where))).scalar_one())


async def counts_by(
    conn: AsyncConnection, column: str, start_us: int, end_us: int
) -> dict[str, int]:
    """Events of the time range counted by the value of one column."""
    col = _ev[column]
    rows = (await conn.execute(
        sa.select(col, sa.func.count()).where(*_in_range(start_us, end_us)).group_by(col))).all()
    return {str(value): int(n) for value, n in rows}


async def events_of_types(
    conn: AsyncConnection, types: Sequence[str], start_us: int, end_us: int, limit: int
) -> list[dict[str, Any]]:
    """The oldest ``limit`` events of those types in the time range, as row dicts."""
    rows = (await conn.execute(
        sa.select(*_COLS).where(_ev.event_type.in_(types), *_in_range(start_us, end_us))
        .order_by(_ev.seq).limit(limit))).all()
    return [row_dict(r) for r in rows]


# A gRPC call with a declared identity records details.auth = {"method": "none"}
# (storage/database.py); embedded-mode events carry peer "embedded".
_DECLARED_AUTH = '%"auth":{"method":"none"}%'


def _unauthenticated(start_us: int, end_us: int, excluded: Sequence[str]) -> list[Any]:
    return [*_in_range(start_us, end_us), _ev.event_type.not_in(excluded),
            sa.or_(_ev.peer == "embedded", _ev.details.like(_DECLARED_AUTH))]


async def unauthenticated_events(
    conn: AsyncConnection, start_us: int, end_us: int, excluded: Sequence[str], limit: int
) -> list[dict[str, Any]]:
    """The oldest ``limit`` events of the range recorded for unauthenticated (declared)
    identities, but those of the ``excluded`` types, as row dicts."""
    rows = (await conn.execute(
        sa.select(*_COLS).where(*_unauthenticated(start_us, end_us, excluded))
        .order_by(_ev.seq).limit(limit))).all()
    return [row_dict(r) for r in rows]


async def count_unauthenticated(
    conn: AsyncConnection, start_us: int, end_us: int, excluded: Sequence[str]
) -> int:
    where = _unauthenticated(start_us, end_us, excluded)
    return int((await conn.execute(sa.select(sa.func.count()).where(*where))).scalar_one())


async def any_event_for(
    conn: AsyncConnection, types: Sequence[str], before_seq: int, resource_id: str
) -> bool:
    """Whether an event of those types about ``resource_id`` precedes ``before_seq``."""
    stmt = sa.select(_ev.seq).where(
        _ev.event_type.in_(types), _ev.seq < before_seq, _ev.resource_id == resource_id
    ).limit(1)
    return (await conn.execute(stmt)).first() is not None


async def details_containing(
    conn: AsyncConnection, types: Sequence[str], before_seq: int, fragment: str
) -> list[str]:
    """The details (JSON text) of earlier events of those types whose text contains
    ``fragment``; a coarse filter the caller refines on the parsed details."""
    stmt = sa.select(_ev.details).where(
        _ev.event_type.in_(types), _ev.seq < before_seq, _ev.details.contains(fragment))
    return [text for (text,) in (await conn.execute(stmt)).all()]


async def latest_events_for(
    conn: AsyncConnection, event_type: str, before_seq: int, resource_id: str, limit: int
) -> list[Any]:
    """(ts_us, actor, details) of the latest events of a type about ``resource_id``
    before ``before_seq``, newest first."""
    stmt = sa.select(_ev.ts_us, _ev.actor, _ev.details).where(
        _ev.event_type == event_type, _ev.seq < before_seq, _ev.resource_id == resource_id
    ).order_by(_ev.seq.desc()).limit(limit)
    return list((await conn.execute(stmt)).all())
