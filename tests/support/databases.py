"""Which engine the storage-touching tests run on, and a fresh database per test.

SQLite (a file in the store's data dir) is the default. With
``NEURAL_MLOPS_TEST_DATABASE_URL=postgresql+asyncpg://USER@HOST:PORT/DB`` set, every store a
test opens through this module (servers from :func:`support.processes.start_server`,
:func:`open_database`, :func:`open_services`, :func:`cli_store_args`) lives in its own
PostgreSQL database instead, created from a migrated template and dropped when the test
ends. One data dir maps to one database for the whole test, so a test that restarts a
server on the same data dir finds its rows again.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.engine import make_url

ENV = "NEURAL_MLOPS_TEST_DATABASE_URL"
# Tests that need PostgreSQL whatever the engine under test (store migration, outages)
# use the test URL's server, else this one (the development and CI machines' own).
LOCAL_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
T = TypeVar("T")

# Every database a test session creates starts with this prefix and the session's pid, so a
# later session can drop what a killed one left behind.
PREFIX = "nmtest_"


def test_database_url() -> str:
    return os.environ.get(ENV, "").strip()


def on_postgres() -> bool:
    return test_database_url().startswith("postgresql")


def _run(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine on a private loop: callers may be sync code inside a running loop."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()  # type: ignore[arg-type]


class PostgresDatabases:
    """Creates and drops the test databases on one PostgreSQL server."""

    def __init__(self, url: str) -> None:
        self.base = make_url(url)
        self.template = f"{PREFIX}{os.getpid()}_template"
        self.by_dir: dict[Path, str] = {}
        self.created: list[str] = []
        self._counter = 0
        self._guard = threading.Lock()
        self._template_ready = False
        self._unreachable: str | None = None

    def url(self, database: str) -> str:
        return self.base.set(database=database).render_as_string(hide_password=False)

    async def _admin(self, *statements: str) -> list[Any]:
        import asyncpg

        u = self.base
        conn = await asyncpg.connect(host=u.host or "127.0.0.1", port=u.port or 5432,
                                     user=u.username, password=u.password,
                                     database=u.database or "postgres", timeout=10)
        try:
            out = []
            for sql in statements:
                out.append(await conn.fetch(sql))
            return out
        finally:
            await conn.close()

    def reachable(self) -> str:
        """"" when the server answers, else why not (asked once per session)."""
        if self._unreachable is None:
            try:
                _run(lambda: self._admin("SELECT 1"))
                self._unreachable = ""
            except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
                self._unreachable = f"{type(exc).__name__}: {exc}"
        return self._unreachable

    def _ensure_template(self) -> None:
        if self._template_ready:
            return
        self._drop_orphans()
        _run(lambda: self._admin(f'DROP DATABASE IF EXISTS "{self.template}" WITH (FORCE)',
                                 f'CREATE DATABASE "{self.template}"'))

        async def migrate() -> None:
            from neural.mlops.server.storage import Database

            db = await Database.open(self.url(self.template))
            await db.close()

        _run(migrate)
        self._template_ready = True

    def _drop_orphans(self) -> None:
        """Drop databases left by test sessions that no longer run."""
        rows = _run(lambda: self._admin(
            f"SELECT datname FROM pg_database WHERE datname LIKE '{PREFIX}%'"))[0]
        for row in rows:
            pid = row["datname"][len(PREFIX):].split("_", 1)[0]
            if pid.isdigit() and not _alive(int(pid)):
                self._drop(row["datname"])

    def for_dir(self, data_dir: Path) -> str:
        key = Path(data_dir).resolve()
        with self._guard:
            name = self.by_dir.get(key)
            if name is None:
                self._ensure_template()
                self._counter += 1
                name = f"{PREFIX}{os.getpid()}_{self._counter}"
                _run(lambda: self._admin(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"'))
                self.by_dir[key] = name
                self.created.append(name)
        return self.url(name)

    def fresh(self) -> str:
        """A new empty database (not migrated), dropped with the test's others."""
        with self._guard:
            self._counter += 1
            name = f"{PREFIX}{os.getpid()}_{self._counter}"
            _run(lambda: self._admin(f'CREATE DATABASE "{name}"'))
            self.created.append(name)
        return self.url(name)

    def mark(self) -> int:
        return len(self.created)

    def drop_since(self, mark: int, test_dir: Path | None) -> None:
        """Drop the databases created since ``mark`` that belong to the test: fresh ones
        and those of data dirs under ``test_dir`` (its tmp_path). A module's server on a
        ``tmp_path_factory`` dir keeps its database until the session ends."""
        owned = {v: k for k, v in self.by_dir.items()}
        with self._guard:
            names = [
                name for name in self.created[mark:]
                if name not in owned or (test_dir is not None
                                         and owned[name].is_relative_to(test_dir.resolve()))
            ]
            self.created = [name for name in self.created if name not in names]
            for name in names:
                self.by_dir.pop(owned.get(name, Path("/nonexistent")), None)
        for name in names:
            self._drop(name)

    def drop_all(self) -> None:
        with self._guard:
            names, self.created = self.created, []
            self.by_dir.clear()
        for name in names:
            self._drop(name)
        if self._template_ready:
            self._drop(self.template)

    def _drop(self, name: str) -> None:
        _run(lambda: self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_postgres: PostgresDatabases | None = None


def postgres() -> PostgresDatabases:
    global _postgres
    if _postgres is None:
        url = test_database_url()
        _postgres = PostgresDatabases(url if url.startswith("postgresql") else LOCAL_POSTGRES)
    return _postgres


def reachable_postgres(*, only_in_storage_half: bool = False) -> PostgresDatabases:
    """PostgreSQL for a test that needs it itself; outside CI a missing server skips the
    test with one line, in CI it fails it. ``only_in_storage_half``: in CI, run only in the
    PostgreSQL half (``pytest -m storage``), not again in the SQLite one."""
    import pytest

    if only_in_storage_half and os.environ.get("CI") and not on_postgres():
        pytest.skip("runs in the PostgreSQL half of CI (pytest -m storage)")
    pg = postgres()
    why = pg.reachable()
    if why:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL unreachable in CI: {why}")
        pytest.skip(f"no PostgreSQL reachable ({why})")
    return pg


def database_url_for(data_dir: Path) -> str:
    """The ``--database-url`` for a store in ``data_dir``: "" (SQLite there) by default."""
    return postgres().for_dir(data_dir) if on_postgres() else ""


def store_args(data_dir: Path) -> list[str]:
    """CLI arguments that open the store of ``data_dir`` on the engine under test."""
    url = database_url_for(data_dir)
    return ["--data-dir", str(data_dir), *(["--database-url", url] if url else [])]


async def open_database(data_dir: Path, **kwargs: Any) -> Any:
    """``Database`` for a store in ``data_dir`` on the engine under test."""
    from neural.mlops.server.storage import Database

    url = database_url_for(data_dir)
    if url:
        return await Database.open(url, **kwargs)
    return await Database.open_dir(data_dir, **kwargs)


async def open_services(data_dir: Path, **kwargs: Any) -> Any:
    """``Services`` for a store in ``data_dir`` on the engine under test."""
    from neural.mlops.server.services import Services

    return await Services.open(data_dir, database_url=database_url_for(data_dir), **kwargs)


Statement = str | tuple[str, tuple[Any, ...]]


def execute_sql(data_dir: Path, *statements: Statement) -> list[list[tuple[Any, ...]]]:
    """Run raw SQL on the store of ``data_dir`` (a test that inspects or tampers with rows
    behind the server's back), in one committed transaction; one list of row tuples per
    statement. A statement is SQL or ``(SQL, parameters)`` with ``?`` placeholders."""
    steps = [(st, ()) if isinstance(st, str) else st for st in statements]
    url = database_url_for(data_dir)
    if not url:
        import sqlite3

        from neural.mlops.server.storage.database import DB_FILENAME

        conn = sqlite3.connect(Path(data_dir) / DB_FILENAME)
        try:
            with conn:
                return [conn.execute(sql, params).fetchall() for sql, params in steps]
        finally:
            conn.close()

    async def run() -> list[list[tuple[Any, ...]]]:
        import asyncpg

        u = make_url(url)
        conn = await asyncpg.connect(host=u.host or "127.0.0.1", port=u.port or 5432,
                                     user=u.username, password=u.password, database=u.database)
        try:
            out = []
            async with conn.transaction():
                for sql, params in steps:
                    out.append([tuple(r) for r in await conn.fetch(_numbered(sql), *params)])
            return out
        finally:
            await conn.close()

    return _run(run)


def _numbered(sql: str) -> str:
    """``?`` placeholders as PostgreSQL's ``$1, $2, ...``."""
    parts = sql.split("?")
    return parts[0] + "".join(f"${n}{part}" for n, part in enumerate(parts[1:], 1))
