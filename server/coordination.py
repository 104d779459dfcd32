"""Leases: the one replica that runs a background worker which must act alone (the rollout
controller, the periodic audit checkpoints).

On PostgreSQL a lease is a session advisory lock (``pg_try_advisory_lock``) taken on a
connection of its own and held for as long as this replica leads. The lock lives exactly
as long as that connection: a replica killed with ``kill -9`` closes its socket, the
server ends the session at once and the lock is free; the replicas that wait try again
every :data:`RETRY_S` seconds, so one of them takes over within about a second. The holder
checks its connection every :data:`CHECK_S` seconds and stops its worker as soon as the
connection is gone (a database restart, a network cut): after that it cannot know whether
another replica leads.

Between the moment the database drops a holder's session and the moment the holder
notices, two replicas may act at once. That is safe because every decision is applied
with a compare-and-set on the revision it was judged on
(:mod:`~neural.mlops.server.deployments.transitions`): a step is taken once or not at all.

On SQLite one process serves the store, so :class:`Lease` runs its worker at once and
for good: today's behaviour.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Coroutine
from typing import Any

import structlog

from neural.mlops.server.background import Background
from neural.mlops.server.storage import Database
from neural.mlops.server.storage.database import CONNECT_TIMEOUT_S

log = structlog.get_logger(__name__)

# Session advisory lock keys, one per worker; the transaction locks of
# storage/database.py (WRITE_LOCK, MIGRATE_LOCK) share the key space and stay below these.
LEASE_KEYS = {
    "rollout-controller": 0x6E6D6C7710,
    "audit-checkpoints": 0x6E6D6C7711,
    "bandit-weights": 0x6E6D6C7720,  # multi-armed bandit reweighting (experiments)
}
RETRY_S = 0.5  # how often a waiting replica tries to take a free lease
CHECK_S = 1.0  # how often the holder checks that its session (and so the lock) is alive
MAX_BACKOFF_S = 5.0  # between reconnection attempts while the database is unreachable
APPLICATION_NAME = "neural-mlops lease {name} pid={pid}"


def session_dsn(db: Database) -> str:
    """A libpq-style DSN for a connection of our own beside ``db``'s pool (asyncpg's own
    connect, not SQLAlchemy's: a session that must stay one session)."""
    return db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


async def connect_session(db: Database, application_name: str) -> Any:
    """A dedicated asyncpg connection to ``db``'s server, named so that an operator (and the
    tests) can tell from ``pg_stat_activity`` which process holds what."""
    import asyncpg

    return await asyncpg.connect(
        session_dsn(db), timeout=CONNECT_TIMEOUT_S,
        server_settings={"application_name": application_name[:63]},
    )


async def close_session(conn: Any) -> None:
    """Close a dedicated connection; one whose server is gone is dropped without waiting."""
    if conn is None:
        return
    try:
        await asyncio.wait_for(conn.close(), CHECK_S)
    except Exception:  # noqa: BLE001 - a dead connection cannot be closed politely
        conn.terminate()


class Lease:
    """Run ``work()`` only while this process holds the lease ``name``.

    :meth:`start` begins contending in the background; :meth:`stop` cancels the worker and
    gives the lease up. ``held`` says whether this process leads now."""

    def __init__(self, db: Database, name: str, work: Callable[[], Coroutine[Any, Any, None]], *,
                 retry: float = RETRY_S, check: float = CHECK_S) -> None:
        self.db = db
        self.name = name
        self.key = LEASE_KEYS[name]
        self.work = work
        self.retry = retry
        self.check = check
        self.held = False
        self._loop = Background(f"lease-{name}")

    def start(self) -> None:
        self._loop.start(self._run)

    async def stop(self) -> None:
        await self._loop.stop()

    async def _run(self) -> None:
        if self.db.is_sqlite:
            self.held = True
            try:
                await self.work()
            finally:
                self.held = False
            return
        backoff = self.retry
        name = APPLICATION_NAME.format(name=self.name, pid=os.getpid())
        while True:
            conn = None
            try:
                conn = await connect_session(self.db, name)
                backoff = self.retry
                while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", self.key,
                                              timeout=self.check * 5):
                    await asyncio.sleep(self.retry)
                await self._lead(conn)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - an outage or a worker's crash: retry
                log.warning("lease lost or not reachable", lease=self.name,
                            error=f"{type(exc).__name__}: {exc}")
            finally:
                await close_session(conn)  # ends the session: the lock is free for the others
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_S)

    async def _lead(self, conn: Any) -> None:
        """Run the worker until the session fails (raises) or the worker ends."""
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: lost.set())
        self.held = True
        log.info("lease acquired", lease=self.name)
        worker = asyncio.get_running_loop().create_task(self.work(), name=self.name)
        try:
            while not worker.done():
                await asyncio.wait([worker], timeout=self.check)
                if worker.done():
                    break
                if lost.is_set():
                    raise ConnectionError("the lease's database session ended")
                await conn.fetchval("SELECT 1", timeout=self.check * 2)
            worker.result()  # a crash is logged by the caller, then the lease is retried
        finally:
            self.held = False
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await worker
            log.info("lease released", lease=self.name)


# Who holds a lease: its session's application_name names the process (APPLICATION_NAME).
# A bigint advisory key is stored as classid (high 32 bits) and objid (low 32 bits).
_HOLDER_SQL = """
SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.classid = $1::bigint::oid AND l.objid = $2::bigint::oid
"""


async def lease_holder(conn: Any, name: str) -> int | None:
    """The process id of the replica holding lease ``name`` (``None``: nobody now), asked
    on an asyncpg connection to the store's database (operators, tests, benchmarks)."""
    key = LEASE_KEYS[name]
    app = await conn.fetchval(_HOLDER_SQL, key >> 32, key & 0xFFFFFFFF)
    if app is None:
        return None
    _, _, pid = str(app).rpartition("pid=")
    return int(pid) if pid.isdigit() else None
