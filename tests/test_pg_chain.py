"""Several writers on one database (each its own engine and connections, as separate
processes or replicas would be) keep ONE linear audit chain: the chain head is taken in
the writing transaction, so no two changes chain onto the same predecessor. Runs on the
engine under test (SQLite: BEGIN IMMEDIATE; PostgreSQL: the write lock and the head row)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import sqlalchemy as sa
from support.databases import open_database

from neural.mlops.server.audit.events import EventType
from neural.mlops.server.audit.hashchain import EVENT_FIELDS, GENESIS, event_hash
from neural.mlops.server.storage.schema import audit_chain_head, audit_events

WRITERS = 5
CHANGES = 20


async def test_concurrent_writers_on_one_database_keep_one_linear_chain(tmp_path: Path) -> None:
    dbs = [await open_database(tmp_path / "store") for _ in range(WRITERS)]

    async def writer(n: int) -> None:
        for i in range(CHANGES):
            async with dbs[n].change() as ch:
                # Two events per change: a batch is chained contiguously too.
                for part in ("a", "b"):
                    ch.record(EventType.MODEL_UPDATED, resource_type="model",
                              resource_id=f"w{n}:{i}{part}", action="update")

    try:
        await asyncio.gather(*(writer(n) for n in range(WRITERS)))
        async with dbs[0].read() as conn:
            rows = [dict(r) for r in (await conn.execute(
                sa.select(*(audit_events.c[f] for f in EVENT_FIELDS)).order_by(
                    audit_events.c.seq))).mappings()]
            head = (await conn.execute(sa.select(audit_chain_head))).one()
    finally:
        for db in dbs:
            await db.close()

    total = WRITERS * CHANGES * 2
    assert [r["seq"] for r in rows] == list(range(1, total + 1))
    prev = GENESIS
    for row in rows:
        assert row["prev_hash"] == prev, f"fork at seq {row['seq']}"
        assert event_hash({**row, "details": json.loads(row["details"])}) == row["hash"]
        prev = row["hash"]
    assert (head.seq, head.hash) == (total, prev)
    written = {r["resource_id"] for r in rows}
    assert written == {f"w{n}:{i}{p}" for n in range(WRITERS) for i in range(CHANGES)
                       for p in "ab"}
    # A change's events stay adjacent: no other writer interleaves inside a transaction.
    for a, b in zip(rows[::2], rows[1::2], strict=True):
        assert (a["resource_id"][:-1], a["resource_id"][-1], b["resource_id"][-1]) == (
            b["resource_id"][:-1], "a", "b")
