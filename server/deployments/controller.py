"""The rollout controller: judge every due deployment, decide, apply; then sleep.

The controller keeps no state of its own: after ``kill -9`` it re-reads the rows and
continues. A decision is applied with a compare-and-set on the revision it was judged on,
so a step either committed (and is never repeated: the revision moved on) or did not
happen (and is decided again from the same durable metrics): no step is taken twice and
no rollback is lost.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import structlog

from neural.mlops.server.background import Background
from neural.mlops.server.clock import Clock, to_us
from neural.mlops.server.deployments import health, store
from neural.mlops.server.deployments.model import Deployment, Verdict
from neural.mlops.server.deployments.rollout import Decision, decide, next_check_us
from neural.mlops.server.deployments.signals import Signals
from neural.mlops.server.deployments.transitions import Stale, Transitions
from neural.mlops.server.storage import Database

log = structlog.get_logger(__name__)

CONTROLLER = "rollout-controller"
IDLE_SLEEP = 1.0  # seconds between cycles when nothing is due sooner


class RolloutController:
    def __init__(self, db: Database, clock: Clock, signals: Signals,
                 transitions: Transitions) -> None:
        self.db = db
        self.clock = clock
        self.signals = signals
        self.transitions = transitions
        self._loop = Background("rollout-controller")
        self.cycles = 0
        self.last_cycle_seconds = 0.0

    def _now_us(self) -> int:
        return to_us(self.clock.now())

    async def apply(self, decision: Decision, actor: str) -> Deployment | None:
        """Apply one decision if the deployment is still at the revision it was judged on;
        ``None`` when it was not (the decision is dropped)."""
        d, check = decision.deployment, decision.check
        last_check = store.dump(store.check_to_dict(check))
        if decision.action.quiet:
            values = {"last_check": last_check,
                      "next_check_us": next_check_us(d, to_us(check.at))}
            if check.verdict is Verdict.PASS:
                values["failed_checks"] = 0
            async with self.db.change(audited=False) as ch:
                if not await store.update_if_revision(ch.conn, d, **values):
                    return None
                self.signals.committed(ch, routes=False)
                return (await store.load(ch.conn, d.deployment_id)).deployment
        try:
            async with self.db.change() as ch:
                await self.transitions.apply(ch, decision, actor)
                # same transaction, after the compare-and-set succeeded
                await store.update(ch.conn, d.deployment_id, last_check=last_check)
                return (await store.load(ch.conn, d.deployment_id)).deployment
        except Stale:
            return None

    async def _judge_due(self) -> list[Decision]:
        async with self.db.read() as conn:
            records = await store.due(conn, self._now_us())
            totals = await store.running_totals(conn, [r.deployment.deployment_id
                                                       for r in records])
            decisions = []
            for rec in records:
                try:
                    check = await health.measure(conn, rec, self._now_us(), None,
                                                 totals.get(rec.deployment.deployment_id, {}))
                except Exception:  # noqa: BLE001 - one broken deployment must not stop the others
                    log.exception("health check failed", deployment_id=rec.deployment.deployment_id)
                    continue
                decisions.append(decide(rec, check, advance=True))
        return decisions

    async def reconcile(self) -> dict[str, int]:
        """One cycle: check every active deployment whose check is due, then advance, hold,
        pause, complete or roll back. Returns counts per action."""
        started = self.clock.monotonic()
        decisions = await self._judge_due()
        counts: Counter[str] = Counter()
        quiet = [p for p in decisions if p.action.quiet]
        for p in decisions:
            if p.action.quiet:
                continue
            try:
                if await self.apply(p, CONTROLLER) is not None:
                    counts[p.action.value] += 1
            except Exception:  # noqa: BLE001
                log.exception("rollout decision failed", deployment_id=p.deployment.deployment_id)
        if quiet:
            await self._store_quiet(quiet)
            counts.update(p.action.value for p in quiet)
        self.cycles += 1
        self.last_cycle_seconds = self.clock.monotonic() - started
        return dict(counts)

    async def _store_quiet(self, decisions: list[Decision]) -> None:
        """Hold/wait outcomes change no status: one unaudited transaction for all of them."""
        checks = []
        for p in decisions:
            d, check = p.deployment, p.check
            checks.append({
                "deployment_id": d.deployment_id, "revision": d.revision,
                "last_check": store.dump(store.check_to_dict(check)),
                "next_check_us": next_check_us(d, to_us(check.at)),
                "failed_checks": 0 if check.verdict is Verdict.PASS else d.failed_checks,
            })
        async with self.db.change(audited=False) as ch:
            await store.store_checks(ch.conn, checks)
            self.signals.committed(ch, routes=False)

    async def _next_due_seconds(self) -> float:
        async with self.db.read() as conn:
            due = await store.next_due_us(conn)
        if due is None:
            return IDLE_SLEEP
        return max((due - self._now_us()) / 1e6, 0.0)

    async def run(self, max_sleep: float = IDLE_SLEEP) -> None:
        """The loop: reconcile, then sleep until the next check is due (or a change)."""
        wake = self.signals.wake = asyncio.Event()
        while True:
            try:
                await self.reconcile()
                delay = min(max_sleep, await self._next_due_seconds())
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the controller must outlive transient errors
                log.exception("rollout controller cycle failed")
                delay = max_sleep
            wake.clear()
            if delay > 0:
                try:
                    await asyncio.wait_for(wake.wait(), delay)
                except TimeoutError:
                    pass

    def start(self) -> None:
        self._loop.start(self.run)

    async def stop(self) -> None:
        await self._loop.stop()
