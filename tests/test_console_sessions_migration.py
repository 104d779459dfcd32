"""Migration 0015_console_sessions up and down on SQLite and on PostgreSQL: the table and
its indexes (and the pending OIDC logins' table) appear at the head, go away on a
downgrade to 0014_bandit_weights (the other branches untouched), and come back."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from support import databases

from neural.mlops.server.storage import Database, sqlite_url
from neural.mlops.server.storage.database import MIGRATIONS

pytestmark = pytest.mark.storage

INDEXES = {"ix_console_sessions_subject_seen", "ix_console_sessions_expires",
           "ix_console_sessions_seen"}


def _url(engine: str, tmp_path: Path) -> str:
    if engine == "sqlite":
        return sqlite_url(tmp_path)
    pg = databases.reachable_postgres(only_in_storage_half=True)
    return pg.fresh()


async def _step(db: Database, action: str, target: str) -> tuple[set[str], set[str], list[str]]:
    """Run ``alembic upgrade|downgrade target``; (tables, console index names, revisions)."""

    def run(conn: sa.Connection) -> tuple[set[str], set[str]]:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["connection"] = conn
        getattr(command, action)(cfg, target)
        inspector = sa.inspect(conn)
        tables = set(inspector.get_table_names())
        indexes = {i["name"] for i in inspector.get_indexes("console_sessions")} \
            if "console_sessions" in tables else set()
        return tables, {str(name) for name in indexes}

    async with db.engine.begin() as conn:
        tables, indexes = await conn.run_sync(run)
    return tables, indexes, await db.revisions()


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_0015_upgrades_and_downgrades(engine: str, tmp_path: Path) -> None:
    url = _url(engine, tmp_path)

    async def run() -> None:
        db = await Database.open(url, migrate=False)
        try:
            tables, indexes, revisions = await _step(db, "upgrade", "heads")
            assert {"console_sessions", "console_oidc_logins"} <= tables
            assert indexes == INDEXES and "0015_console_sessions" in revisions
            tables, indexes, revisions = await _step(db, "downgrade", "0014_bandit_weights")
            assert not {"console_sessions", "console_oidc_logins"} & tables
            assert {"experiment_bandit_weights", "api_tokens", "audit_events"} <= tables
            assert "0014_bandit_weights" in revisions and "0015_console_sessions" not in revisions
            assert len(revisions) > 1  # the other branches stay at their heads
            tables, indexes, revisions = await _step(db, "upgrade", "heads")
            assert {"console_sessions", "console_oidc_logins"} <= tables
            assert indexes == INDEXES
            async with db.engine.begin() as conn:  # the table takes a row
                await conn.execute(sa.text(
                    "INSERT INTO console_sessions VALUES ('k', 'a@x.com', 'token', 't', 'c', "
                    "1, 2, 1)"))
                assert await conn.scalar(sa.text("SELECT COUNT(*) FROM console_sessions")) == 1
        finally:
            await db.close()

    asyncio.run(run())
