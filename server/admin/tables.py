"""Every table's rows, engine-neutral: what a store copy and a backup move.

Tables come from the schema's metadata in foreign-key order (parents first), so rows
inserted in that order never point at a missing parent. A database with a table the
schema does not know (or without one it knows) is refused: copying it would silently
drop data.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from neural.mlops.server.errors import FailedPrecondition
from neural.mlops.server.storage.schema import audit_chain_head, metadata

BATCH = 2000
ALEMBIC_TABLE = "alembic_version"


def tables() -> list[sa.Table]:
    """Every table of the schema, parents before children."""
    return list(metadata.sorted_tables)


async def check_schema(conn: AsyncConnection) -> None:
    """Refuse a database whose tables are not exactly the schema's."""
    names = await conn.run_sync(lambda c: set(sa.inspect(c).get_table_names()))
    known = {t.name for t in tables()}
    unknown = sorted(names - known - {ALEMBIC_TABLE})
    missing = sorted(known - names)
    if unknown or missing:
        raise FailedPrecondition(
            "the store's tables differ from this version's schema "
            f"(unknown: {', '.join(unknown) or '-'}; missing: {', '.join(missing) or '-'}); "
            "use the neural-mlops version that wrote it", field="database")


async def batches(conn: AsyncConnection, table: sa.Table) -> AsyncIterator[list[dict[str, Any]]]:
    """The rows of ``table`` in primary-key order, ``BATCH`` at a time (streamed)."""
    order = list(table.primary_key.columns) or list(table.columns)
    result = await conn.stream(sa.select(table).order_by(*order))
    async for part in result.mappings().partitions(BATCH):
        yield [dict(row) for row in part]


async def ensure_empty(conn: AsyncConnection, what: str) -> None:
    """Refuse a store holding anything but what the migrations seed (the chain head at
    the genesis)."""
    for table in tables():
        if table is audit_chain_head:
            seq = await conn.scalar(sa.select(sa.func.max(audit_chain_head.c.seq)))
            if seq:
                raise FailedPrecondition(f"{what} is not empty (its audit chain has {seq} "
                                         "events); use a new database", field="database")
            continue
        if await conn.scalar(sa.select(sa.literal(1)).select_from(table).limit(1)):
            raise FailedPrecondition(f"{what} is not empty (table {table.name} has rows); "
                                     "use a new database", field="database")


async def clear_seeded(conn: AsyncConnection) -> None:
    """Remove the rows the migrations seeded; the copied rows replace them."""
    await conn.execute(audit_chain_head.delete())


async def insert(conn: AsyncConnection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(table.insert(), rows)


async def reset_sequences(conn: AsyncConnection) -> None:
    """PostgreSQL: move each serial column's sequence past the copied ids (explicit ids
    do not advance it, and the next insert would collide)."""
    if conn.dialect.name != "postgresql":
        return
    for table in tables():
        pk = list(table.primary_key.columns)
        if len(pk) != 1 or not isinstance(pk[0].type, sa.Integer):
            continue
        col = pk[0]
        seq = await conn.scalar(sa.select(sa.func.pg_get_serial_sequence(table.name, col.name)))
        if seq:
            top = sa.select(sa.func.coalesce(sa.func.max(col), 0)).scalar_subquery()
            await conn.execute(sa.select(sa.func.setval(seq, top + 1, False)))


def to_json(table: sa.Table, row: dict[str, Any]) -> dict[str, Any]:
    """A row as JSON-ready values (binary columns as base64)."""
    return {k: base64.b64encode(v).decode() if isinstance(v, bytes | memoryview) else v
            for k, v in row.items()}


def from_json(table: sa.Table, row: dict[str, Any]) -> dict[str, Any]:
    """The inverse of :func:`to_json`, by the column types; unknown columns refused."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if key not in table.c:
            raise FailedPrecondition(f"the backup's table {table.name} has a column {key!r} "
                                     "this schema does not", field="input")
        binary = isinstance(table.c[key].type, sa.LargeBinary)
        out[key] = base64.b64decode(value) if binary and value is not None else value
    return out
