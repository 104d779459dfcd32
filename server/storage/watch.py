"""Whether the database answers, watched in the background so the health service can say
NOT_SERVING during an outage (a load balancer then stops sending calls) and SERVING again
once the database is back, without a restart.

While the database answers it is pinged every ``interval`` seconds; after a failure the
pings back off (``interval`` doubling up to ``max_backoff``), so a long outage costs little.
The pool itself reconnects: every checkout pre-pings, so the first call after recovery
gets a fresh connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

from neural.mlops.server.background import Background
from neural.mlops.server.storage.database import Database, is_outage

log = structlog.get_logger(__name__)

PING_TIMEOUT_S = 5.0


class StoreWatch:
    def __init__(self, db: Database, on_change: Callable[[bool], Awaitable[None]], *,
                 interval: float = 1.0, max_backoff: float = 5.0) -> None:
        self.db = db
        self.on_change = on_change
        self.interval = interval
        self.max_backoff = max_backoff
        self.available = True
        self._loop = Background("store-watch")

    def start(self) -> None:
        self._loop.start(self._run)

    async def stop(self) -> None:
        await self._loop.stop()

    async def check(self) -> bool:
        """Ping once; report a change of availability. Returns whether it answered."""
        try:
            await asyncio.wait_for(self.db.ping(), PING_TIMEOUT_S)
            up = True
        except Exception as exc:  # noqa: BLE001 - anything else is a bug, logged below
            if not is_outage(exc):
                log.exception("store ping failed")
            up = False
            error = type(exc).__name__
        if up != self.available:
            self.available = up
            if up:
                log.info("store available again")
            else:
                log.warning("store unavailable", error=error)
            await self.on_change(up)
        return up

    async def _run(self) -> None:
        delay = self.interval
        while True:
            await asyncio.sleep(delay)
            up = await self.check()
            delay = self.interval if up else min(max(delay * 2, self.interval), self.max_backoff)
