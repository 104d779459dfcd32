"""Per-unit counts in SQL, and the per-variant unit totals kept from them.

``experiment_units`` has one row per (test, variant, unit key) with the unit's running
:class:`~neural.mlops.v1.units.UnitCounts` and its covariate; ``experiment_unit_totals``
one row per (test, variant) with the :class:`~.unitstats.UnitTotals` over those units.
:func:`apply` adds a batch of per-unit counts: it reads the touched units' rows, moves
the totals by the differences (:meth:`UnitTotals.move_many`: :meth:`UnitTotals.move` of
each unit, bit for bit, a metric at a time) and writes both, inside the
caller's transaction, so the totals always equal an aggregate over the rows (reading
them is one row per variant whatever the number of units).

Cost: one row per unit and variant (about 100 bytes in SQLite with its primary key;
``benchmarks/abtest.py`` prints the measured size per 10^6 units) and, per batch, one
read and one write per touched unit; about 25 us of control-plane CPU per unit of a
sidecar window, 3.2-4.5x the bare INSERT of its rows (``benchmarks/unit_ingest.py``).
Covariates (:func:`set_covariates`) may arrive
before or after a unit's first request.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection

from neural.mlops.server.experiments.unitstats import UnitTotals
from neural.mlops.server.storage.schema import (
    experiment_covariates,
    experiment_unit_totals,
    experiment_units,
)
from neural.mlops.v1.units import UnitCounts

_KEYS = ARRAY(sa.BigInteger)
CHUNK = 500  # keys per IN (...) query: under SQLite's and PostgreSQL's parameter limits

__all__ = ["apply", "covariates", "set_covariates", "totals"]


# json.dumps with options builds an encoder per call; one shared encoder, the same text.
_ENCODE = json.JSONEncoder(sort_keys=True, separators=(",", ":"), allow_nan=False).encode


def _dump(obj: Any) -> str:
    return _ENCODE(obj)


def _chunks(keys: list[int]) -> Iterable[list[int]]:
    for i in range(0, len(keys), CHUNK):
        yield keys[i : i + CHUNK]


def _among(conn: AsyncConnection, column: Any, keys: list[int]) -> Any:
    """``column IN (keys)``; on PostgreSQL ``= ANY(array)``, one parameter rather than
    one per key (benchmarks/unit_ingest.py: about 3 us less CPU per unit)."""
    if conn.dialect.name == "postgresql":
        return column == sa.any_(sa.bindparam(None, keys, type_=_KEYS))
    return column.in_(keys)


def _counts(row: Any) -> UnitCounts:
    custom = json.loads(row.custom) if row.custom else {}
    return UnitCounts(row.requests, row.successes, row.errors, row.latency_n, row.latency_sum,
                      {k: [int(n), float(s)] for k, (n, s) in custom.items()})


def _values(c: UnitCounts) -> dict[str, Any]:
    custom = _ENCODE({k: [int(n), float(s)] for k, (n, s) in c.custom.items()}) if (
        c.custom) else ""
    return {"requests": c.requests, "successes": c.successes, "errors": c.errors,
            "latency_n": c.latency_n, "latency_sum": c.latency_sum, "custom": custom}


async def _load_totals(conn: AsyncConnection, test_id: str, variant: str) -> UnitTotals | None:
    t = experiment_unit_totals
    row = (await conn.execute(
        sa.select(t.c.stats).where(t.c.test_id == test_id, t.c.variant == variant)
        .with_for_update()
    )).first()
    return UnitTotals.from_dict(json.loads(row.stats)) if row is not None else None


async def _save_totals(conn: AsyncConnection, test_id: str, variant: str, totals: UnitTotals,
                       existed: bool, now_us: int) -> None:
    t = experiment_unit_totals
    stats = _dump(totals.to_dict())
    if existed:
        await conn.execute(sa.update(t).where(t.c.test_id == test_id, t.c.variant == variant)
                           .values(stats=stats, updated_us=now_us))
    else:
        await conn.execute(sa.insert(t).values(test_id=test_id, variant=variant, stats=stats,
                                               updated_us=now_us))


async def _custom_plans(conn: AsyncConnection) -> None:
    """On PostgreSQL, plan the rest of the transaction's queries for their parameters. The
    generic plan a prepared ``unit_key IN (...)`` gets from its sixth run on filters, while
    the table is young (not yet analyzed), every unit of the test instead of looking the
    keys up in the index: a scan per window that grows with the test (benchmarks/
    unit_ingest.py: 168 -> 56 us of wall per fresh unit)."""
    if conn.dialect.name == "postgresql":
        await conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_custom_plan")


async def covariates(conn: AsyncConnection, test_id: str, keys: list[int]) -> dict[int, float]:
    """The stored covariates of ``keys`` (units without one are absent)."""
    t = experiment_covariates
    out: dict[int, float] = {}
    await _custom_plans(conn)
    for chunk in _chunks(keys):
        for row in await conn.execute(sa.select(t.c.unit_key, t.c.value).where(
                t.c.test_id == test_id, _among(conn, t.c.unit_key, chunk))):
            out[int(row.unit_key)] = float(row.value)
    return out


async def _stored(conn: AsyncConnection, test_id: str, variant: str,
                  keys: list[int]) -> dict[int, tuple[UnitCounts, float | None]]:
    """The counts and covariate of those of ``keys`` already counted in ``variant``."""
    u = experiment_units
    cols = (u.c.unit_key, u.c.requests, u.c.successes, u.c.errors, u.c.latency_n,
            u.c.latency_sum, u.c.custom, u.c.covariate)
    old: dict[int, tuple[UnitCounts, float | None]] = {}
    await _custom_plans(conn)
    for chunk in _chunks(keys):
        query = sa.select(*cols).where(u.c.test_id == test_id, u.c.variant == variant,
                                       _among(conn, u.c.unit_key, chunk))
        for row in await conn.execute(query):
            old[int(row.unit_key)] = (_counts(row), row.covariate)
    return old


async def _any_covariate(conn: AsyncConnection, test_id: str) -> bool:
    t = experiment_covariates
    return (await conn.execute(sa.select(t.c.unit_key).where(t.c.test_id == test_id)
                               .limit(1))).first() is not None


async def apply(conn: AsyncConnection, test_id: str,
                parts: Mapping[str, Mapping[int, UnitCounts]], *, now_us: int = 0) -> None:
    """Add per-unit counts (variant -> unit key -> counts) to the rows and the totals."""
    u = experiment_units
    has_covariates: bool | None = None
    for variant, units in parts.items():
        if not units:
            continue
        keys = list(units)
        old = await _stored(conn, test_id, variant, keys)
        fresh = [k for k in keys if k not in old]
        if fresh and has_covariates is None:
            has_covariates = await _any_covariate(conn, test_id)
        cov = await covariates(conn, test_id, fresh) if fresh and has_covariates else {}
        stored = await _load_totals(conn, test_id, variant)
        totals = stored or UnitTotals()
        befores: list[UnitCounts | None] = []
        afters: list[UnitCounts] = []
        covs: list[float | None] = []
        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        for key, add in units.items():
            before = old.get(key)
            if before is None:
                c = cov.get(key)
                befores.append(None)
                afters.append(add)
                covs.append(c)
                row = _values(add)
                row.update(test_id=test_id, variant=variant, unit_key=key, covariate=c)
                inserts.append(row)
            else:
                new = before[0] + add
                befores.append(before[0])
                afters.append(new)
                covs.append(before[1])
                row = _values(new)
                row["k"] = key
                updates.append(row)
        totals.move_many(befores, afters, covs)
        if inserts:
            await conn.execute(sa.insert(u), inserts)
        if updates:
            await conn.execute(
                sa.update(u)
                .where(u.c.test_id == test_id, u.c.variant == variant,
                       u.c.unit_key == sa.bindparam("k")),
                updates,  # SET takes the columns named in the parameters
            )
        await _save_totals(conn, test_id, variant, totals, stored is not None, now_us)


async def totals(conn: AsyncConnection, test_id: str) -> dict[str, UnitTotals]:
    """Per variant, the totals over its units (empty when no request named a unit)."""
    t = experiment_unit_totals
    rows = await conn.execute(sa.select(t.c.variant, t.c.stats).where(t.c.test_id == test_id))
    return {row.variant: UnitTotals.from_dict(json.loads(row.stats)) for row in rows}


async def set_covariates(conn: AsyncConnection, test_id: str, values: Mapping[int, float], *,
                         now_us: int = 0) -> int:
    """Store covariates by unit key (replacing earlier ones); units already counted move
    their variant's totals. Returns how many of them were already counted."""
    c = experiment_covariates
    u = experiment_units
    keys = list(values)
    existing = await covariates(conn, test_id, keys)
    fresh = [{"test_id": test_id, "unit_key": k, "value": values[k]} for k in keys
             if k not in existing]
    if fresh:
        await conn.execute(sa.insert(c), fresh)
    changed = [{"k": k, "value": values[k]} for k in keys if k in existing]
    if changed:
        await conn.execute(
            sa.update(c).where(c.c.test_id == test_id, c.c.unit_key == sa.bindparam("k")),
            changed)
    counted: dict[str, list[tuple[int, UnitCounts, float | None]]] = {}
    for chunk in _chunks(keys):
        for row in await conn.execute(sa.select(u).where(u.c.test_id == test_id,
                                                         _among(conn, u.c.unit_key, chunk))):
            counted.setdefault(row.variant, []).append(
                (int(row.unit_key), _counts(row), row.covariate))
    moved = 0
    for variant, rows in counted.items():
        stored = await _load_totals(conn, test_id, variant)
        tot = stored or UnitTotals()
        for key, counts, before in rows:
            tot.recovariate(counts, before, values[key])
            moved += 1
        await conn.execute(
            sa.update(u).where(u.c.test_id == test_id, u.c.variant == variant,
                               u.c.unit_key == sa.bindparam("k")),
            [{"k": k, "covariate": values[k]} for k, _, _ in rows])
        await _save_totals(conn, test_id, variant, tot, stored is not None, now_us)
    return moved
