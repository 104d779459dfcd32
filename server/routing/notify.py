"""Route changes pushed between replicas on PostgreSQL (LISTEN/NOTIFY).

A change that invalidates routes (it registers ``RoutingService.invalidate`` with
``Change.on_commit``) also sends ``NOTIFY`` on :data:`CHANNEL` inside its own transaction
(:meth:`Database.broadcast`), so the notice goes out exactly when the change commits and
never for one that rolled back. Every replica LISTENs on a dedicated connection and
invalidates its table on each notice from another replica; its sidecars then get the new
table within one recompile, well inside a second.

A notice sent while a replica was not listening (its connection dropped, the database
restarted) is lost, so the listener invalidates once each time it (re)connects, and the
routing poller stays on as a slow safety net (:data:`SAFETY_POLL_S`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import Callable
from typing import Any

import structlog

from neural.mlops.server.background import Background
from neural.mlops.server.coordination import close_session, connect_session
from neural.mlops.server.storage import Database

log = structlog.get_logger(__name__)

CHANNEL = "neural_mlops_routes"
SAFETY_POLL_S = 5.0  # the routing poller's period on PostgreSQL, where notices do the work
CHECK_S = 2.0  # how often an idle listening connection is checked
MAX_BACKOFF_S = 5.0


class RouteNotices:
    """Publish this process's route invalidations to the other replicas and apply theirs.

    ``invalidate`` is the routing service's hook: registered with the database as a
    broadcast on :data:`CHANNEL`, and called for every notice another process sent."""

    def __init__(self, db: Database, invalidate: Callable[[], None], *,
                 retry: float = 0.5) -> None:
        self.db = db
        self.invalidate = invalidate
        self.retry = retry
        self.origin = uuid.uuid4().hex[:16]  # tells our own notices from the others'
        self.received = 0
        self.listening = False
        self._loop = Background("route-notices")
        db.broadcast(invalidate, CHANNEL, self.origin)

    def start(self) -> None:
        if not self.db.is_sqlite:
            self._loop.start(self._run)

    async def stop(self) -> None:
        await self._loop.stop()

    def _on_notice(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        if payload == self.origin:
            return  # this process invalidated already, at its own commit
        self.received += 1
        self.invalidate()

    async def _run(self) -> None:
        backoff = self.retry
        name = f"neural-mlops routes pid={os.getpid()}"
        while True:
            conn = None
            try:
                conn = await connect_session(self.db, name)
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _conn, ev=lost: ev.set())
                await conn.add_listener(CHANNEL, self._on_notice)
                self.listening = True
                self.invalidate()  # whatever changed while nobody listened
                backoff = self.retry
                while not lost.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(lost.wait(), CHECK_S)
                    if not lost.is_set():
                        await conn.fetchval("SELECT 1", timeout=CHECK_S)
                raise ConnectionError("the listening session ended")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - an outage: reconnect with backoff
                log.warning("route notices interrupted", error=f"{type(exc).__name__}: {exc}")
            finally:
                self.listening = False
                await close_session(conn)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_S)
