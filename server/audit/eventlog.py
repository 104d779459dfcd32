"""Explicit events: validated, appended to the chain in one transaction, and queried.

Automatic events need nothing from here: every ``db.change()`` appends its records to the
chain in the same transaction (:mod:`neural.mlops.server.audit.hashchain`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from neural.mlops.server.audit import store
from neural.mlops.server.audit.events import (
    AuditEvent,
    AuditRecord,
    EventInput,
    EventPage,
    EventQuery,
    EventSeverity,
    LoggedBatch,
    parse_event_type,
    parse_severity,
    row_to_event,
)
from neural.mlops.server.audit.hashchain import canonical_json
from neural.mlops.server.clock import from_us, to_us
from neural.mlops.server.errors import InvalidArgument
from neural.mlops.server.identity import current_call
from neural.mlops.server.pagination import decode_key, encode_key, page_size
from neural.mlops.server.storage import Database

MAX_PAGE_SIZE = 10_000  # QueryEvents' documented maximum (the others: pagination's)
MAX_BATCH = 100_000
MAX_DETAILS_BYTES = 64 * 1024
MIN_US = to_us(datetime(1, 1, 1, tzinfo=UTC))
MAX_US = to_us(datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC))
# EventInput field -> the stored column that bounds it.
_BOUNDED = {"resource_type": "resource_type", "resource_id": "resource_id",
            "action": "action", "user": "actor"}


def check_time(us: int | None, field: str) -> None:
    """Refuse a time outside years 1 to 9999 (µs since the epoch): a datetime cannot hold
    it and the database's integers overflow near 2^63."""
    if us is not None and not MIN_US <= us <= MAX_US:
        raise InvalidArgument(f"{field} must lie between years 1 and 9999", field=field)


def check_range(start_us: int | None, end_us: int | None) -> None:
    """Refuse times outside years 1 to 9999 and a range that ends before it starts."""
    check_time(start_us, "start_date")
    check_time(end_us, "end_date")
    if start_us is not None and end_us is not None and end_us < start_us:
        raise InvalidArgument(
            f"end_date ({from_us(end_us).isoformat()}) is before start_date "
            f"({from_us(start_us).isoformat()})",
            field="end_date",
        )


class EventLog:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def log_events(self, items: Sequence[EventInput]) -> list[AuditEvent]:
        """Append explicit events, all in one transaction (all or none)."""
        return [row_to_event(r) for r in await self._append(items)]

    async def log_batch(self, items: Sequence[EventInput]) -> LoggedBatch:
        """:meth:`log_events` for bulk ingest: returns only what was stored where."""
        rows = await self._append(items)
        return LoggedBatch(
            rows[0]["seq"], rows[-1]["seq"], [r["event_id"] for r in rows], rows[-1]["hash"]
        )

    async def _append(self, items: Sequence[EventInput]) -> list[dict[str, Any]]:
        if not items:
            raise InvalidArgument("no events to log", field="events")
        if len(items) > MAX_BATCH:
            raise InvalidArgument(f"at most {MAX_BATCH} events per batch", field="events")
        ctx = current_call()
        records = [_record(i, ctx.authenticated, ctx.actor) for i in items]
        async with self.db.change() as ch:
            ch.records.extend(records)
        return ch.events

    async def query(self, q: EventQuery) -> EventPage:
        """The newest page of events matching every filter of ``q``."""
        check_range(q.start_us, q.end_us)
        size = page_size(q.page_size, MAX_PAGE_SIZE)
        types = sorted({str(parse_event_type(t)) for t in q.event_types})
        severities = _severities(q)
        if severities is None:
            return EventPage([])
        async with self.db.read() as conn:
            rows = await store.newest_events(
                conn, q, types=types, severities=severities,
                before=_page_position(q.page_token), limit=size + 1,
            )
        token = ""
        if len(rows) > size:
            rows = rows[:size]
            last = store.row_dict(rows[-1])
            token = encode_key("events", (last["ts_us"], last["seq"]))
        return EventPage([row_to_event(store.row_dict(r)) for r in rows], token)


def _severities(q: EventQuery) -> list[str] | None:
    """The severities to match (empty: any), or None when the filters exclude them all."""
    sevs = {parse_severity(s) for s in q.severities}
    if q.min_severity:
        floor = parse_severity(q.min_severity, field="min_severity")
        allowed = {s for s in EventSeverity if s.rank >= floor.rank}
        sevs = (sevs & allowed) if sevs else allowed
        if not sevs:
            return None
    if len(sevs) == len(EventSeverity):
        return []
    return sorted(str(s) for s in sevs)


def _page_position(token: str) -> tuple[int, int] | None:
    """(ts_us, seq) of the last event of the previous page, from its token."""
    key = decode_key(token, "events", (int, int))
    if key is None:
        return None
    ts, seq = int(key[0]), int(key[1])
    if not (MIN_US <= ts <= MAX_US and 0 <= seq < 2**62):
        raise InvalidArgument("page_token is not one this server issued", field="page_token")
    return ts, seq


def _record(item: EventInput, authenticated: bool, principal: str) -> AuditRecord:
    """The record of one explicit event, validated. An authenticated principal is the
    actor; a different claimed user stays as a detail."""
    etype = parse_event_type(item.event_type)
    severity = parse_severity(item.severity)
    _check_bounded(item)
    details = item.details if item.details is not None else {}
    text = _details_text(details)
    actor = item.user or principal
    if authenticated:
        actor = principal
        if item.user and item.user != principal:
            details = {**details, "claimed_user": item.user}
            text = canonical_json(details)
    return AuditRecord(
        event_type=etype,
        resource_type=item.resource_type or "",
        resource_id=item.resource_id or "",
        action=item.action or str(etype),
        details=details,
        severity=severity,
        actor=actor,
        details_text=text,
    )


def _check_bounded(item: EventInput) -> None:
    for name, column in _BOUNDED.items():
        value = getattr(item, name) or ""
        if not isinstance(value, str):
            raise InvalidArgument(f"{name} must be a string", field=name)
        limit = store.column_limit(column)
        if len(value) > limit:
            raise InvalidArgument(f"{name} is longer than {limit} characters", field=name)


def _details_text(details: Any) -> str:
    """The canonical JSON of an event's details, checked for type and size."""
    if not isinstance(details, dict):
        raise InvalidArgument("details must be a mapping of JSON values", field="details")
    try:
        text = canonical_json(details)
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(
            f"details are not JSON-serialisable: {exc}", field="details"
        ) from None
    # Characters <= bytes <= 4 * characters: encode only when it could be too long.
    if len(text) > MAX_DETAILS_BYTES // 4 and len(text.encode()) > MAX_DETAILS_BYTES:
        raise InvalidArgument(f"details exceed {MAX_DETAILS_BYTES} bytes", field="details")
    return text
