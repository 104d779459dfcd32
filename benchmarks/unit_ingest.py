"""The control plane's per-unit ingest: CPU and wall per unit of a sidecar's breakdown.

One command::

    python benchmarks/unit_ingest.py            # 9 rounds x 4 windows of 500 units
    python benchmarks/unit_ingest.py --smoke    # 2 rounds x 1 window of 50 (the test runs it)

Each window is what a sidecar sends for an experiment route: a ``VariantWindow`` message
whose ``UnitBreakdown`` holds ``--units`` units (1-5 requests each, a latency sum, a custom
metric on every other unit). The measured path is the server's: the message converted
(``convert.variant_window_from_pb``, hence ``ingest.units_from_arrays``), the batch checked
(``ingest.check_batch``) and applied (``ingest.apply_batch``: dedup marker, traffic row,
``unitstore.apply``) on a real :class:`Database`, SQLite in a temporary folder and a fresh
PostgreSQL database on the local server (skipped when none answers).

Rows:

========= ==================================================================
fresh     every unit of every window is new (a fresh unit per request)
mixed     half the units of a window were counted by the window before
floor     the bare ``executemany`` INSERT of the same rows into
          ``experiment_units``, one transaction per window (no read, no totals)
========= ==================================================================

CPU is ``time.process_time`` of this process (SQLite works in-process; PostgreSQL's own
CPU is in its server processes and not counted), wall is ``perf_counter``; both per unit.
Rounds interleave the rows; the table gives the median over rounds, the spread (min-max)
and the ratio to the floor of the same round.
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

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parents[1] / "tests"))

import sqlalchemy as sa  # noqa: E402

from neural.mlops.server.routing import convert, ingest  # noqa: E402
from neural.mlops.server.storage import Database, sqlite_url  # noqa: E402
from neural.mlops.server.storage.schema import experiment_units  # noqa: E402
from neural.mlops.v1 import routing_pb2 as pb  # noqa: E402

ROWS = ("fresh", "mixed", "floor")
KNOWN = {f"exp-{name}": ingest.KnownRoute(frozenset({"a"}), frozenset(), "experiment")
         for name in ROWS}


class Traffic:
    """Windows of units: new keys, or half of them the previous window's."""

    def __init__(self, seed: int, returning: float) -> None:
        self.rng = random.Random(seed)
        self.returning = returning
        self.next_key = seed * 10**12
        self.last: list[int] = []

    def keys(self, n: int) -> list[int]:
        back = self.rng.sample(self.last, min(len(self.last), int(n * self.returning)))
        new = list(range(self.next_key, self.next_key + n - len(back)))
        self.next_key += len(new)
        self.last = back + new
        self.rng.shuffle(self.last)
        return list(self.last)

    def window(self, route_id: str, n: int, start_us: int) -> pb.VariantWindow:
        keys = self.keys(n)
        req = [self.rng.randint(1, 5) for _ in keys]
        err = [self.rng.randint(0, r) // 4 for r in req]
        lat = [r * self.rng.uniform(0.001, 0.05) for r in req]
        score_n = [r if i % 2 else 0 for i, r in enumerate(req)]
        score_s = [cn * self.rng.random() for cn in score_n]
        count, errors, lat_sum = sum(req), sum(err), sum(lat)
        w = pb.VariantWindow(route_id=route_id, variant="a", window_start_us=start_us,
                             window_us=1_000_000, count=count, errors=errors,
                             successes=count - errors, latency_buckets=[0, count],
                             latency_min_seconds=0.0005, latency_max_seconds=0.05)
        w.latency_seconds.n, w.latency_seconds.sum = count, lat_sum * 1.001
        w.latency_seconds.sum_squares = lat_sum * 0.05 * 1.001
        w.custom["score"].n, w.custom["score"].sum = sum(score_n), sum(score_s)
        w.custom["score"].sum_squares = sum(score_s)
        u = w.units
        u.keys.extend(keys)
        u.requests.extend(req)
        u.errors.extend(err)
        u.latency_seconds.extend(lat)
        u.custom["score"].n.extend(score_n)
        u.custom["score"].sum.extend(score_s)
        return w


async def _ingest(db: Database, w: pb.VariantWindow, seq: int) -> None:
    """What RoutingService.ingest does with one window's batch."""
    batch = ingest.MetricsBatch("bench-sidecar", seq, (convert.variant_window_from_pb(w),),
                                session="benchsession-0123456789")
    ingest.check_batch(batch, KNOWN)
    await ingest.apply_batch(db, batch, now_us=seq)


def _floor_rows(w: pb.VariantWindow) -> list[dict[str, Any]]:
    u = w.units
    return [{"test_id": w.route_id, "variant": "a", "unit_key": k, "requests": r,
             "successes": r - e, "errors": e, "latency_n": r, "latency_sum": s,
             "custom": "", "covariate": None}
            for k, r, e, s in zip(u.keys, u.requests, u.errors, u.latency_seconds,
                                  strict=True)]


async def _floor(db: Database, rows: list[dict[str, Any]]) -> None:
    async with db.change(audited=False) as ch:
        await ch.conn.execute(sa.insert(experiment_units), rows)


async def _timed(run: Callable[[], Awaitable[None]]) -> tuple[float, float]:
    c0, w0 = time.process_time(), time.perf_counter()
    await run()
    return time.process_time() - c0, time.perf_counter() - w0


async def bench(url: str, rounds: int, windows: int, units: int) -> dict[str, Any]:
    db = await Database.open(url)
    try:
        traffic = {"fresh": Traffic(1, 0.0), "mixed": Traffic(2, 0.5), "floor": Traffic(3, 0.0)}
        seq = 0
        cpu: dict[str, list[float]] = {r: [] for r in ROWS}
        wall: dict[str, list[float]] = {r: [] for r in ROWS}
        for rnd in range(rounds + 1):  # round 0 warms up (imports, statement caches)
            spent = {r: [0.0, 0.0] for r in ROWS}
            for _ in range(windows):
                for row in ROWS:
                    seq += 1
                    w = traffic[row].window(f"exp-{row}", units, seq * 1_000_000)
                    if row == "floor":
                        rows = _floor_rows(w)
                        c, s = await _timed(lambda rows=rows: _floor(db, rows))
                    else:
                        c, s = await _timed(lambda w=w, seq=seq: _ingest(db, w, seq))
                    spent[row][0] += c
                    spent[row][1] += s
            if rnd:
                for row in ROWS:
                    cpu[row].append(spent[row][0] / (windows * units) * 1e6)
                    wall[row].append(spent[row][1] / (windows * units) * 1e6)
        return {row: _summary(cpu[row], wall[row], cpu["floor"]) for row in ROWS}
    finally:
        await db.close()


def _summary(cpu: list[float], wall: list[float], floor: list[float]) -> dict[str, float]:
    ratios = [c / f for c, f in zip(cpu, floor, strict=True)]
    return {"cpu": statistics.median(cpu), "cpu_min": min(cpu), "cpu_max": max(cpu),
            "wall": statistics.median(wall), "ratio": statistics.median(ratios)}


def _postgres() -> str:
    from support import databases

    pg = databases.postgres()
    return "" if pg.reachable() else pg.fresh()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="2 rounds of one small window")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--windows", type=int, default=4, help="windows per row and round")
    parser.add_argument("--units", type=int, default=500, help="units per window")
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    if args.smoke:
        args.rounds, args.windows, args.units = 2, 1, 50
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="unit-ingest-bench-") as tmp:
        results["sqlite"] = asyncio.run(bench(sqlite_url(tmp), args.rounds, args.windows,
                                              args.units))
    pg = "" if args.no_postgres else _postgres()
    try:
        if pg:
            results["postgresql"] = asyncio.run(bench(pg, args.rounds, args.windows,
                                                      args.units))
    finally:
        if pg:
            from support import databases

            databases.postgres().drop_all()
    print(f"unit ingest: {args.rounds} rounds x {args.windows} windows x {args.units} units "
          "per row")
    print(f"{'engine':<11} {'row':<6} {'cpu/unit':>9} {'range':>13} {'x floor':>8} "
          f"{'wall/unit':>10}")
    for engine, rows in results.items():
        for name, r in rows.items():
            print(f"{engine:<11} {name:<6} {r['cpu']:>7.1f}us {r['cpu_min']:>6.1f}-"
                  f"{r['cpu_max']:<6.1f} {r['ratio']:>7.2f}x {r['wall']:>8.1f}us")
    if not pg:
        print("postgresql: skipped" + (" (--no-postgres)" if args.no_postgres
                                       else " (no server answered)"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
