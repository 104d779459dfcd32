"""The sidecar and its control plane: fail-static serving, exactly-once metrics, SIGTERM drain."""

from __future__ import annotations

import asyncio
import signal
import sys
import threading
import time
from pathlib import Path

import grpc

sys.path.insert(0, str(Path(__file__).parent))

from peers.procs import (  # noqa: E402
    Proc,
    free_port,
    start_all,
    start_control_plane,
    start_demo,
    start_sidecar,
    write_routes,
)
from support.databases import execute_sql  # noqa: E402
from test_sidecar_routing import EXPERIMENT, infer_stub, request  # noqa: E402


def _counted(data_dir: Path, route_id: str) -> dict[str, int]:
    (rows,) = execute_sql(data_dir, (
        "SELECT variant, count FROM traffic_windows WHERE route_id = ? AND window_start_us = -1",
        (route_id,),
    ))
    return dict(rows)


def _wait(predicate, timeout: float, what: str) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise TimeoutError(what)


class Traffic:
    """Closed-loop ModelInfer calls on a background thread until stopped."""

    def __init__(self, address: str, concurrency: int = 8) -> None:
        self.address = address
        self.concurrency = concurrency
        self.ok = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _run(self) -> None:
        async with grpc.aio.insecure_channel(self.address) as ch:
            stub = infer_stub(ch)
            req = request()

            async def worker(w: int) -> None:
                i = 0
                while not self._stop.is_set():
                    i += 1
                    try:
                        await stub(req, metadata=(("x-user-id", f"w{w}-{i}"),), timeout=10)
                        self.ok += 1
                    except grpc.aio.AioRpcError as exc:
                        self.failures.append(exc.code().name)

            await asyncio.gather(*(worker(w) for w in range(self.concurrency)))

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)


def test_killing_the_control_plane_fails_no_call_and_every_call_is_counted_once(
    tmp_path: Path,
) -> None:
    routes = tmp_path / "routes.json"
    write_routes(routes, [EXPERIMENT])
    port = free_port()
    data = tmp_path / "cp"
    cp, model = start_all(
        lambda: start_control_plane(data, routes, listen=f"127.0.0.1:{port}"),
        lambda: start_demo("m"),
    )
    sidecar = start_sidecar(model.address, cp.address, "--flush-interval", "0.2")
    try:
        _wait(lambda: sidecar.health()["routing"] == "live", 20, "no routing table")
        with Traffic(sidecar.address) as traffic:
            _wait(lambda: traffic.ok > 100, 30, "no traffic")
            cp.kill9()  # mid-stream: batches in flight may be applied but not acknowledged
            _wait(lambda: sidecar.health()["routing"] == "stale", 10, "sidecar did not notice")
            during = traffic.ok
            _wait(lambda: traffic.ok > during + 100, 30, "traffic stopped without control plane")
            assert sidecar.health()["batches_pending"] > 0  # kept while nobody acknowledges
            cp = start_control_plane(data, routes, listen=f"127.0.0.1:{port}")
            _wait(lambda: sidecar.health()["routing"] == "live", 20, "no reconnect")
            after = traffic.ok
            _wait(lambda: traffic.ok > after + 100, 30, "no traffic after restart")
        assert traffic.failures == []
        _wait(lambda: sidecar.health()["batches_pending"] == 0, 20, "backlog not drained")
        assert sidecar.stop() == 0  # SIGTERM flushes the last window and waits for its ack
        counted = _counted(data, EXPERIMENT["route_id"])
        assert sum(counted.values()) == traffic.ok
        assert set(counted) == {"treatment", "control"}
    finally:
        for p in (sidecar, model, cp):
            p.stop()


