"""Control-plane replicas on PostgreSQL, side by side with SQLite.

One command::

    python benchmarks/replicas.py          # 10 s per throughput cell, 50 fan-outs, 10 kills
    python benchmarks/replicas.py --smoke  # 0.5 s, 5 fan-outs, 2 kills (the tests run this)

Rows (all in one run, real ``serve`` processes on loopback):

================ ================================================================
row              measured
================ ================================================================
registry ops/s   ``register_model`` + ``get_model_version`` pairs (2 ops each) from
                 4 client threads through one ``grpc://`` location (the three
                 addresses for three replicas: round robin), per second
audit events/s   ``AuditLogger.log_events`` batches of 100 from 4 client threads
route fan-out    a shadow deployment created through replica 1 -> the moment the
                 WatchRoutes stream of EVERY replica delivered the new table
                 (p50, p99 over the trials; the safety poll is 5 s)
takeover         ``kill -9`` of the replica holding the rollout-controller lease ->
                 the moment another replica's session holds it (``pg_locks``);
                 p50 and max over the trials, the killed replica restarted after each
================ ================================================================

PostgreSQL is the machine's (``NEURAL_MLOPS_TEST_DATABASE_URL`` or 127.0.0.1:5432); each
topology gets a fresh database, dropped at the end. The numbers come from a shared
2-core machine: compare the columns of one run, not runs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from support import databases  # noqa: E402
from support.processes import ServerProcess, start_server  # noqa: E402
from test_replicas import TableWatch, query, wait_for  # noqa: E402

from neural.mlops.audit import AuditLogger  # noqa: E402
from neural.mlops.deployment import DeploymentManager  # noqa: E402
from neural.mlops.registry import ModelRegistry  # noqa: E402
from neural.mlops.server.coordination import lease_holder  # noqa: E402

THREADS = 4


def _rate(location: str, seconds: float, op: Callable[[object, int, int], int],
          make: Callable[[str], object]) -> float:
    """Operations per second of ``op(client, thread, i)`` (returns its op count) from
    THREADS threads, each with its own client, for ``seconds`` (and until THREADS operations
    were counted) after a warm-up of up to a second."""
    counts = [0] * THREADS
    stop = threading.Event()

    def run(t: int) -> None:
        client, i = make(location), 0
        while not stop.is_set():
            i += 1
            counts[t] += op(client, t, i)

    threads = [threading.Thread(target=run, args=(t,)) for t in range(THREADS)]
    for th in threads:
        th.start()
    time.sleep(min(1.0, seconds))  # warm-up: channels connected, first statements prepared
    before, t0 = sum(counts), time.perf_counter()
    time.sleep(seconds)
    while sum(counts) - before < THREADS and time.perf_counter() - t0 < 60:
        time.sleep(0.05)  # a short (smoke) window on a busy machine: a few operations at least
    done, elapsed = sum(counts) - before, time.perf_counter() - t0
    stop.set()
    for th in threads:
        th.join()
    return done / elapsed


def _registry_op(client: object, t: int, i: int) -> int:
    assert isinstance(client, ModelRegistry)
    client.register_model(name=f"bench-{t}", version=str(i), created_by="bench@x.com")
    client.get_model_version(f"bench-{t}", str(i))
    return 2


def _audit_op(client: object, t: int, i: int) -> int:
    assert isinstance(client, AuditLogger)
    client.log_events([{"event_type": "model_registered", "user": f"u{t}",
                        "resource_type": "model", "resource_id": f"r{i}-{k}",
                        "action": "bench"} for k in range(100)])
    return 100


def throughput(location: str, seconds: float) -> tuple[float, float]:
    ops = _rate(location, seconds, _registry_op, ModelRegistry)
    events = _rate(location, seconds, _audit_op, AuditLogger)
    return ops, events


def fan_out(replicas: list[ServerProcess], trials: int) -> list[float]:
    writer = replicas[0]
    registry = ModelRegistry(writer.url)
    for version in ("1", "2"):
        registry.register_model(name="fanout", version=version, created_by="bench@x.com")
    manager = DeploymentManager(writer.url)
    watches = [TableWatch(r.address) for r in replicas]
    delays = []
    try:
        for w in watches:
            wait_for(lambda w=w: w.tables, 10, "no first table")
        for i in range(trials):
            before = [w.version() for w in watches]
            start = time.monotonic()
            shadow = manager.shadow_deploy("fanout:1", "fanout:2",
                                           traffic_percentage=1.0 + i % 90,
                                           created_by="bench@x.com")
            arrivals = []
            for w, old in zip(watches, before, strict=True):
                wait_for(lambda w=w, old=old: w.version() > old, 10, "no fan-out")
                arrivals.append(next(t for t, table in w.tables if table.version > old))
            delays.append(max(arrivals) - start)
            manager.stop_shadow(shadow.shadow_id, "bench@x.com")
            for w in watches:  # the stop reached every replica before the next trial
                wait_for(lambda w=w: w.version() >= max(x.version() for x in watches), 10,
                         "no fan-out of the stop")
    finally:
        for w in watches:
            w.close()
    return delays


def takeover(replicas: list[ServerProcess], url: str, trials: int) -> list[float]:
    def holder() -> int | None:
        return query(url, lambda conn: lease_holder(conn, "rollout-controller"))

    times = []
    for _ in range(trials):
        by_pid = {r.proc.pid: r for r in replicas}
        wait_for(lambda p=by_pid: holder() in p, 30, "no leader", every=0.05)
        leader = by_pid[holder()]  # type: ignore[index]
        start = time.monotonic()
        leader.kill9()
        wait_for(lambda old=leader.proc.pid: holder() not in (None, old), 30, "no takeover",
                 every=0.01)
        times.append(time.monotonic() - start)
        replicas[replicas.index(leader)] = start_server(
            leader.data_dir, "--database-url", url, listen=leader.address)
    return times


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="a short run (the tests)")
    args = parser.parse_args()
    seconds, fanouts, kills = (0.5, 5, 2) if args.smoke else (10.0, 50, 10)
    pg = databases.postgres()
    why = pg.reachable()
    if why:
        print(f"PostgreSQL unreachable ({why}): nothing measured", file=sys.stderr)
        return 2
    from neural.mlops.server.logging import configure_logging

    configure_logging("warning")
    results: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory(prefix="nm-bench-replicas-") as tmp:
        base = Path(tmp)
        servers: list[ServerProcess] = []
        try:
            sqlite = start_server(base / "sqlite", "--database-url", "")
            servers.append(sqlite)
            results["sqlite"] = throughput(sqlite.url, seconds)
            sqlite.stop()

            url1 = pg.for_dir(base / "pg1")
            one = start_server(base / "pg1", "--database-url", url1)
            servers.append(one)
            results["pg 1 replica"] = throughput(one.url, seconds)
            one.stop()

            url3 = pg.for_dir(base / "pg3")
            three = [start_server(base / "pg3", "--database-url", url3)]  # migrates it
            servers += three
            with ThreadPoolExecutor(2) as pool:  # then the other two at once
                more = [pool.submit(start_server, base / "pg3", "--database-url", url3)
                        for _ in range(2)]
            servers += [f.result() for f in more if f.exception() is None]
            three += [f.result() for f in more]  # raises if one did not start
            location = "grpc://" + ",".join(r.address for r in three)
            results["pg 3 replicas"] = throughput(location, seconds)
            delays = fan_out(three, fanouts)
            took = takeover(three, url3, kills)
            servers += three
        finally:
            for s in servers:
                s.stop()
            pg.drop_all()
    cols = list(results)
    print(f"{'row':<26}" + "".join(f"{c:>16}" for c in cols))
    print(f"{'registry ops/s':<26}" + "".join(f"{results[c][0]:>16.0f}" for c in cols))
    print(f"{'audit events/s':<26}" + "".join(f"{results[c][1]:>16.0f}" for c in cols))
    print(f"{'route fan-out, 3 rep.':<26}p50 {statistics.median(delays) * 1e3:.0f} ms, "
          f"p99 {_pct(delays, 0.99) * 1e3:.0f} ms ({len(delays)} trials)")
    print(f"{'takeover after kill -9':<26}p50 {statistics.median(took) * 1e3:.0f} ms, "
          f"max {max(took) * 1e3:.0f} ms ({len(took)} trials)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
