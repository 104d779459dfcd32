"""Audit trail performance: ingest, query at scale, export, verification.

One command::

    python benchmarks/audit.py             # 10^6 events
    python benchmarks/audit.py --smoke     # 5,000 events, jobs in process (the test runs this)

Rows (medians of the repeats; every ratio is against a baseline measured in the same run):

=============== ==================================================== ==============================
row             measured                                             baseline
=============== ==================================================== ==============================
ingest embedded ``AuditLogger(dir).log_events`` batches of 1,000      ``log_event`` one at a time
ingest grpc     ``AuditLogger("grpc://...").log_events``, 1,000/call   ``log_event`` one call each
query type+time p50 of ``query_events(event_type=T, start, end)``,    the same SQL on SQLite with
                page of 100, at N events                              ``NOT INDEXED`` (table scan)
query user      p50 of ``query_events(user=U)``, page of 100          same, ``NOT INDEXED``
export jsonl    ``export_audit_trail`` of all N events (embedded,     raw ``sqlite3`` read of every
                and remote: written by the client), events/s          row (no rendering)
export RSS      peak RSS of the process exporting all N events        peak RSS of one exporting
                                                                      the first tenth of the time
verify store    ``verify_chain()`` events/s                           raw ``sqlite3`` read
verify file     offline ``verify_export`` of the jsonl file, events/s raw ``sqlite3`` read
=============== ==================================================== ==============================

The N events are generated through the domain's batch path (10,000 events per
transaction) with a manual clock moving 60 s per batch, 35 event types and 1,000 users.
Targets (issue #3): ingest >= 10k events/s, query p50 < 50 ms at 10^6, export >= 100k
events/s in constant memory.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parents[1] / "tests"))


def _quiet() -> None:
    from neural.mlops.server.logging import configure_logging

    configure_logging("warning")


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- child processes (peak RSS of one job each) ------------------------------------------


def job(mode: str, location: str, path: str = "", end_us: str = "") -> dict[str, Any]:
    from neural.mlops.audit import AuditLogger, verify_export
    from neural.mlops.server.clock import from_us

    logger = AuditLogger(location)
    t = time.perf_counter()
    count = 0
    if mode == "export":
        end = from_us(int(end_us)) if end_us else None
        count = logger.export_audit_trail(path, format="jsonl", end_date=end).count
    elif mode == "open":
        logger.query_events(limit=1)
    elif mode == "verify-file":
        count = verify_export(path).events_checked
    return {"seconds": time.perf_counter() - t, "count": count, "rss_mb": _maxrss_mb()}


def child(argv: list[str]) -> None:
    _quiet()
    print(json.dumps(job(*argv)))
    sys.stdout.flush()
    os._exit(0)  # skip the shutdown checkpoint: not part of the measurement


SMOKE = False


def run_child(*args: str) -> dict[str, Any]:
    """One job in a fresh process, so its peak RSS is its own (in-process in --smoke)."""
    if SMOKE:
        return job(*args)
    out = subprocess.run([sys.executable, str(HERE), "--child", *args], capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- generation ---------------------------------------------------------------------------


async def generate(data_dir: Path, n: int, batch: int) -> tuple[int, int, float]:
    """N events through the domain batch path; returns (first_us, last_us, events/s)."""
    from neural.mlops.server.audit.events import EventSeverity, EventType
    from neural.mlops.server.audit.service import EventInput
    from neural.mlops.server.clock import ManualClock, to_us
    from neural.mlops.server.services import Services

    clock = ManualClock()
    services = await Services.open(data_dir, clock=clock)
    rng = random.Random(7)
    types = list(EventType)
    sevs = list(EventSeverity)
    first = to_us(clock.now())
    t = time.perf_counter()
    done = 0
    while done < n:
        k = min(batch, n - done)
        items = [
            EventInput(types[rng.randrange(len(types))], "model", f"m{rng.randrange(500)}:v1",
                       "act", {"n": done + i, "note": "benchmark"}, sevs[rng.randrange(5)],
                       f"user{rng.randrange(1000)}@x.com")
            for i in range(k)
        ]
        await services.audit.log_events(items)
        done += k
        clock.advance(60)
    rate = n / (time.perf_counter() - t)
    last = to_us(clock.now())
    await services.audit.checkpoint("periodic")  # what the server's loop does meanwhile
    services.audit.checkpoint_interval = 0
    await services.db.close()
    return first, last, rate


# --- measurements -------------------------------------------------------------------------


def ingest(location: str, batches: int, batch: int, singles: int) -> tuple[float, float]:
    from neural.mlops.audit import AuditLogger, EventInput

    logger = AuditLogger(location)
    items = [EventInput("custom", "bench", str(i), "ingest", {"i": i}, user="bench@x.com")
             for i in range(batch)]
    t = time.perf_counter()
    for _ in range(batches):
        logger.log_events(items)
    batched = batches * batch / (time.perf_counter() - t)
    t = time.perf_counter()
    for i in range(singles):
        logger.log_event("custom", user="bench@x.com", resource_type="bench", resource_id=str(i))
    single = singles / (time.perf_counter() - t)
    logger.close()
    return batched, single


def query_p50(location: str, first_us: int, last_us: int, repeats: int) -> dict[str, float]:
    from neural.mlops.audit import AuditLogger, EventType
    from neural.mlops.server.clock import from_us

    logger = AuditLogger(location)
    rng = random.Random(11)
    types = list(EventType)
    span = last_us - first_us
    by_type, by_user = [], []
    for _ in range(repeats):
        start = first_us + rng.randrange(span // 2)
        end = start + span // 10
        etype = types[rng.randrange(len(types))]
        t = time.perf_counter()
        page = logger.query_events(
            event_type=etype, start_date=from_us(start), end_date=from_us(end), limit=100
        )
        by_type.append(time.perf_counter() - t)
        assert all(e.event_type == etype for e in page)
        user = f"user{rng.randrange(1000)}@x.com"
        t = time.perf_counter()
        page = logger.query_events(user=user, limit=100)
        by_user.append(time.perf_counter() - t)
        assert page and all(e.actor == user for e in page)
    return {"type": statistics.median(by_type), "user": statistics.median(by_user)}


def scan_p50(db: Path, first_us: int, last_us: int, repeats: int) -> dict[str, float]:
    from neural.mlops.server.audit.events import EventType

    conn = sqlite3.connect(db)
    rng = random.Random(11)
    types = list(EventType)
    span = last_us - first_us
    by_type, by_user = [], []
    for _ in range(repeats):
        start = first_us + rng.randrange(span // 2)
        end = start + span // 10
        etype = str(types[rng.randrange(len(types))])
        t = time.perf_counter()
        conn.execute(
            "SELECT * FROM audit_events NOT INDEXED WHERE event_type=? AND ts_us>=? AND "
            "ts_us<=? ORDER BY ts_us DESC, seq DESC LIMIT 101",
            (etype, start, end),
        ).fetchall()
        by_type.append(time.perf_counter() - t)
        user = f"user{rng.randrange(1000)}@x.com"
        t = time.perf_counter()
        conn.execute("SELECT * FROM audit_events NOT INDEXED WHERE actor=? ORDER BY ts_us DESC, "
                     "seq DESC LIMIT 101", (user,)).fetchall()
        by_user.append(time.perf_counter() - t)
    conn.close()
    return {"type": statistics.median(by_type), "user": statistics.median(by_user)}


def raw_read_rate(db: Path) -> float:
    conn = sqlite3.connect(db)
    t = time.perf_counter()
    n = 0
    cur = conn.execute("SELECT * FROM audit_events ORDER BY seq")
    while rows := cur.fetchmany(5000):
        n += len(rows)
    rate = n / (time.perf_counter() - t)
    conn.close()
    return rate


def verify_rate(location: str) -> tuple[float, int]:
    from neural.mlops.audit import AuditLogger

    logger = AuditLogger(location)
    t = time.perf_counter()
    result = logger.verify_chain()
    assert result.valid, result.reason
    return result.events_checked / (time.perf_counter() - t), result.events_checked


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny counts, a few seconds")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3, help="repeats of the ingest/export rows")
    args = parser.parse_args()
    _quiet()
    global SMOKE
    SMOKE = args.smoke
    n = 5_000 if args.smoke else args.events
    repeats = 1 if args.smoke else args.repeats
    qn = 5 if args.smoke else 50
    ingest_batches, singles = (2, 50) if args.smoke else (20, 1000)
    work = Path(tempfile.mkdtemp(prefix="audit-bench-"))
    rows: list[tuple[str, str, str, str]] = []

    def row(name: str, value: str, baseline: str, ratio: float) -> None:
        rows.append((name, value, baseline, f"{ratio:.2f}x"))

    try:
        from support.processes import start_server

        # Ingest, embedded and over gRPC (fresh stores, so N does not slow them down).
        emb = [
            ingest(str(work / f"ingest-emb-{r}"), ingest_batches, 1000, singles)
            for r in range(repeats)
        ]
        b, s = statistics.median(x[0] for x in emb), statistics.median(x[1] for x in emb)
        row("ingest embedded (events/s)", f"{b:,.0f}", f"{s:,.0f} single", b / s)
        srv = start_server(work / "ingest-server")
        try:
            rem = [ingest(srv.url, ingest_batches, 1000, singles) for _ in range(repeats)]
        finally:
            srv.stop()
        b, s = statistics.median(x[0] for x in rem), statistics.median(x[1] for x in rem)
        row("ingest grpc (events/s)", f"{b:,.0f}", f"{s:,.0f} single", b / s)

        # N events, then queries, export and verification at that size.
        store = work / "store"
        first_us, last_us, gen_rate = asyncio.run(generate(store, n, 10_000))
        row(f"generate {n:,} (events/s, domain batch)", f"{gen_rate:,.0f}", "-", 1.0)
        db = store / "mlops.db"
        q = query_p50(str(store), first_us, last_us, qn)
        scan = scan_p50(db, first_us, last_us, max(3, qn // 10))
        row(
            f"query type+time p50 @ {n:,}",
            f"{q['type'] * 1e3:.2f} ms",
            f"{scan['type'] * 1e3:.1f} ms scan",
            scan["type"] / q["type"],
        )
        row(
            f"query user p50 @ {n:,}",
            f"{q['user'] * 1e3:.2f} ms",
            f"{scan['user'] * 1e3:.1f} ms scan",
            scan["user"] / q["user"],
        )
        raw = raw_read_rate(db)
        exports = [
            run_child("export", str(store), str(work / f"export-{r}.jsonl")) for r in range(repeats)
        ]
        # Constant memory: exporting all N events peaks no higher than exporting a tenth.
        tenth = run_child("export", str(store), str(work / "export-tenth.jsonl"),
                          str(first_us + (last_us - first_us) // 10))
        exp_rate = statistics.median(e["count"] / e["seconds"] for e in exports)
        exp_rss = statistics.median(e["rss_mb"] for e in exports)
        row(
            "export jsonl embedded (events/s)",
            f"{exp_rate:,.0f}",
            f"{raw:,.0f} raw read",
            exp_rate / raw,
        )
        row(f"export peak RSS (MB), {n:,} events", f"{exp_rss:.0f}",
            f"{tenth['rss_mb']:.0f} for {tenth['count']:,}", exp_rss / tenth["rss_mb"])
        srv = start_server(work / "store")
        try:
            remote = [
                run_child("export", srv.url, str(work / f"export-remote-{r}.jsonl"))
                for r in range(repeats)
            ]
        finally:
            srv.stop()
        rem_rate = statistics.median(e["count"] / e["seconds"] for e in remote)
        rem_rss = statistics.median(e["rss_mb"] for e in remote)
        row(
            "export jsonl grpc (events/s)",
            f"{rem_rate:,.0f}",
            f"{raw:,.0f} raw read",
            rem_rate / raw,
        )
        row("export grpc client peak RSS (MB)", f"{rem_rss:.0f}",
            f"{tenth['rss_mb']:.0f} embedded, {tenth['count']:,}", rem_rss / tenth["rss_mb"])
        v_rate, checked = verify_rate(str(store))
        row(
            f"verify store (events/s, {checked:,})",
            f"{v_rate:,.0f}",
            f"{raw:,.0f} raw read",
            v_rate / raw,
        )
        vf = run_child("verify-file", str(store), str(work / "export-0.jsonl"))
        vf_rate = vf["count"] / vf["seconds"]
        row(
            "verify file offline (events/s)",
            f"{vf_rate:,.0f}",
            f"{raw:,.0f} raw read",
            vf_rate / raw,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)

    headers = ("row", "median", "baseline", "ratio")
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    print("  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)))
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
