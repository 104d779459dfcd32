"""The bandit weight history: one row per reweighting of a multi-armed bandit test.

Rows are numbered per test from 1; the number is part of the primary key, so two replicas
that computed the same reweighting cannot both store it (the second insert fails and its
transaction, with its weight change, rolls back).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from neural.mlops.server.clock import from_us
from neural.mlops.server.experiments.bandit import Reweighting
from neural.mlops.server.storage.schema import experiment_bandit_weights as table

MAX_HISTORY = 10_000  # rows returned to an analysis (the most recent)


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One stored reweighting."""

    sequence: int
    at: datetime
    weights: dict[str, float]
    p_best: dict[str, float]
    observations: dict[str, int]
    means: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {"sequence": self.sequence, "at": self.at.isoformat(),
                "weights": dict(self.weights), "p_best": dict(self.p_best),
                "observations": dict(self.observations), "posterior_means": dict(self.means)}


def _dump(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


async def append(conn: AsyncConnection, test_id: str, at_us: int, r: Reweighting) -> None:
    details = {"p_best": r.p_best, "observations": r.observations, "means": r.means,
               "expected_gap": r.expected_gap}
    await conn.execute(sa.insert(table).values(
        test_id=test_id, seq=r.sequence, at_us=at_us, weights=_dump(r.weights),
        details=_dump(details)))


async def last(conn: AsyncConnection, test_id: str) -> tuple[int, int]:
    """(sequence, at_us) of the latest reweighting; (0, 0) when there was none."""
    row = (await conn.execute(
        sa.select(table.c.seq, table.c.at_us).where(table.c.test_id == test_id)
        .order_by(table.c.seq.desc()).limit(1))).first()
    return (int(row.seq), int(row.at_us)) if row is not None else (0, 0)


async def history(conn: AsyncConnection, test_id: str) -> list[HistoryEntry]:
    """The reweightings in order (at most the latest :data:`MAX_HISTORY`)."""
    rows = (await conn.execute(
        sa.select(table).where(table.c.test_id == test_id)
        .order_by(table.c.seq.desc()).limit(MAX_HISTORY))).all()
    out = []
    for row in reversed(rows):
        d = json.loads(row.details)
        out.append(HistoryEntry(int(row.seq), from_us(row.at_us), json.loads(row.weights),
                                d["p_best"], d["observations"], d["means"]))
    return out
