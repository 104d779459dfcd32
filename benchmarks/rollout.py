"""Rollout control: rollback reaction time with real sidecars, and controller cycle time.

One command::

    python benchmarks/rollout.py          # 20 trials, 1 and 10 sidecars, 1,000 deployments
    python benchmarks/rollout.py --smoke  # 1 trial, 1 sidecar, 20 deployments (the tests run this)

Rows (each ratio against a baseline measured in the same run):

================== ============================================== ================================
row                measured                                       baseline
================== ============================================== ================================
reaction N sc      a bad metric batch (10 % errors on the canary) manual ``rollback`` call to the
                   is sent over the real ``ReportMetrics``        moment every sidecar applied the
                   stream -> the controller's health check ->     table without the canary
                   rollback -> routing table -> the moment every  (routing propagation alone): the
                   one of N sidecars reports the new table (its   ratio is the price of automatic
                   /healthz)                                      detection at a 1 s analysis
                                                                  interval
cycle 1,000        ``DeploymentService.reconcile`` with 1,000     the same with 1 active deployment
                   active canaries, all due (stored metrics per   (ratio / 1,000 = per-deployment
                   canary and stable, hold decisions)             cost relative to a lone
                                                                  deployment)
================== ============================================== ================================

The control plane, the demo model server and the sidecars are real processes on loopback.
The bad batch comes from a metric reporter client (what a sidecar's aggregator sends),
so the clock starts at a known instant; the target is < 2 s at a 1 s analysis interval.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import grpc  # noqa: E402

from neural.mlops.v1 import routing_pb2, routing_pb2_grpc  # noqa: E402


def _version(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
        import json

        return int(json.loads(r.read())["table_version"])


def _wait_all_above(ports: list[int], version: int, timeout: float = 30.0) -> float:
    """Poll every sidecar until each applied a table newer than ``version``; the time the
    last one did (monotonic)."""
    done: list[float] = [0.0] * len(ports)

    def poll(i: int, port: int) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if _version(port) > version:
                done[i] = time.monotonic()
                return
            time.sleep(0.005)
        raise TimeoutError(f"sidecar on :{port} never moved past table {version}")

    with ThreadPoolExecutor(len(ports)) as pool:
        list(pool.map(lambda a: poll(*a), enumerate(ports)))
    return max(done)


def _wait_all_at_least(ports: list[int], version: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(_version(p) >= version for p in ports):
            return
        time.sleep(0.01)
    raise TimeoutError("sidecars never reached the canary's table")


def _table_with(channel: grpc.Channel, route_id: str, timeout: float = 30.0) -> int:
    """Version of the first routing table that carries ``route_id``."""
    stub = routing_pb2_grpc.RoutingServiceStub(channel)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        table = stub.GetRoutingTable(routing_pb2.GetRoutingTableRequest(), timeout=10)
        if any(r.route_id == route_id for r in table.routes):
            return int(table.version)
        time.sleep(0.01)
    raise TimeoutError(f"route {route_id} never reached the routing table")


def _bad_batch(route_id: str, n: int = 1000, errors: int = 100) -> routing_pb2.MetricsBatch:
    now_us = int(time.time() * 1e6)
    window = routing_pb2.VariantWindow(
        route_id=route_id,
        variant="canary",
        model_name="m",
        window_start_us=now_us,
        window_us=1_000_000,
        count=n,
        errors=errors,
        successes=n - errors,
        latency_seconds=routing_pb2.Moments(n=n, sum=0.03 * n, sum_squares=0.0009 * n),
    )
    return routing_pb2.MetricsBatch(sidecar_id=f"bench-{uuid.uuid4().hex[:8]}", sequence=1,
                                    created_us=now_us, windows=[window])


def _report(channel: grpc.Channel, batch: routing_pb2.MetricsBatch) -> None:
    stub = routing_pb2_grpc.RoutingServiceStub(channel)
    for ack in stub.ReportMetrics(iter([batch]), timeout=10):
        assert ack.sequence == batch.sequence
        return


def reaction_trials(n_sidecars: int, trials: int, workdir: Path) -> tuple[list[float], list[float]]:
    from peers.procs import start_demo, start_sidecar
    from support.processes import start_server

    from neural.mlops.deployment import DeploymentManager, PerformanceMetrics, RollbackConfig
    from neural.mlops.registry import ModelRegistry

    server = start_server(workdir / f"cp-{n_sidecars}")
    demo = start_demo("m")
    with ThreadPoolExecutor(min(n_sidecars, 4)) as pool:
        sidecars = list(
            pool.map(
                lambda _: start_sidecar(demo.address, server.address, "--flush-interval", "1"),
                range(n_sidecars),
            )
        )
    ports = [s.metrics_port for s in sidecars]
    manager = DeploymentManager(server.url)
    registry = ModelRegistry(server.url)
    for k in range(
        2 * trials + 1
    ):  # the gate needs registered versions (deployed with an override)
        registry.register_model(
            name="m", version=f"v{k + 1}", artifact_uri=f"s3://m/{k}", created_by="bench@x.com"
        )
    channel = grpc.insecure_channel(server.address)
    auto: list[float] = []
    manual: list[float] = []
    try:
        for trial in range(2 * trials):
            automatic = trial % 2 == 0
            dep = manager.create_deployment(
                "m",
                f"v{trial + 2}",
                created_by="bench@x.com",
                stable_version="v1",
                baseline_metrics=PerformanceMetrics(latency_p95=0.05),
                rollback_config=RollbackConfig(
                    error_rate_threshold=0.01, min_requests_before_check=100
                ),
                step_duration_seconds=3600,
                analysis_interval_seconds=1.0,
                override_reason="benchmark",
            )
            canary_table = _table_with(channel, dep.deployment_id)
            _wait_all_at_least(ports, canary_table)
            time.sleep(
                0.3 + 0.7 * (trial % 7) / 7
            )  # spread the start over the controller's interval
            t0 = time.monotonic()
            if automatic:
                _report(channel, _bad_batch(dep.deployment_id))
            else:
                manager.rollback(dep.deployment_id, "bench@x.com", "baseline")
            t1 = _wait_all_above(ports, canary_table)
            (auto if automatic else manual).append(t1 - t0)
            if automatic:
                got = manager.get_deployment(dep.deployment_id)
                assert got.status.value == "rolled_back", (got.status, got.last_check, canary_table,
                                                           [_version(p) for p in ports])
    finally:
        channel.close()
        for s in sidecars:
            s.stop()
        demo.stop()
        server.stop()
    return auto, manual


async def _cycle(n: int, workdir: Path, repeats: int) -> list[float]:
    from neural.mlops.server import traffic
    from neural.mlops.server.clock import ManualClock, to_us
    from neural.mlops.server.deployments.model import PerformanceMetrics, RollbackConfig
    from neural.mlops.server.deployments.service import CreateSpec
    from neural.mlops.server.services import Services
    from neural.mlops.v1.traffic import VariantStats

    clock = ManualClock()
    s = await Services.open(workdir / f"cycle-{n}", clock=clock)
    try:
        ids = []
        for i in range(n):
            d = await s.deployments.create_deployment(
                CreateSpec(
                    f"model-{i}",
                    "v2",
                    created_by="bench@x.com",
                    baseline_metrics=PerformanceMetrics(latency_p95=0.05),
                    rollback_config=RollbackConfig(min_requests_before_check=100),
                    step_duration_seconds=3600,
                    analysis_interval_seconds=1.0,
                    stable_version="v1",
                ),
                use_local_gate=False,
            )
            ids.append(d.deployment_id)
        vs = VariantStats()
        for j in range(500):
            vs.observe(latency=0.02 + (j % 50) / 1000, error=j % 200 == 0, success=j % 200 != 0)
        async with s.db.change(audited=False) as ch:
            for dep_id in ids:
                for variant in ("canary", "stable"):
                    await traffic.apply(
                        ch.conn, dep_id, variant, traffic.window_start(to_us(clock.now())), vs
                    )
        times = []
        for _ in range(repeats):
            clock.advance(1.0)
            t0 = time.perf_counter()
            counts = await s.deployments.reconcile()
            times.append(time.perf_counter() - t0)
            assert counts == {"hold": n}, counts
        return times
    finally:
        await s.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny run for the test suite")
    parser.add_argument("--trials", type=int, default=20)
    args = parser.parse_args()
    from neural.mlops.server.logging import configure_logging

    configure_logging("warning")
    trials = 1 if args.smoke else args.trials
    fleet = [1] if args.smoke else [1, 10]
    n_cycle = 20 if args.smoke else 1000
    repeats = 3 if args.smoke else 7
    rows: list[tuple[str, str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="rollout-bench-") as tmp:
        work = Path(tmp)
        for n in fleet:
            auto, manual = reaction_trials(n, trials, work)
            p50, mx = statistics.median(auto), max(auto)
            base = statistics.median(manual)
            rows.append(
                (
                    f"reaction {n} sidecar{'s' if n > 1 else ''}",
                    f"p50 {p50 * 1000:.0f} ms, max {mx * 1000:.0f} ms "
                    f"({len(auto)} trial{'s' * (len(auto) != 1)})",
                    f"manual rollback p50 {base * 1000:.0f} ms, max {max(manual) * 1000:.0f} ms",
                    f"{p50 / base:.1f}x",
                )
            )
        lone = asyncio.run(_cycle(1, work, repeats))
        many = asyncio.run(_cycle(n_cycle, work, repeats))
        m1, mn = statistics.median(lone), statistics.median(many)
        rows.append(
            (
                f"cycle {n_cycle:,} active",
                f"{mn * 1000:.1f} ms per cycle ({mn / n_cycle * 1e6:.0f} us each)",
                f"1 active: {m1 * 1000:.2f} ms",
                f"{mn / m1:.0f}x ({mn / m1 / n_cycle:.2f}x per deployment)",
            )
        )
    widths = [
        max(len(r[i]) for r in [("row", "measured (median)", "baseline", "ratio"), *rows])
        for i in range(4)
    ]
    header = ("row", "measured (median)", "baseline", "ratio")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
    return 0


if __name__ == "__main__":
    threading.stack_size(4 * 1024 * 1024)
    sys.exit(main())
