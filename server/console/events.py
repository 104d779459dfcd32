"""Live changes for the console: ``GET /api/events`` as server-sent events.

One :class:`ChangeFeed` per process reads the store while anyone listens, every
:data:`POLL_SECONDS`: the audit trail past the last sequence number seen (every state
change writes its audit event in the same transaction, so nothing changes unseen,
whichever replica or embedded process wrote it), the routing table's version, and the
newest metric batch (traffic moves the experiment and rollout figures). Each change
becomes ``event: change`` with ``data: {"topic": ..., "id": ...}``:

* ``registry`` (a model's resource id), ``experiments`` (a test id), ``deployments`` (a
  deployment or shadow id), for the audit events of those resources;
* ``audit`` with the newest sequence number, once per poll that saw events;
* ``routes`` with the routing table's new version;
* ``experiments`` and ``deployments`` with id ``""`` when a sidecar's metric batch
  arrived, and ``experiments`` with a test id when the test's per-unit totals moved
  (recorded outcomes too: ``RecordRequests`` writes no batch and no audit event).

A comment line every :data:`HEARTBEAT_SECONDS` keeps proxies from closing an idle
stream. A client that reads too slowly loses notices (bounded queue), never blocks the
feed; the pages re-read what they show on any notice, so a lost one costs nothing more
than the next.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import sqlalchemy as sa
import structlog
from aiohttp import web

from neural.mlops.server.background import Background
from neural.mlops.server.storage import Database
from neural.mlops.server.storage.schema import (
    audit_events,
    experiment_unit_totals,
    metric_batches,
    routing_state,
)

log = structlog.get_logger(__name__)

POLL_SECONDS = 0.5
HEARTBEAT_SECONDS = 15.0
QUEUE_SIZE = 256
MAX_EVENTS_PER_POLL = 1000
TOPICS = {"model": "registry", "ab_test": "experiments", "deployment": "deployments",
          "shadow": "deployments"}

Change = dict[str, str]


class ChangeFeed:
    def __init__(self, db: Database, *, poll_seconds: float = POLL_SECONDS) -> None:
        self.db = db
        self.poll_seconds = poll_seconds
        self._listeners: set[asyncio.Queue[Change]] = set()
        self._loop = Background("console-changes")
        # audit seq, routes version, newest batch, newest per-unit totals update
        self._marks: tuple[int, int, int, int] | None = None

    def subscribe(self) -> asyncio.Queue[Change]:
        queue: asyncio.Queue[Change] = asyncio.Queue(QUEUE_SIZE)
        self._listeners.add(queue)
        self._loop.start(self._run)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Change]) -> None:
        self._listeners.discard(queue)

    async def stop(self) -> None:
        await self._loop.stop()

    def publish(self, change: Change) -> None:
        for queue in list(self._listeners):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(change)

    async def _run(self) -> None:
        while True:
            if not self._listeners:
                self._marks = None  # nobody listened meanwhile: start from the head again
            else:
                try:
                    await self.poll()
                except Exception as exc:  # noqa: BLE001 - an outage: the next poll retries
                    log.warning("console change feed poll failed", error=type(exc).__name__)
            await asyncio.sleep(self.poll_seconds)

    async def poll(self) -> list[Change]:
        """Read the store once; publish and return what changed since the last poll."""
        async with self.db.read() as conn:
            version = (await conn.execute(
                sa.select(routing_state.c.version).where(routing_state.c.id == 1)
            )).scalar() or 0
            traffic = (await conn.execute(
                sa.select(sa.func.max(metric_batches.c.received_us)))).scalar() or 0
            units = experiment_unit_totals
            if self._marks is None:
                head = (await conn.execute(sa.select(sa.func.max(audit_events.c.seq)))).scalar()
                newest = (await conn.execute(sa.select(sa.func.max(units.c.updated_us)))).scalar()
                self._marks = (head or 0, version, traffic, newest or 0)
                return []
            moved = (await conn.execute(
                sa.select(units.c.test_id, sa.func.max(units.c.updated_us))
                .where(units.c.updated_us > self._marks[3]).group_by(units.c.test_id))).all()
            rows = (await conn.execute(
                sa.select(audit_events.c.seq, audit_events.c.resource_type,
                          audit_events.c.resource_id)
                .where(audit_events.c.seq > self._marks[0])
                .order_by(audit_events.c.seq).limit(MAX_EVENTS_PER_POLL))).all()
        changes = self._changes(rows, version, traffic, moved)
        for change in changes:
            self.publish(change)
        return changes

    def _changes(self, rows: Any, version: int, traffic: int, moved: Any) -> list[Change]:
        assert self._marks is not None
        seq, known_version, known_traffic, known_units = self._marks
        out: list[Change] = []
        seen: set[tuple[str, str]] = set()
        for row in rows:
            topic = TOPICS.get(row.resource_type)
            if topic is not None and (topic, row.resource_id) not in seen:
                seen.add((topic, row.resource_id))
                out.append({"topic": topic, "id": row.resource_id})
        if rows:
            seq = rows[-1].seq
            out.append({"topic": "audit", "id": str(seq)})
        if version != known_version:
            out.append({"topic": "routes", "id": str(version)})
        if traffic > known_traffic:
            out += [{"topic": "experiments", "id": ""}, {"topic": "deployments", "id": ""}]
        for test_id, _us in moved:
            if ("experiments", test_id) not in seen:
                out.append({"topic": "experiments", "id": test_id})
        newest = max([known_units, *(int(us) for _id, us in moved)])
        self._marks = (seq, version, max(traffic, known_traffic), newest)
        return out


async def stream(request: web.Request, feed: ChangeFeed,
                 heartbeat: float = HEARTBEAT_SECONDS) -> web.StreamResponse:
    """The SSE response: notices as they come, a comment heartbeat when idle."""
    response = web.StreamResponse(headers={
        "Content-Type": "text/event-stream", "Cache-Control": "no-cache",
        "X-Accel-Buffering": "no"})
    await response.prepare(request)
    queue = feed.subscribe()
    try:
        await response.write(b"retry: 2000\n: connected\n\n")
        while True:
            try:
                change = await asyncio.wait_for(queue.get(), heartbeat)
            except TimeoutError:
                await response.write(b": heartbeat\n\n")
                continue
            await response.write(f"event: change\ndata: {json.dumps(change)}\n\n".encode())
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        feed.unsubscribe(queue)
    return response
