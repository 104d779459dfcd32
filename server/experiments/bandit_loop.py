"""The bandit loop: every RUNNING multi-armed bandit test is reweighted once per interval.

Each look (:meth:`Bandits.check`, every :data:`TICK_SECONDS`) takes the RUNNING bandit tests
whose interval has passed since their last reweighting (or their start), reads each arm's
totals and, once the burn-in is over, computes new weights (:func:`.bandit.reweight`).
They are applied in one audited transaction: the test's weights change (so routing is
rebuilt and pushed to the sidecars after commit), the reweighting is added to the weight
history (:mod:`.bandit_store`), and an ``ab_test_updated`` event with action
``bandit_reweight`` records the weights before and after and what they came from.

The weights are computed outside the transaction and applied only if the history has
not moved meanwhile (compare-and-set on the sequence number under the row lock, and the
number is the history's primary key), so two replicas acting at once change nothing
twice. On PostgreSQL the loop runs under the ``bandit-weights`` lease (one replica);
on SQLite in the serving process. A reweighting does not add to the test's split
history: the weight history is its record.
"""

from __future__ import annotations

import asyncio

import structlog

from neural.mlops.server import traffic
from neural.mlops.server.audit.events import EventType
from neural.mlops.server.background import Background
from neural.mlops.server.clock import Clock, to_us
from neural.mlops.server.coordination import Lease
from neural.mlops.server.experiments import bandit_store, store
from neural.mlops.server.experiments.bandit import (
    Reweighting,
    arm_data,
    burn_in_left,
    reweight,
)
from neural.mlops.server.experiments.cache import TestCache
from neural.mlops.server.experiments.model import ABTest, TestStatus
from neural.mlops.server.storage import Database
from neural.mlops.v1.traffic import VariantStats

log = structlog.get_logger(__name__)

TICK_SECONDS = 0.5
ACTOR = "bandit"
LEASE = "bandit-weights"


class _Moved(Exception):
    """The test changed since its weights were computed."""


class Bandits:
    """Reweights bandit tests; :meth:`start` runs the loop (under a lease on PostgreSQL)."""

    def __init__(self, db: Database, clock: Clock, cache: TestCache) -> None:
        self._db = db
        self._clock = clock
        self._cache = cache
        self._loop = Background("bandit-loop")
        self._lease: Lease | None = None
        self._waiting: dict[str, int] = {}  # test id -> when its burn-in is looked at again

    async def check(self) -> list[str]:
        """Reweight every RUNNING bandit test that is due; the ids of those reweighted."""
        now_us = to_us(self._clock.now())
        async with self._db.read() as conn:
            rows = await store.running(conn)
        running = {row.test_id for row in rows}
        self._waiting = {k: t for k, t in self._waiting.items() if k in running}
        done = []
        for row in rows:
            test = store.to_test(row, now_us)
            if test.bandit is None or self._waiting.get(test.test_id, 0) > now_us:
                continue
            if await self.reweight(test.test_id) is not None:
                done.append(test.test_id)
        return done

    async def reweight(self, test_id: str, *, force: bool = False) -> Reweighting | None:
        """Reweight ``test_id`` if its interval has passed (``force``: now) and its burn-in
        is over; the reweighting applied, or None."""
        now_us = to_us(self._clock.now())
        async with self._db.read() as conn:
            test = store.to_test(await store.load(conn, test_id), now_us)
            seq, last_us = await bandit_store.last(conn, test_id)
            totals = await traffic.totals(conn, test_id)
        config = test.bandit
        if config is None or test.status != TestStatus.RUNNING or test.started_at is None:
            return None
        interval_us = int(config.interval_seconds * 1e6)
        since_us = last_us or to_us(test.started_at)
        if not force and now_us - since_us < interval_us:
            self._waiting[test_id] = since_us + interval_us
            return None
        arms = {x.name: arm_data(config, totals.get(x.name, VariantStats()))
                for x in test.variants}
        wait = burn_in_left(config, {n: a.n for n, a in arms.items()}, test.running_seconds)
        if wait:
            self._waiting[test_id] = now_us + interval_us
            log.debug("bandit burn-in", test_id=test_id, reason=wait)
            return None
        result = reweight(config, arms, seq + 1)
        if not await self._apply(test, seq, result, now_us):
            return None
        self._waiting.pop(test_id, None)
        return result

    async def _apply(self, seen: ABTest, seq: int, r: Reweighting, now_us: int) -> bool:
        try:
            await self._store(seen, seq, r, now_us)
        except _Moved:
            return False  # another replica reweighted, or the test moved on: nothing changed
        log.info("bandit reweighted", test_id=seen.test_id, sequence=r.sequence,
                 weights=r.weights)
        return True

    async def _store(self, seen: ABTest, seq: int, r: Reweighting, now_us: int) -> None:
        """The weights, the history row and the audit event, if the history is still at
        ``seq`` and the test still RUNNING (else :class:`_Moved` rolls it all back)."""
        async with self._db.change() as ch:
            row = await store.load(ch.conn, seen.test_id, lock=True)
            test = store.to_test(row, now_us)
            latest, _ = await bandit_store.last(ch.conn, seen.test_id)
            if latest != seq or test.status != TestStatus.RUNNING:
                raise _Moved
            before = test.weights
            variants = [{"name": x.name, "model_ref": x.model_ref, "weight": r.weights[x.name]}
                        for x in test.variants]
            await store.update(ch.conn, test.test_id, variants=store.dump(variants),
                               updated_us=now_us)
            await bandit_store.append(ch.conn, test.test_id, now_us, r)
            ch.record(
                EventType.AB_TEST_UPDATED, resource_type="ab_test", resource_id=test.test_id,
                action="bandit_reweight", actor=ACTOR,
                details={"before": {"weights": before}, "after": {"weights": r.weights},
                         "sequence": r.sequence, "p_best": r.p_best,
                         "observations": r.observations, "posterior_means": r.means},
            )
            self._cache.changed(ch, test.test_id)

    async def run(self, every: float = TICK_SECONDS) -> None:
        while True:
            try:
                await self.check()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the loop must outlive transient errors
                log.exception("bandit reweighting failed")
            await asyncio.sleep(every)

    def start(self, every: float = TICK_SECONDS) -> None:
        """Run the loop: here on SQLite, under the lease on PostgreSQL."""
        if self._db.is_sqlite:
            self._loop.start(lambda: self.run(every))
        elif self._lease is None:
            self._lease = Lease(self._db, LEASE, lambda: self.run(every))
            self._lease.start()

    async def stop(self) -> None:
        await self._loop.stop()
        if self._lease is not None:
            await self._lease.stop()
            self._lease = None
