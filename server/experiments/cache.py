"""Test rows for the hot path (``get_variant``, ``record_requests``), and what a change drops.

Every change made through this process drops the test's entry (at once and again after
commit), so this process never reads its own stale row. A change made by ANOTHER process
sharing the store is seen within :data:`CACHE_SECONDS`.
"""

from __future__ import annotations

from collections.abc import Callable

from neural.mlops.server.clock import Clock, to_us
from neural.mlops.server.experiments import store
from neural.mlops.server.experiments.model import ABTest
from neural.mlops.server.storage import Change, Database

CACHE_SECONDS = 1.0
MAX_ENTRIES = 10_000  # beyond this the cache starts over rather than grow without bound


class TestCache:
    __test__ = False  # not a pytest class

    def __init__(
        self, db: Database, clock: Clock, on_change: Callable[[], None] | None = None
    ) -> None:
        self._db = db
        self._clock = clock
        self._on_change = on_change  # wakes routing: running tests are routes
        self._rows: dict[str, tuple[float, store.Row, ABTest]] = {}

    async def lookup(self, test_id: str) -> tuple[store.Row, ABTest]:
        """The test's row and parsed test (``running_seconds`` may be up to CACHE_SECONDS
        old)."""
        hit = self._rows.get(test_id)
        now = self._clock.monotonic()
        if hit is not None and hit[0] > now:
            return hit[1], hit[2]
        async with self._db.read() as conn:
            row = await store.load(conn, test_id)
        test = store.to_test(row, to_us(self._clock.now()))
        if len(self._rows) > MAX_ENTRIES:
            self._rows.clear()
        self._rows[test_id] = (now + CACHE_SECONDS, row, test)
        return row, test

    def changed(self, ch: Change, test_id: str) -> None:
        """``ch`` changes the test: drop its entry, and rebuild routes after commit."""
        self._rows.pop(test_id, None)
        ch.on_commit(lambda: self._rows.pop(test_id, None))
        if self._on_change is not None:
            ch.on_commit(self._on_change)
