"""Guardrail watch: RUNNING tests whose guardrail is violated are stopped automatically.

Every look (``analyze_test`` or the watch's own, every :data:`CHECK_SECONDS`) checks
the test's guardrails (:mod:`.guardrails`); a violation on a RUNNING test stops it
through the audited lifecycle, with the measured values as the reason, like a
deployment's health judge rolls a canary back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

from neural.mlops.server.background import Background
from neural.mlops.server.experiments import store
from neural.mlops.server.experiments.lifecycle import Lifecycle
from neural.mlops.server.experiments.model import TestStatus
from neural.mlops.server.experiments.reporting import TestAnalysis
from neural.mlops.server.storage import Database

log = structlog.get_logger(__name__)

CHECK_SECONDS = 60.0


def violated(result: TestAnalysis) -> bool:
    return any(g.violated for g in result.report.guardrail_checks)


class GuardrailWatch:
    """Stops RUNNING tests on a guardrail violation; :meth:`start` runs the periodic check."""

    def __init__(self, db: Database, lifecycle: Lifecycle,
                 analyze: Callable[[str], Awaitable[TestAnalysis]]) -> None:
        self._db = db
        self._lifecycle = lifecycle
        self._analyze = analyze
        self._loop = Background("guardrail-watch")

    async def enforce(self, result: TestAnalysis) -> bool:
        """Stop the analysed test if it is RUNNING and a guardrail is violated."""
        if result.test.status != TestStatus.RUNNING or not violated(result):
            return False
        reason = "automatic stop: " + result.report.recommendation.reason
        await self._lifecycle.transition(result.test.test_id, TestStatus.STOPPED, action="stop",
                                         reason=reason[:4000])
        log.warning("ab test stopped by a guardrail", test_id=result.test.test_id,
                    reason=reason)
        return True

    async def check(self) -> list[str]:
        """Analyse every RUNNING test with guardrails; the ids of those stopped."""
        async with self._db.read() as conn:
            rows = await store.running(conn)
        stopped = []
        for row in rows:
            if not store.to_test(row, 0).guardrails:
                continue
            if await self.enforce(await self._analyze(row.test_id)):
                stopped.append(row.test_id)
        return stopped

    async def run(self, every: float = CHECK_SECONDS) -> None:
        while True:
            try:
                await self.check()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the watch must outlive transient errors
                log.exception("guardrail check failed")
            await asyncio.sleep(every)

    def start(self, every: float = CHECK_SECONDS) -> None:
        self._loop.start(lambda: self.run(every))

    async def stop(self) -> None:
        await self._loop.stop()
