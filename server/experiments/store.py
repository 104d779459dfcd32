"""The experiments table: every SQL statement of the domain, and rows read back as tests.

A test is one row. Its variants, analysis settings, QA overrides, split history and the
sequential state (running minimum p-values, intersected confidence sequences) are
JSON columns; ``running_us`` plus ``resumed_us`` (set while
RUNNING) give the time spent running. Traffic lives in :mod:`neural.mlops.server.traffic`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from neural.mlops.server.clock import from_us
from neural.mlops.server.errors import InvalidArgument, NotFound
from neural.mlops.server.experiments.bandit import BanditConfig
from neural.mlops.server.experiments.config import HOLM, SRM_THRESHOLD
from neural.mlops.server.experiments.guardrails import parse_guardrails
from neural.mlops.server.experiments.layers import default_layer
from neural.mlops.server.experiments.model import ABTest, SplitChange, TestStatus, Variant
from neural.mlops.server.experiments.model import TrafficSplitStrategy as Strategy
from neural.mlops.server.experiments.sequential import DEFAULT_TUNING
from neural.mlops.server.pagination import after_clause
from neural.mlops.server.storage.schema import experiments

Row = Any  # a SQLAlchemy row of the experiments table


def dump(obj: Any) -> str:
    """A JSON column's text (canonical, so equal values store equal text)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


async def load(conn: AsyncConnection, test_id: str, *, lock: bool = False) -> Row:
    """The test's row (``lock``: FOR UPDATE, for a change); NotFound if there is none."""
    if not isinstance(test_id, str) or not test_id:
        raise InvalidArgument("test_id is required", field="test_id")
    query = sa.select(experiments).where(experiments.c.test_id == test_id)
    if lock:
        query = query.with_for_update()
    row = (await conn.execute(query)).first()
    if row is None:
        raise NotFound(f"A/B test {test_id!r} not found")
    return row


async def insert(conn: AsyncConnection, **values: Any) -> None:
    await conn.execute(sa.insert(experiments).values(**values))


async def update(conn: AsyncConnection, test_id: str, **values: Any) -> None:
    await conn.execute(
        sa.update(experiments).where(experiments.c.test_id == test_id).values(**values)
    )


async def page(
    conn: AsyncConnection, status: TestStatus | None, after: tuple[int, str] | None, limit: int
) -> list[Row]:
    """Tests in creation order (``status``: only those), after the key ``after``
    (created_us, test_id) of the previous page's last test."""
    e = experiments.c
    query = sa.select(experiments).order_by(e.created_us, e.test_id)
    if status is not None:
        query = query.where(e.status == status.value)
    if after is not None:
        query = query.where(after_clause([e.created_us, e.test_id], after))
    return list((await conn.execute(query.limit(limit))).all())


async def running(conn: AsyncConnection) -> list[Row]:
    """RUNNING tests, oldest start first."""
    query = (
        sa.select(experiments)
        .where(experiments.c.status == TestStatus.RUNNING.value)
        .order_by(experiments.c.started_us, experiments.c.test_id)
    )
    return list((await conn.execute(query)).all())


async def live(conn: AsyncConnection) -> list[Row]:
    """RUNNING and PAUSED tests (they hold their layer ranges), oldest start first."""
    query = (
        sa.select(experiments)
        .where(experiments.c.status.in_([TestStatus.RUNNING.value, TestStatus.PAUSED.value]))
        .order_by(experiments.c.started_us, experiments.c.test_id)
    )
    return list((await conn.execute(query)).all())


def _layer_fields(row: Row, cfg: dict[str, Any]) -> dict[str, Any]:
    """A test's layer fields; tests from before layers ran in their model's own layer
    over all of it."""
    rng = cfg.get("range")
    if rng is None and row.started_us is not None:
        rng = (0.0, 1.0)
    return {"layer": cfg.get("layer") or default_layer(row.model_name),
            "layer_share": float(cfg.get("layer_share", 1.0)),
            "layer_range": (float(rng[0]), float(rng[1])) if rng is not None else None,
            "targeting": tuple(cfg.get("targeting", ()))}


def to_test(row: Row, now_us: int) -> ABTest:
    """The row as a test; ``running_seconds`` counts a RUNNING test's time up to ``now_us``."""
    cfg = json.loads(row.config)
    running_us = row.running_us + (
        now_us - row.resumed_us if row.status == TestStatus.RUNNING and row.resumed_us else 0
    )
    return ABTest(
        test_id=row.test_id,
        name=row.name,
        description=row.description,
        status=TestStatus(row.status),
        strategy=Strategy(row.strategy),
        variants=[
            Variant(d["name"], d["model_ref"], float(d["weight"])) for d in json.loads(row.variants)
        ],
        control=cfg["control"],
        model_name=row.model_name,
        created_by=row.created_by,
        created_at=from_us(row.created_us),
        started_at=from_us(row.started_us) if row.started_us is not None else None,
        ended_at=from_us(row.ended_us) if row.ended_us is not None else None,
        winner=row.winner,
        conclusion=row.conclusion,
        confidence_level=cfg["confidence_level"],
        minimum_detectable_effect=cfg["minimum_detectable_effect"],
        power=cfg["power"],
        decision_rule=cfg["decision_rule"],
        sequential_tau=cfg["sequential_tau"],
        forced_variants=json.loads(row.forced),
        split_history=[
            SplitChange(from_us(h["at_us"]), h["actor"], h["weights"], h["explicit"], h["reason"])
            for h in json.loads(row.split_history)
        ],
        running_seconds=max(running_us, 0) / 1e6,
        # Tests created before these settings keep their defaults (and their fixed tau).
        sequential_tuning=cfg.get("sequential_tuning", DEFAULT_TUNING),
        srm_threshold=cfg.get("srm_threshold", SRM_THRESHOLD),
        multiple_testing=cfg.get("multiple_testing", HOLM),
        prior_mean=cfg.get("prior_mean", 0.0),
        prior_sd=cfg.get("prior_sd", 0.0),
        guardrails=parse_guardrails(cfg.get("guardrails")),
        bandit=BanditConfig.from_dict(cfg.get("bandit")),
        **_layer_fields(row, cfg),
    )


def sequential_state(row: Row) -> dict[str, Any]:
    """The stored sequential state per variant, as JSON (read by
    :func:`.sequential.read_states`; the first format, a bare p-value, included)."""
    state: dict[str, Any] = json.loads(row.sequential_state or "{}")
    return state


def split_history(row: Row) -> list[dict[str, Any]]:
    """The stored split history (as :func:`to_test` reads it, before conversion)."""
    return list(json.loads(row.split_history))


async def merge_sequential_state(
    conn: AsyncConnection, test_id: str, merge: Callable[[dict[str, Any]], dict[str, Any]]
) -> None:
    """Replace the stored sequential state by ``merge(stored)``, the row locked, so that
    concurrent looks merge rather than overwrite each other."""
    row = await load(conn, test_id, lock=True)
    await update(conn, test_id, sequential_state=dump(merge(sequential_state(row))))
