"""What the sidecar's OIP REST form costs per request, against a direct call and a bare
aiohttp pass-through.

    python benchmarks/sidecar_rest.py            # ~2 minutes
    python benchmarks/sidecar_rest.py --smoke    # a few seconds (the test runs this)

One closed-loop load (concurrency 1 and 16; ``POST /v2/models/bench/infer`` with a
[1, 16] FP32 tensor as JSON; a fresh ``x-user-id`` per call; aiohttp client, one pooled
session) against:
  (a) the demo model's REST form directly (the baseline),
  (c) an aiohttp pass-through (``--passthrough``, this file): the body streamed to the
      upstream on one pooled session, status, headers and body streamed back; nothing
      routed or measured: the floor of a Python aiohttp proxy doing the same job,
  (d) the sidecar's REST port with an A/B test (hash assignment, version rewritten in the
      URL) and metric batches flowing to a control plane,
  (e) the same sidecar, the same test restricted by ``param.tier = gold`` (the body, with
      ``"parameters": {"tier": "gold"}``, read whole and its parameters parsed before
      routing),
  (f) as (e) with the body sent gzip-compressed (``Content-Encoding: gzip``): decoded by
      the sidecar for routing, forwarded compressed (the demo model decodes it).
Rounds interleave the targets; ``--repeats`` rounds are run; the table shows medians and
the ratios are medians of the per-round ratios (with their range). Columns: p50 / p99
added latency over (a), throughput relative to (a), CPU microseconds per request of the
proxy process (psutil user + system). All processes share the machine's cores; the load
average is printed at the start and the end of the run.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from peers.procs import Proc, start_control_plane, write_routes  # noqa: E402
from support.processes import wait_for_line  # noqa: E402

A, C, D = "(a) direct", "(c) aiohttp pass-through", "(d) sidecar REST, A/B + metrics"
E, F = "(e) sidecar REST, param.* targeting", "(f) sidecar REST, param.* on gzip"
REST = re.compile(r"REST on (http://\S+:\d+)")
ROUTE = {
    "model_name": "bench", "route_id": "exp-bench-rest", "kind": "experiment",
    "variants": [
        {"name": "treatment", "weight": 0.5, "model_name": "bench", "model_version": "2"},
        {"name": "control", "weight": 0.5, "model_name": "bench", "model_version": "1"},
    ],
}
BODY = json.dumps({"inputs": [{"name": "x", "shape": [1, 16], "datatype": "FP32",
                               "data": [i / 15 for i in range(16)]}]}).encode()
GOLD = dict(ROUTE, model_name="bench-gold", route_id="exp-bench-gold",
            targeting=["param.tier = gold"])
GOLD_BODY = BODY[:-1] + b', "parameters": {"tier": "gold"}}'
# Per target: path, body, extra headers.
CALL: dict[str, tuple[str, bytes, dict[str, str]]] = {
    E: ("/v2/models/bench-gold/infer", GOLD_BODY, {}),
    F: ("/v2/models/bench-gold/infer", gzip.compress(GOLD_BODY), {"content-encoding": "gzip"}),
}
PLAIN = ("/v2/models/bench/infer", BODY, {})


def passthrough(listen: str, upstream: str) -> None:
    """Row (c): the least an aiohttp proxy does (run in its own process)."""
    import aiohttp
    from aiohttp import web

    hop = {"connection", "keep-alive", "transfer-encoding", "host", "upgrade", "te"}

    async def handle(request: web.Request) -> web.StreamResponse:
        session: aiohttp.ClientSession = request.app["session"]
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in hop]
        async with session.request(request.method, upstream + request.raw_path, headers=headers,
                                   data=request.content.iter_any()) as resp:
            out = web.StreamResponse(status=resp.status, headers=[
                (k, v) for k, v in resp.headers.items() if k.lower() not in hop])
            await out.prepare(request)
            async for chunk in resp.content.iter_any():
                await out.write(chunk)
            await out.write_eof()
            return out

    async def main() -> None:
        app = web.Application()
        app["session"] = aiohttp.ClientSession(auto_decompress=False)
        app.router.add_route("*", "/{tail:.*}", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        host, port = listen.rsplit(":", 1)
        await web.TCPSite(runner, host, int(port)).start()
        print(f"pass-through listening on {host}:{runner.addresses[0][1]}, "
              f"REST on http://{host}:{runner.addresses[0][1]}", flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


def _start(args: list[str]) -> tuple[Proc, str]:
    proc = subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        line = wait_for_line(proc, REST, 60).string
    except BaseException:
        proc.kill()
        raise
    address = re.search(r"listening on (\S+:\d+)", line).group(1)  # type: ignore[union-attr]
    return Proc(proc, address), REST.search(line).group(1)  # type: ignore[union-attr]


async def _load(url: str, body: bytes, extra: dict[str, str], concurrency: int,
                seconds: float) -> tuple[int, float, list[float]]:
    import aiohttp

    latencies: list[float] = []
    counter = [0]
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=concurrency)
    ) as client:
        async def worker(stop_at: float, keep: bool) -> None:
            perf = time.perf_counter
            while perf() < stop_at:
                counter[0] += 1
                t0 = perf()
                async with client.post(url, data=body, headers={
                    "x-user-id": f"user-{counter[0]}", "content-type": "application/json",
                    **extra,
                }) as r:
                    await r.read()
                    if r.status != 200:
                        raise RuntimeError(f"{url}: HTTP {r.status}")
                if keep:
                    latencies.append(perf() - t0)

        warm = time.perf_counter() + min(0.5, seconds / 2)
        await asyncio.gather(*(worker(warm, False) for _ in range(concurrency)))
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(t0 + seconds, True) for _ in range(concurrency)))
        return len(latencies), time.perf_counter() - t0, latencies


def _cpu(pid: int) -> float:
    t = psutil.Process(pid).cpu_times()
    return t.user + t.system


def measure(name: str, url: str, pid: int | None, concurrency: int,
            seconds: float) -> dict[str, float]:
    path, body, extra = CALL.get(name, PLAIN)
    before = _cpu(pid) if pid else 0.0
    n, elapsed, lat = asyncio.run(_load(url + path, body, extra, concurrency, seconds))
    cpu = (_cpu(pid) - before) / n * 1e6 if pid else 0.0
    q = statistics.quantiles(lat, n=100) if len(lat) > 1 else [lat[0]] * 99
    return {"n": n, "rps": n / elapsed, "p50_us": q[49] * 1e6, "p99_us": q[98] * 1e6,
            "cpu_us": cpu}


def _rounds(targets: dict[str, tuple[str, int | None]], conc: int, seconds: float,
            repeats: int) -> list[dict[str, dict[str, float]]]:
    return [
        {name: measure(name, url, pid, conc, seconds)
         for name, (url, pid) in targets.items()}
        for _ in range(repeats)
    ]


def _report(conc: int, rounds: list[dict[str, dict[str, float]]]) -> list[dict[str, Any]]:
    rows = []
    for name in rounds[0]:
        med = {k: statistics.median(r[name][k] for r in rounds) for k in rounds[0][name]}
        added = [r[name]["p50_us"] - r[A]["p50_us"] for r in rounds]
        rows.append({"target": name, "concurrency": conc, **med,
                     "added_p50_us": statistics.median(added),
                     "added_p99_us": statistics.median(
                         r[name]["p99_us"] - r[A]["p99_us"] for r in rounds),
                     "throughput_vs_a": statistics.median(
                         r[name]["rps"] / r[A]["rps"] for r in rounds)})
        print(f"| {name} | {conc} | {rows[-1]['added_p50_us']:.0f} | "
              f"{rows[-1]['added_p99_us']:.0f} | {rows[-1]['throughput_vs_a']:.2f} | "
              f"{med['cpu_us']:.0f} |")
    _ratios(conc, rounds, D, C)
    _ratios(conc, rounds, E, D)
    _ratios(conc, rounds, F, E)
    return rows


def _ratios(conc: int, rounds: list[dict[str, dict[str, float]]], x: str, y: str) -> None:
    """x against y: CPU per request, and added p50 latency over (a)."""
    cpu = [r[x]["cpu_us"] / r[y]["cpu_us"] for r in rounds]
    # Added latency ratios only from rounds where the floor added some (noise can make
    # the pass-through's p50 land below the direct call's).
    lat = [(r[x]["p50_us"] - r[A]["p50_us"]) / (r[y]["p50_us"] - r[A]["p50_us"])
           for r in rounds if r[y]["p50_us"] > r[A]["p50_us"]]
    added = (f"{statistics.median(lat):.2f} ({min(lat):.2f}-{max(lat):.2f}) in {len(lat)}"
             if lat else "n/a in 0")
    xy = f"{x[:3]}/{y[:3]}"
    print(f"concurrency {conc}: CPU {xy} {statistics.median(cpu):.2f} "
          f"({min(cpu):.2f}-{max(cpu):.2f}) over {len(rounds)} rounds, added p50 {xy} "
          f"{added} rounds")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--smoke", action="store_true", help="a few seconds, for the test")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--json", help="write the rows here")
    p.add_argument("--passthrough", nargs=2, metavar=("LISTEN", "UPSTREAM"),
                   help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.passthrough:
        passthrough(*args.passthrough)
        return 0
    repeats, seconds, levels = (
        (1, 0.5, (1, 4)) if args.smoke else (args.repeats, args.seconds, (1, 16))
    )
    tmp = Path(tempfile.mkdtemp(prefix="bench-rest-"))
    routes = tmp / "routes.json"
    write_routes(routes, [ROUTE, GOLD])
    procs: list[Proc] = []
    try:
        model, model_url = _start(["-m", "neural.mlops", "demo-model", "--listen",
                                   "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
                                   "--name", "bench"])
        procs.append(model)
        cp = start_control_plane(tmp / "cp", routes)
        procs.append(cp)
        floor, floor_url = _start([__file__, "--passthrough", "127.0.0.1:0", model_url])
        procs.append(floor)
        sidecar, sidecar_url = _start([
            "-m", "neural.mlops", "sidecar", "--listen", "127.0.0.1:0", "--upstream",
            model.address, "--http-listen", "127.0.0.1:0", "--upstream-http", model_url,
            "--control-plane", cp.address, "--log-level", "warning"])
        procs.append(sidecar)
        time.sleep(1.0)  # the routing table arrives
        targets = {A: (model_url, None), C: (floor_url, floor.proc.pid),
                   D: (sidecar_url, sidecar.proc.pid), E: (sidecar_url, sidecar.proc.pid),
                   F: (sidecar_url, sidecar.proc.pid)}
        print("load average (1, 5, 15 min) at start: "
              + " ".join(f"{x:.2f}" for x in os.getloadavg()))
        print("| target | conc | +p50 µs | +p99 µs | thr/(a) | CPU µs/req |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        rows = []
        for conc in levels:
            rows += _report(conc, _rounds(targets, conc, seconds, repeats))
        print("load average at end: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
        if args.json:
            Path(args.json).write_text(json.dumps(rows, indent=1))
    finally:
        for proc in reversed(procs):
            proc.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
