"""The one storage layer: SQLAlchemy 2 Core, async, on aiosqlite (default) or asyncpg.

Writes go through :meth:`Database.change`, one transaction per state change. Audit
records collected during the change are appended to the hash chain inside the same
transaction, so a change whose event cannot be written does not happen.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import structlog
from alembic import command
from alembic.config import Config
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from neural.mlops.server.audit import hashchain
from neural.mlops.server.audit.events import AuditRecord, EventSeverity, EventType
from neural.mlops.server.clock import Clock, SystemClock, to_us
from neural.mlops.server.errors import FailedPrecondition
from neural.mlops.server.identity import CallContext, current_call

log = structlog.get_logger(__name__)

DB_FILENAME = "mlops.db"
MIGRATIONS = Path(__file__).parent / "migrations"

# PostgreSQL: transaction-scoped advisory lock keys. Every write transaction holds WRITE_LOCK
# (SQLite's single writer, BEGIN IMMEDIATE, across processes and replicas): a change reads
# and then writes under READ COMMITTED without another writer in between, and the audit
# chain head advances linearly. MIGRATE_LOCK keeps replicas starting together from
# migrating at once.
WRITE_LOCK = 0x6E6D6C7701
MIGRATE_LOCK = 0x6E6D6C7702
CONNECT_TIMEOUT_S = 5.0
COMMAND_TIMEOUT_S = 60.0


def sqlite_url(data_dir: str | Path) -> str:
    return f"sqlite+aiosqlite:///{Path(data_dir).resolve() / DB_FILENAME}"


class Change:
    """One write transaction. Domain code uses ``conn`` and calls :meth:`record`."""

    __slots__ = ("conn", "records", "audited", "after_commit", "events")

    def __init__(self, conn: AsyncConnection, audited: bool) -> None:
        self.conn = conn
        self.records: list[AuditRecord] = []
        self.audited = audited
        self.after_commit: list[Any] = []
        self.events: list[dict[str, Any]] = []  # the stored audit rows, after the chain append

    def record(
        self,
        event_type: EventType,
        *,
        resource_type: str,
        resource_id: str,
        action: str,
        details: dict[str, Any] | None = None,
        severity: EventSeverity = EventSeverity.INFO,
        actor: str | None = None,
    ) -> None:
        self.records.append(
            AuditRecord(
                event_type=event_type,
                resource_type=resource_type,
                resource_id=resource_id,
                action=action,
                details=details or {},
                severity=severity,
                actor=actor,
            )
        )

    def on_commit(self, callback: Any) -> None:
        """Run ``callback()`` after a successful commit (e.g. wake the routing table)."""
        self.after_commit.append(callback)


class Database:
    def __init__(self, engine: AsyncEngine, *, clock: Clock | None = None) -> None:
        self.engine = engine
        self.clock: Clock = clock or SystemClock()
        self.is_sqlite = engine.dialect.name == "sqlite"
        # SQLite has one writer; serialising in-process avoids busy-waiting on the file lock.
        self._write_lock = asyncio.Lock()
        # Set when the audit chain is found broken at start (audit/integrity.py): every
        # change is refused with this message until an operator acknowledges the break.
        self.writes_refused = ""
        # (callback, channel, payload): commit hooks other processes must run too.
        self._broadcasts: list[tuple[Any, str, str]] = []

    def broadcast(self, callback: Any, channel: str, payload: str = "") -> None:
        """On PostgreSQL, a change that registers ``callback`` with ``on_commit`` also sends
        ``NOTIFY channel, payload`` in its own transaction: delivered to the listening
        processes exactly when it commits (routing/notify.py). Nothing on SQLite."""
        if not self.is_sqlite:
            self._broadcasts.append((callback, channel, payload))

    @classmethod
    async def open(
        cls, url: str, *, clock: Clock | None = None, migrate: bool = True
    ) -> Database:
        kwargs: dict[str, Any] = {}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"timeout": 30}
        else:
            # A server that restarted or a connection cut by a network outage is found and
            # replaced before a call uses it; a connection never waits forever either.
            kwargs.update(pool_pre_ping=True, pool_recycle=1800, pool_timeout=10,
                          connect_args={"timeout": CONNECT_TIMEOUT_S,
                                        "command_timeout": COMMAND_TIMEOUT_S})
        engine = create_async_engine(url, **kwargs)
        if engine.dialect.name == "sqlite":
            _sqlite_tuning(engine)
        db = cls(engine, clock=clock)
        if migrate:
            await db.migrate()
        return db

    @classmethod
    async def open_dir(cls, data_dir: str | Path, **kwargs: Any) -> Database:
        Path(data_dir).mkdir(parents=True, exist_ok=True)
        # Created 0600 before SQLite follows the umask (0644); SQLite gives its -wal and
        # -shm files the database file's mode. An empty file is an empty database.
        with contextlib.suppress(FileExistsError):
            os.close(os.open(Path(data_dir) / DB_FILENAME, os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                             0o600))
        return await cls.open(sqlite_url(data_dir), **kwargs)

    async def migrate(self, *targets: str) -> None:
        """Apply the Alembic migrations the database has not seen, up to ``targets``
        (revisions; default: every head). A restore stops at the backup's revisions,
        loads its rows, then migrates on to the heads."""

        def run(sync_conn: sa.Connection) -> None:
            cfg = Config()
            cfg.set_main_option("script_location", str(MIGRATIONS))
            cfg.attributes["connection"] = sync_conn
            for target in targets or ("heads",):
                command.upgrade(cfg, target)

        async with self._write_lock, self.engine.begin() as conn:
            if not self.is_sqlite:
                await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(MIGRATE_LOCK)))
            await conn.run_sync(run)

    async def ping(self) -> None:
        """One round trip to the database; raises what :func:`is_outage` recognises when it
        cannot be reached."""
        async with self.engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))

    async def revisions(self) -> list[str]:
        """The Alembic revisions the database is at (none for a new database)."""
        async with self.read() as conn:
            has_table = await conn.run_sync(lambda c: sa.inspect(c).has_table("alembic_version"))
            if not has_table:
                return []
            rows = await conn.execute(sa.text("SELECT version_num FROM alembic_version"))
            return sorted(row[0] for row in rows)

    async def close(self) -> None:
        await self.engine.dispose()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read transaction: one consistent snapshot (WAL on SQLite, REPEATABLE READ on
        PostgreSQL, whose default gives each statement its own snapshot)."""
        async with self.engine.connect() as conn:
            if not self.is_sqlite:
                conn = await conn.execution_options(isolation_level="REPEATABLE READ",
                                                    postgresql_readonly=True)
            await conn.begin()
            try:
                yield conn
            finally:
                await conn.rollback()

    @asynccontextmanager
    async def change(self, *, audited: bool = True) -> AsyncIterator[Change]:
        """A write transaction. With ``audited`` (the default) the change must record at
        least one audit event; they are chained and committed together with it."""
        if self.writes_refused:
            raise FailedPrecondition(self.writes_refused, reason="CHAIN_BROKEN")
        async with self._write_lock:
            async with self.engine.connect() as conn:
                # READ COMMITTED whatever the server's default_transaction_isolation: under
                # REPEATABLE READ the snapshot would be taken by the lock statement before it
                # waits, and a change would read what was there before the writer it queued
                # behind (tests/test_layers_race.py).
                conn = await conn.execution_options(
                    neural_write=True,
                    **({} if self.is_sqlite else {"isolation_level": "READ COMMITTED"}))
                async with conn.begin():
                    if not self.is_sqlite:
                        await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(WRITE_LOCK)))
                    ch = Change(conn, audited)
                    yield ch
                    if audited:
                        if not ch.records:
                            raise RuntimeError("an audited change recorded no audit event")
                        ctx = current_call()
                        _mark_auth(ch.records, ctx)
                        ch.events = await hashchain.append(
                            conn, ch.records, ctx, to_us(self.clock.now())
                        )
                    for channel, payload in self._notices(ch):
                        await conn.execute(sa.select(sa.func.pg_notify(channel, payload)))
        for callback in ch.after_commit:
            callback()

    def _notices(self, ch: Change) -> set[tuple[str, str]]:
        return {(channel, payload) for callback, channel, payload in self._broadcasts
                if any(cb == callback for cb in ch.after_commit)}


