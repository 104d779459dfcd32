"""What one custom response header costs in grpc.aio, apart from any proxy.

    python benchmarks/grpc_header_cost.py            # ~1 minute
    python benchmarks/grpc_header_cost.py --smoke    # a few seconds (the test runs this)

A grpc.aio server answers a unary call with the request bytes, in four ways: no metadata
(the baseline), one header in the trailing metadata, one header in the initial metadata
sent before answering, and the same header sent concurrently (a task, as the sidecar
does). grpc.aio puts custom initial metadata in a core batch of its own; the answer's
batch always carries empty initial metadata. So the initial header is one more
completion for the server and one more HTTP/2 HEADERS frame for the caller, whatever the
handler does. Closed-loop load from this process at concurrency 1 and 32; printed: CPU
microseconds per call of the server process and of the caller (this process), medians
of interleaved rounds, and their ratio to the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time

import grpc
import psutil

METHOD = "/bench.Echo/Call"
MODES = ("none", "trailing", "initial", "initial-concurrent")
HEADER = (("x-neural-variant", "treatment"),)


class Echo(grpc.GenericRpcHandler):
    def __init__(self, mode: str) -> None:
        self.handler = grpc.unary_unary_rpc_method_handler(getattr(self, mode.replace("-", "_")))

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        return self.handler

    async def none(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return request

    async def trailing(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        context.set_trailing_metadata(HEADER)
        return request

    async def initial(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        await context.send_initial_metadata(HEADER)
        return request

    async def initial_concurrent(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        sent = asyncio.ensure_future(context.send_initial_metadata(HEADER))
        await asyncio.sleep(0)  # stands for the work a handler does meanwhile
        await sent
        return request


async def serve(mode: str) -> None:
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    server.add_generic_rpc_handlers((Echo(mode),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(f"listening on 127.0.0.1:{port}", flush=True)
    await server.wait_for_termination()


async def _load(address: str, concurrency: int, seconds: float) -> int:
    body = b"\x0a\x05bench" + bytes(64)
    done = [0]
    async with grpc.aio.insecure_channel(address) as ch:
        call = ch.unary_unary(METHOD)
        stop = time.perf_counter() + seconds

        async def worker() -> None:
            while time.perf_counter() < stop:
                await call(body, timeout=10)
                done[0] += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done[0]


def measure(address: str, pid: int, concurrency: int, seconds: float) -> tuple[float, float]:
    asyncio.run(_load(address, concurrency, min(0.5, seconds)))  # warm up
    proc = psutil.Process(pid)
    t = proc.cpu_times()
    server0, client0 = t.user + t.system, time.process_time()
    n = asyncio.run(_load(address, concurrency, seconds))
    t = proc.cpu_times()
    return (t.user + t.system - server0) / n * 1e6, (time.process_time() - client0) / n * 1e6


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="tiny run (CI)")
    ap.add_argument("--seconds", type=float, default=2.0, help="measured seconds per cell")
    ap.add_argument("--repeats", type=int, default=5, help="interleaved rounds (medians)")
    ap.add_argument("--serve", choices=MODES, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve:
        asyncio.run(serve(args.serve))
        return 0
    seconds, repeats = (0.3, 1) if args.smoke else (args.seconds, args.repeats)
    servers = {}
    try:
        for mode in MODES:
            p = subprocess.Popen(
                [sys.executable, __file__, "--serve", mode], stdout=subprocess.PIPE, text=True
            )
            servers[mode] = (
                p,
                (p.stdout.readline() if p.stdout else "").rsplit(" ", 1)[-1].strip(),
            )
        print(f"one response header in grpc.aio: {seconds:g}s x {repeats} interleaved rounds")
        hdr = (
            f"{'header':20} {'conc':>4} {'server µs/call':>15} {'ratio':>6} "
            f"{'caller µs/call':>15} {'ratio':>6}"
        )
        print(hdr)
        print("-" * len(hdr))
        for conc in (1, 32):
            cells: dict[str, list[tuple[float, float]]] = {m: [] for m in MODES}
            for _ in range(repeats):
                for mode, (p, address) in servers.items():
                    cells[mode].append(measure(address, p.pid, conc, seconds))
            base_s = statistics.median(s for s, _ in cells["none"])
            base_c = statistics.median(c for _, c in cells["none"])
            for mode in MODES:
                s = statistics.median(x for x, _ in cells[mode])
                c = statistics.median(y for _, y in cells[mode])
                print(
                    f"{mode:20} {conc:4d} {s:15.0f} {s / base_s:6.2f} {c:15.0f} {c / base_c:6.2f}"
                )
    finally:
        for p, _ in servers.values():
            p.kill()
            p.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