def test_sigterm_finishes_in_flight_calls_and_flushes_metrics(tmp_path: Path) -> None:
    routes = tmp_path / "routes.json"
    write_routes(routes, [EXPERIMENT])
    data = tmp_path / "cp"
    cp, model = start_all(
        lambda: start_control_plane(data, routes), lambda: start_demo("m", "--latency-ms", "400")
    )
    sidecar: Proc = start_sidecar(model.address, cp.address, "--flush-interval", "60")
    try:
        _wait(lambda: sidecar.health()["routing"] == "live", 20, "no routing table")

        async def run() -> list[str]:
            async with grpc.aio.insecure_channel(sidecar.address) as ch:
                stub = infer_stub(ch)
                calls = [
                    stub(request(), metadata=(("x-user-id", f"u{i}"),), timeout=10)
                    for i in range(10)
                ]
                await asyncio.sleep(0.15)  # all ten are now in flight at the sidecar
                sidecar.proc.send_signal(signal.SIGTERM)
                results = await asyncio.gather(*calls, return_exceptions=True)
                return [type(r).__name__ if isinstance(r, Exception) else "ok" for r in results]

        assert asyncio.run(run()) == ["ok"] * 10
        assert sidecar.proc.wait(30) == 0
        # The window was an hour long: only the SIGTERM flush can have delivered it.
        assert sum(_counted(data, EXPERIMENT["route_id"]).values()) == 10
    finally:
        for p in (sidecar, model, cp):
            p.stop()


def test_unacknowledged_backlog_is_bounded_and_drops_are_counted(tmp_path: Path) -> None:
    routes = tmp_path / "routes.json"
    write_routes(routes, [EXPERIMENT])
    cp, model = start_all(
        lambda: start_control_plane(tmp_path / "cp", routes), lambda: start_demo("m")
    )
    sidecar = start_sidecar(
        model.address,
        cp.address,
        "--flush-interval",
        "0.1",
        "--max-backlog",
        "2",
        "--grace-seconds",
        "1",
    )
    try:
        _wait(lambda: sidecar.health()["routing"] == "live", 20, "no routing table")
        cp.kill9()
        _wait(lambda: sidecar.health()["routing"] == "stale", 10, "sidecar did not notice")
        for _ in range(5):  # five windows with traffic, one batch each
            asyncio.run(_send(sidecar.address, 5))
            time.sleep(0.25)
        h = sidecar.health()
        assert h["batches_pending"] == 2
        assert h["batches_dropped"] >= 3
        assert "neural_sidecar_metric_batches_dropped_total" in sidecar.metrics()
    finally:
        for p in (sidecar, model, cp):
            p.stop()


async def _send(address: str, n: int) -> None:
    async with grpc.aio.insecure_channel(address) as ch:
        stub = infer_stub(ch)
        for i in range(n):
            await stub(request(), metadata=(("x-user-id", f"u{i}"),), timeout=10)


def test_upstream_trailers_reach_the_caller_and_metric_trailers_become_custom_metrics(
    tmp_path: Path,
) -> None:
    import json

    routes = tmp_path / "routes.json"
    write_routes(routes, [EXPERIMENT])
    data = tmp_path / "cp"
    cp, model = start_all(
        lambda: start_control_plane(data, routes), lambda: start_demo("m", "--emit-metric")
    )
    sidecar = start_sidecar(model.address, cp.address, "--flush-interval", "0.2")
    try:
        _wait(lambda: sidecar.health()["routing"] == "live", 20, "no routing table")

        async def run() -> list[float]:
            means = []
            async with grpc.aio.insecure_channel(sidecar.address) as ch:
                stub = infer_stub(ch)
                for i in range(10):
                    call = stub(request([float(i), 1.0]), metadata=(("x-user-id", "same-user"),))
                    await call
                    trailers = dict(await call.trailing_metadata())
                    means.append(float(trailers["x-neural-metric-output_mean"]))
            return means

        means = asyncio.run(run())
        assert means == [float(i) + 1.0 for i in range(10)]  # mean of 2*[i, 1]
        _wait(lambda: sum(_counted(data, EXPERIMENT["route_id"]).values()) == 10, 10, "not counted")
        ((raw,),) = execute_sql(data, (
            "SELECT stats FROM traffic_windows WHERE route_id = ? AND window_start_us = -1",
            (EXPERIMENT["route_id"],),
        ))[0]
        custom = json.loads(raw)["custom"]["output_mean"]
        assert custom["n"] == 10
        assert custom["sum"] == sum(means)
        assert custom["sum_squares"] == sum(m * m for m in means)
    finally:
        for p in (sidecar, model, cp):
            p.stop()