# SQLSTATE classes of a database that cannot serve now: connection exceptions (08),
# shutdown or start-up in progress (57P01-57P03), too many connections (53300).
_OUTAGE_SQLSTATES = ("08", "57P01", "57P02", "57P03", "53300")


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` means the database cannot be reached now (the call may be retried)
    rather than a bug: what the gRPC layer answers with UNAVAILABLE."""
    if isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError | sa.exc.TimeoutError
                  | ConnectionError | TimeoutError):
        return True
    if isinstance(exc, sa.exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None) or ""
        return str(code).startswith(_OUTAGE_SQLSTATES)
    return False


def _mark_auth(records: list[AuditRecord], ctx: CallContext) -> None:
    """Record how a gRPC call authenticated in each event's ``details.auth`` (method and
    token id), replacing any value the caller supplied, so the compliance report can tell
    authenticated changes from declared ones. Calls not made over gRPC add nothing."""
    detail = ctx.auth_detail()
    if detail is None:
        return
    for rec in records:
        rec.details = {**rec.details, "auth": detail}
        rec.details_text = None


def _sqlite_tuning(engine: AsyncEngine) -> None:
    """WAL for concurrent readers, synchronous=FULL so an acknowledged commit survives
    power loss and kill -9, and BEGIN IMMEDIATE for writers (no lock-upgrade deadlocks
    between processes sharing the file)."""

    @sa.event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        # Up to 64 MiB of page cache (allocated as used; the default is 2 MiB): the audit
        # chain's indexes outgrow 2 MiB near 10^5 events and inserts then thrash.
        cur.execute("PRAGMA cache_size=-65536")
        cur.close()

    @sa.event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        write = conn.get_execution_options().get("neural_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
