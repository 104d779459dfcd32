"""What a console session in the database costs a request: the session store's operations
against one database round trip, on SQLite and PostgreSQL.

    python benchmarks/console_sessions.py            # ~1 minute per engine
    python benchmarks/console_sessions.py --smoke    # seconds (a test runs this)
    python benchmarks/console_sessions.py --postgres postgresql+asyncpg://USER@HOST/DB

In process, on a store holding ``--sessions`` live sessions (SQLite in a temporary
folder; PostgreSQL in the given database, or a fresh one on the local server when it
answers). Rows, per operation:

* ``floor``: a read transaction running ``SELECT 1`` (the least any lookup costs);
* ``unseal``: HKDF of the session id and AES-GCM decryption of its credential, no I/O;
* ``find``: what every console request does: the session row joined with its API token's
  row, the expiry checks, the decryption;
* ``find+touch``: the same when its last use is older than the touch interval (a write,
  at most once a minute per session);
* ``create``: a login (bounded sweep, the two caps, the insert).

Rounds are interleaved (the row order rotates every round) so drift on a shared machine
hits every row alike. Printed: per row the median time per operation over the rounds and
the median and range of the per-round ratios to ``floor``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from neural.mlops.server.clock import ManualClock, to_us  # noqa: E402
from neural.mlops.server.console.sessions import SessionStore, unseal  # noqa: E402
from neural.mlops.server.storage import Database, sqlite_url  # noqa: E402
from neural.mlops.server.storage.schema import console_sessions  # noqa: E402

BEARER = (("authorization", "Bearer nmo_0123456789abcdef_" + "s" * 43),)
ROWS = ("floor", "unseal", "find", "find+touch", "create")


async def _fill(store: SessionStore, n: int) -> list[str]:
    ids = []
    for i in range(n):
        ids.append((await store.create(f"user{i % 500}@x.com", "oidc", BEARER))[0])
    return ids


Op = Callable[[], Awaitable[None]]


async def _ops(db: Database, ids: list[str], sealed: dict[str, str]) -> dict[str, Op]:
    store = SessionStore(db, ttl_seconds=10**9, idle_seconds=10**9, max_per_subject=10**6)
    clock = db.clock
    assert isinstance(clock, ManualClock)

    async def floor() -> None:
        async with db.read() as conn:
            await conn.execute(sa.text("SELECT 1"))

    async def do_unseal() -> None:
        sid = random.choice(ids)
        assert unseal(sid, "s", "oidc", "", sealed[sid]) is not None

    async def find() -> None:
        assert (await store.find(random.choice(ids))).session is not None

    async def find_touch() -> None:
        clock.advance(61)  # past the touch interval: the lookup writes the last use
        assert (await store.find(random.choice(ids))).session is not None

    async def create() -> None:
        await store.create(f"new{random.randrange(500)}@x.com", "oidc", BEARER)

    return {"floor": floor, "unseal": do_unseal, "find": find, "find+touch": find_touch,
            "create": create}


async def _fresh(db: Database) -> None:
    """Every session used just now: a ``find`` round measures lookups, not touches."""
    now = to_us(db.clock.now())
    async with db.change(audited=False) as ch:
        await ch.conn.execute(console_sessions.update().values(seen_us=now))


async def _time(op: Op, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        await op()
    return (time.perf_counter() - start) / n * 1e6  # microseconds per operation


async def bench(url: str, sessions: int, rounds: int, per_round: int) -> dict[str, Any]:
    from neural.mlops.server.console.sessions import seal

    db = await Database.open(url, clock=ManualClock())
    try:
        store = SessionStore(db, ttl_seconds=10**9, idle_seconds=10**9,
                             max_per_subject=10**6)
        ids = await _fill(store, sessions)
        sealed = {sid: seal(sid, "s", "oidc", "", BEARER) for sid in ids}
        ops = await _ops(db, ids, sealed)
        times: dict[str, list[float]] = {name: [] for name in ROWS}
        for r in range(rounds):
            order = ROWS[r % len(ROWS):] + ROWS[:r % len(ROWS)]
            for name in order:
                if name == "find":
                    await _fresh(db)
                times[name].append(await _time(ops[name], per_round))
    finally:
        await db.close()
    out: dict[str, Any] = {}
    for name in ROWS:
        ratios = [t / f for t, f in zip(times[name], times["floor"], strict=True)]
        out[name] = {"median_us": statistics.median(times[name]),
                     "ratio": statistics.median(ratios), "ratio_min": min(ratios),
                     "ratio_max": max(ratios)}
    return out


def _postgres(given: str) -> str:
    if given:
        return given
    from support import databases

    pg = databases.postgres()
    if pg.reachable():
        return ""
    return pg.fresh()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="few sessions and rounds")
    parser.add_argument("--sessions", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--per-round", type=int, default=300)
    parser.add_argument("--postgres", default="", help="a PostgreSQL URL (default: a fresh "
                        "database on the local server, skipped when none answers)")
    args = parser.parse_args()
    if args.smoke:
        args.sessions, args.rounds, args.per_round = 50, 2, 10
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="console-sessions-bench-") as tmp:
        results["sqlite"] = asyncio.run(bench(sqlite_url(tmp), args.sessions, args.rounds,
                                              args.per_round))
    pg = _postgres(args.postgres)
    try:
        if pg:
            results["postgresql"] = asyncio.run(bench(pg, args.sessions, args.rounds,
                                                      args.per_round))
    finally:
        if pg and not args.postgres:
            from support import databases

            databases.postgres().drop_all()
    print(f"console session store, {args.sessions} sessions, {args.rounds} rounds x "
          f"{args.per_round} operations")
    print(f"{'engine':<11} {'operation':<11} {'median':>10} {'x floor':>8} {'range':>13}")
    for engine, rows in results.items():
        for name, row in rows.items():
            print(f"{engine:<11} {name:<11} {row['median_us']:>8.0f}us {row['ratio']:>7.2f}x "
                  f"{row['ratio_min']:>5.2f}-{row['ratio_max']:<5.2f}")
    if not pg:
        print("postgresql: skipped (no server answered)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
