"""The console's change feed against a real store: what each kind of change becomes."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).parent))

from support.databases import open_database  # noqa: E402

from neural.mlops.server.audit.events import EventType  # noqa: E402
from neural.mlops.server.console.events import ChangeFeed  # noqa: E402
from neural.mlops.server.storage.schema import experiment_unit_totals  # noqa: E402

pytestmark = pytest.mark.storage


def test_each_change_becomes_a_notice_of_its_topic(tmp_path: Path) -> None:
    async def run() -> list[list[dict[str, str]]]:
        db = await open_database(tmp_path)
        feed = ChangeFeed(db)
        try:
            assert await feed.poll() == []  # the first poll only reads where the store is
            async with db.change() as ch:
                ch.record(EventType.AB_TEST_STARTED, resource_type="ab_test",
                          resource_id="t-1", action="start")
                ch.record(EventType.MODEL_UPDATED, resource_type="model",
                          resource_id="churn:3", action="update")
                ch.record(EventType.AB_TEST_UPDATED, resource_type="ab_test",
                          resource_id="t-1", action="split")
            audited = await feed.poll()
            async with db.change(audited=False) as ch:  # recorded outcomes: no audit event
                await ch.conn.execute(sa.insert(experiment_unit_totals).values(
                    test_id="t-2", variant="control", stats="{}", updated_us=10**15))
            outcomes = await feed.poll()
            return [audited, outcomes, await feed.poll()]
        finally:
            await db.close()

    audited, outcomes, quiet = asyncio.run(run())
    assert audited[:2] == [{"topic": "experiments", "id": "t-1"},
                           {"topic": "registry", "id": "churn:3"}]  # t-1 once
    assert [c["topic"] for c in audited[2:]] == ["audit"] and int(audited[2]["id"]) >= 3
    assert outcomes == [{"topic": "experiments", "id": "t-2"}]
    assert quiet == []


def test_a_slow_listener_loses_notices_instead_of_blocking_the_feed(tmp_path: Path) -> None:
    async def run() -> int:
        db = await open_database(tmp_path)
        feed = ChangeFeed(db)
        try:
            queue = feed.subscribe()
            for i in range(1000):
                feed.publish({"topic": "audit", "id": str(i)})
            size = queue.qsize()
            feed.unsubscribe(queue)
            return size
        finally:
            await feed.stop()
            await db.close()

    assert asyncio.run(run()) == 256  # QUEUE_SIZE: the rest dropped, nothing waited
