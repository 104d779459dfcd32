"""What the sidecar costs per request, against nginx and a bare grpc.aio pass-through.

    python benchmarks/sidecar_overhead.py            # ~8 minutes (9 rounds)
    python benchmarks/sidecar_overhead.py --smoke    # a few seconds (the test runs this)
    python benchmarks/sidecar_overhead.py --profile  # plus py-spy profiles of (d) and (l)

One run, the same closed-loop load (concurrency 1 and 32, a [1, 16] FP32 tensor, OIP
ModelInfer, a fresh x-user-id per call) against:
  (a) the demo model server directly (the baseline),
  (b) nginx grpc_pass (benchmarks/nginx.conf; skipped with a note if nginx is missing),
  (c) benchmarks/passthrough_proxy.py, the floor of a Python grpc.aio proxy: bytes on one
      reused channel, the caller's deadline and metadata forwarded, the upstream's
      trailers and status returned; nothing parsed, routed or measured,
  (c0) the same dropping metadata both ways (not a usable proxy; shows what the
      metadata costs),
  (d) the sidecar with an A/B test (hash assignment + model_version rewrite, counted per
      unit) and metric batches flowing to a control plane; x-neural-variant in the
      trailers (the default). Its test has no targeting condition (the request carries
      the same attributes as in (l)): (l)/(d) compares 1 test with 20, conditions
      included, as issue #16 states it,
  (e) (d) plus 100 % shadow traffic to a second demo model,
  (d') (d) with --variant-header initial: x-neural-variant in the initial metadata
      (grpc.aio sends initial metadata in a core batch of its own; trailers ride with the
      status),
  (l) (d) with 20 running tests across 5 layers instead of one test, a targeting
      condition each (issue #16): per request a layer bucket, a bisect and a condition per
      layer, the request in up to 5 tests (each counted per unit, all passed upstream in
      x-neural-experiment); every condition matches the request's attributes, so a
      request is in 4 tests on average (each layer's tests cover 80 % of it).
Every round measures each target once, in turn, and ``--repeats`` rounds are run (9 by
default: on a shared two-core machine single rounds of (l)/(d) ranged from 0.84 to 1.36,
and 5 rounds left the median at the mercy of one or two of them); the table shows
medians, the ratios are medians of the ratios within a round, with their range. Columns: p50/p99
added latency over (a), throughput relative to (a), CPU microseconds per request of the
proxy process (psutil: user + system time of the process and its children, divided by the
requests it served), and of everything on the path (proxy, model servers and this
process, the load generator). All processes share this machine's cores, as a sidecar
shares a pod with its model.

The control planes the sidecars report to run here too, but at the lowest CPU priority
(nice 19): in a deployment the control plane is a service of its own, not in the pod, and
here its ingest of the metric batches (per unit and test: (l) sends about 4x (d)'s
per-unit rows) competed for the two cores with the request path, inflating (l)'s
latency and CPU per request by more than the sidecar's own work (issue #16). Their
CPU per request is still measured and printed ("control plane CPU"), not hidden.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from peers.procs import (  # noqa: E402
    Proc,
    free_port,
    start_all,
    start_control_plane,
    start_demo,
    start_sidecar,
    wait_for_ready,
    write_routes,
)

from neural.mlops.v1 import oip_pb2  # noqa: E402

INFER = "/inference.GRPCInferenceService/ModelInfer"
A = "(a) direct"
C = "(c) grpc.aio pass-through"
C0 = "(c0) (c) dropping metadata"
D = "(d) sidecar A/B + metrics"
E = "(e) (d) + 100% shadow"
DT = "(d') (d), initial metadata"
L = "(l) (d), 20 tests in 5 layers"
# Every call carries the attributes the (l) tests' conditions read (all targets alike).
ATTRIBUTES = (("x-country", "DE"), ("x-app-version", "5.1.0"), ("x-plan", "pro"))
CONDITIONS = ("x-country in [DE, FR, AT]", "x-app-version >= 4.2", "x-plan != free",
              "x-country exists")


def layered_routes() -> list[dict[str, Any]]:
    """20 tests on "bench": 4 per layer, each on a fifth of its layer; the first layer's
    tests choose the version served, the other four's only label the request."""
    routes = []
    for layer in range(5):
        for k in range(4):
            version = str(2 + k) if layer == 0 else ""
            routes.append({
                "model_name": "bench", "route_id": f"exp-l{layer}-t{k}", "kind": "experiment",
                "layer_id": "bench:default" if layer == 0 else f"layer-{layer}",
                "range_start": 0.2 * k, "range_end": 0.2 * (k + 1),
                "targeting": [CONDITIONS[(layer + k) % len(CONDITIONS)]],
                "variants": [
                    {"name": "treatment", "weight": 0.5, "model_name": "bench",
                     "model_version": version},
                    {"name": "control", "weight": 0.5, "model_name": "bench",
                     "model_version": "1" if layer == 0 else ""},
                ],
            })
    return routes


def _request() -> bytes:
    x = np.linspace(0, 1, 16, dtype="<f4").reshape(1, 16)
    return oip_pb2.ModelInferRequest(
        model_name="bench",
        inputs=[
            oip_pb2.ModelInferRequest.InferInputTensor(name="x", datatype="FP32", shape=[1, 16])
        ],
        raw_input_contents=[x.tobytes()],
    ).SerializeToString()


@dataclass
class Result:
    n: int
    seconds: float
    p50_us: float
    p99_us: float
    cpu_us: float | None  # proxy process CPU per request
    total_cpu_us: float = 0.0  # every process on the path, load generator included
    control_cpu_us: float = 0.0  # the control plane the proxy reports to (not on the path)

    @property
    def rps(self) -> float:
        return self.n / self.seconds


def _median_result(runs: list[Result]) -> Result:
    return Result(
        n=int(statistics.median(r.n for r in runs)),
        seconds=statistics.median(r.seconds for r in runs),
        p50_us=statistics.median(r.p50_us for r in runs),
        p99_us=statistics.median(r.p99_us for r in runs),
        cpu_us=statistics.median(r.cpu_us for r in runs) if runs[0].cpu_us is not None else None,
        total_cpu_us=statistics.median(r.total_cpu_us for r in runs),
        control_cpu_us=statistics.median(r.control_cpu_us for r in runs),
    )


def _cpu(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            p = psutil.Process(pid)
            procs = [p, *p.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        for q in procs:
            try:
                t = q.cpu_times()
                total += t.user + t.system
            except psutil.NoSuchProcess:
                pass
    return total


async def _load(
    address: str, concurrency: int, seconds: float, warmup: float
) -> tuple[int, float, list[float]]:
    body = _request()
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    async with grpc.aio.insecure_channel(address) as ch:
        stub = ch.unary_unary(INFER)
        counter = [0]
        stop_at = [0.0]
        measuring = [False]

        async def worker() -> None:
            perf = time.perf_counter
            while perf() < stop_at[0]:
                counter[0] += 1
                md = (("x-user-id", f"user-{counter[0]}"), *ATTRIBUTES)
                t0 = perf()
                try:
                    await stub(body, metadata=md, timeout=10)
                except grpc.aio.AioRpcError as exc:
                    errors[exc.code().name] += 1
                    continue
                if measuring[0]:
                    latencies.append(perf() - t0)

        stop_at[0] = time.perf_counter() + warmup
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        measuring[0] = True
        t0 = time.perf_counter()
        stop_at[0] = t0 + seconds
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - t0
    if errors:
        raise RuntimeError(f"calls failed during the benchmark: {dict(errors)}")
    return len(latencies), elapsed, latencies


def measure(
    address: str,
    pids: list[int],
    concurrency: int,
    seconds: float,
    warmup: float,
    others: list[int] | None = None,
    control: list[int] | None = None,
) -> Result:
    """One closed-loop run. CPU is sampled around the measured phase only: the proxy's
    ``pids`` and, for the total, the model servers (``others``) and this process, which
    is the load generator; the ``control`` plane's apart."""

    async def run() -> tuple[int, float, list[float], float, float, float]:
        await _load(address, concurrency, 0.0, warmup)
        before, before_others, before_self = _cpu(pids), _cpu(others or []), time.process_time()
        before_control = _cpu(control or [])
        n, elapsed, lat = await _load(address, concurrency, seconds, 0.0)
        proxy = _cpu(pids) - before
        total = proxy + _cpu(others or []) - before_others + time.process_time() - before_self
        return n, elapsed, lat, proxy, total, _cpu(control or []) - before_control

    n, elapsed, lat, cpu, total, control_cpu = asyncio.run(run())
    lat.sort()
    return Result(
        n=n,
        seconds=elapsed,
        p50_us=lat[len(lat) // 2] * 1e6,
        p99_us=lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1e6,
        cpu_us=cpu / n * 1e6 if pids else None,
        total_cpu_us=total / n * 1e6,
        control_cpu_us=control_cpu / n * 1e6,
    )


def start_nginx(workdir: Path, upstream: str) -> tuple[subprocess.Popen[bytes] | None, str, str]:
    binary = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if binary is None:
        return None, "", "nginx not installed (apt-get install -y nginx-light); row (b) skipped"
    port = free_port()
    conf = (ROOT / "benchmarks" / "nginx.conf").read_text()
    conf = conf.replace("{workdir}", str(workdir)).replace("{upstream}", upstream)
    conf = conf.replace("{listen}", f"127.0.0.1:{port}")
    (workdir / "nginx.conf").write_text(conf)
    proc = subprocess.Popen(
        [binary, "-p", str(workdir), "-c", str(workdir / "nginx.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    address = f"127.0.0.1:{port}"
    if not wait_for_ready(address, 15):
        proc.kill()
        err = (workdir / "error.log").read_text() if (workdir / "error.log").exists() else ""
        return None, "", f"nginx did not start: {err[-300:]}"
    return proc, address, ""


def start_passthrough(upstream: str, *args: str) -> Proc:
    proc = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "passthrough_proxy.py"),
            "--upstream",
            upstream,
            *args,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline() if proc.stdout else ""
    return Proc(proc, line.rsplit(" ", 1)[-1].strip())


# The sidecar's own work per request, as py-spy names it (inclusive shares compared).
PROFILED = (
    "Proxy.model_infer", "Plan.resolve", "Fanout.record", "Slot.record",
    "MetricsReporter.flush", "MetricsReporter._stream_once",
)


def profile(
    pid: int, address: str, seconds: float, out: Path
) -> dict[str, list[tuple[str, float]]]:
    """py-spy raw samples of a sidecar under concurrency-32 load: ``self`` (top self-time
    frames) and ``inclusive`` (share of samples under each of :data:`PROFILED`)."""
    spy = shutil.which("py-spy")
    if spy is None:
        return {"self": [("py-spy not installed (pip install py-spy)", 0.0)], "inclusive": []}
    rec = subprocess.Popen(
        [spy, "record", "--format", "raw", "-r", "200", "-d", str(int(seconds)),
         "-o", str(out), "-p", str(pid)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    asyncio.run(_load(address, 32, seconds + 0.5, 0.0))
    _, err = rec.communicate(timeout=60)
    if rec.returncode != 0:
        return {"self": [(f"py-spy failed: {err.strip()[-200:]}", 0.0)], "inclusive": []}
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in out.read_text().splitlines() if out.exists() else []:
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        total += int(count)
        leaf = frames[-1]
        # Attribute C-level time spent in grpc's Cython core to a readable bucket.
        self_time[leaf.split(" (")[0] + " (" + leaf.split(" (")[-1] if " (" in leaf else leaf] += (
            int(count)
        )
        for fn in {f.split(" (")[0] for f in frames} & set(PROFILED):
            inclusive[fn] += int(count)
    if not total:
        return {"self": [], "inclusive": []}
    return {
        "self": [(frame, 100.0 * c / total) for frame, c in self_time.most_common(12)],
        "inclusive": [(fn, 100.0 * inclusive[fn] / total) for fn in PROFILED],
    }


def print_profiles(targets: list[tuple[str, Proc]], work: Path) -> None:
    """Profile each sidecar in turn; print its top self-time frames, then the inclusive
    shares of the sidecar's own functions side by side."""
    got = {}
    for name, proc in targets:
        got[name] = profile(proc.proc.pid, proc.address, 5.0, work / "profile.txt")
        print(f"\npy-spy: top self-time frames of the sidecar {name} at concurrency 32")
        for frame, pct in got[name]["self"]:
            print(f"  {pct:5.1f}%  {frame}")
    print("\npy-spy: share of samples under the sidecar's own functions (inclusive)")
    print(f"  {'function':30}" + "".join(f" {n.split()[0]:>8}" for n, _ in targets))
    for fn in PROFILED:
        shares = [dict(got[n]["inclusive"]).get(fn) for n, _ in targets]
        print(f"  {fn:30}" + "".join(f" {x:7.1f}%" if x is not None else f" {'-':>8}"
                                     for x in shares))


def main(argv: list[str] | None = None) -> int:  # noqa: C901 - set-up, rounds, report in a row
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="tiny run (CI)")
    ap.add_argument("--seconds", type=float, default=3.0, help="measured seconds per cell")
    ap.add_argument("--repeats", type=int, default=9, help="interleaved rounds (medians reported)")
    ap.add_argument("--profile", action="store_true",
                    help="py-spy profiles of the sidecars (d) and (l)")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args(argv)
    seconds, warmup, repeats = (0.3, 0.1, 1) if args.smoke else (args.seconds, 0.5, args.repeats)
    concurrencies = [1] if args.smoke else [1, 32]

    work = Path(tempfile.mkdtemp(prefix="sidecar-bench-"))
    procs: list[Proc] = []
    nginx = None
    notes: list[str] = []
    try:
        model, shadow_model = start_all(lambda: start_demo("bench"), lambda: start_demo("bench"))
        procs += [model, shadow_model]
        ab = {
            "model_name": "bench",
            "route_id": "exp-bench",
            "kind": "experiment",
            "variants": [
                {"name": "treatment", "weight": 0.5, "model_name": "bench", "model_version": "2"},
                {"name": "control", "weight": 0.5, "model_name": "bench", "model_version": "1"},
            ],
        }
        routes_d, routes_e = work / "routes-d.json", work / "routes-e.json"
        write_routes(routes_d, [ab])
        write_routes(
            routes_e,
            [
                dict(
                    ab,
                    shadows=[
                        {
                            "shadow_id": "bench-shadow",
                            "model_name": "bench",
                            "upstream": shadow_model.address,
                            "percentage": 100,
                        }
                    ],
                )
            ],
        )
        routes_l = work / "routes-l.json"
        write_routes(routes_l, layered_routes())
        cp_d, cp_e, cp_l = start_all(
            lambda: start_control_plane(work / "cp-d", routes_d),
            lambda: start_control_plane(work / "cp-e", routes_e),
            lambda: start_control_plane(work / "cp-l", routes_l),
        )
        procs += [cp_d, cp_e, cp_l]
        for cp in (cp_d, cp_e, cp_l):  # not on the request path (module docstring)
            psutil.Process(cp.proc.pid).nice(19)
        sidecar_d, sidecar_e, sidecar_t, sidecar_l = start_all(
            lambda: start_sidecar(model.address, cp_d.address),
            lambda: start_sidecar(
                model.address, cp_e.address, "--shadow-queue", "10000", "--shadow-in-flight", "64"
            ),
            lambda: start_sidecar(model.address, cp_d.address, "--variant-header", "initial"),
            lambda: start_sidecar(model.address, cp_l.address),
        )
        procs += [sidecar_d, sidecar_e, sidecar_t, sidecar_l]
        for s in (sidecar_d, sidecar_e, sidecar_t, sidecar_l):
            deadline = time.monotonic() + 30
            while s.health()["routing"] != "live":
                if time.monotonic() > deadline:
                    raise RuntimeError("sidecar got no routing table")
                time.sleep(0.05)
        passthrough = start_passthrough(model.address)
        bytes_only = start_passthrough(model.address, "--bytes-only")
        procs += [passthrough, bytes_only]
        nginx, nginx_address, note = start_nginx(work, model.address)
        if note:
            notes.append(note)

        # (name, address, proxy pids, model server pids, control plane pids)
        rows: list[tuple[str, str, list[int], list[int], list[int]]] = [
            (A, model.address, [], [model.proc.pid], [])
        ]
        if nginx is not None:
            rows.append(
                ("(b) nginx grpc_pass", nginx_address, [nginx.pid], [model.proc.pid], [])
            )
        rows += [
            (C, passthrough.address, [passthrough.proc.pid], [model.proc.pid], []),
            (C0, bytes_only.address, [bytes_only.proc.pid], [model.proc.pid], []),
            (D, sidecar_d.address, [sidecar_d.proc.pid], [model.proc.pid], [cp_d.proc.pid]),
            (E, sidecar_e.address, [sidecar_e.proc.pid],
             [model.proc.pid, shadow_model.proc.pid], [cp_e.proc.pid]),
            (DT, sidecar_t.address, [sidecar_t.proc.pid], [model.proc.pid], [cp_d.proc.pid]),
            (L, sidecar_l.address, [sidecar_l.proc.pid], [model.proc.pid], [cp_l.proc.pid]),
        ]
        # Rounds are interleaved (every target once per round, then the next round), so a
        # slow spell of this shared machine hits every target alike; ratios are taken
        # within a round and their median is reported.
        runs: dict[tuple[str, int], list[Result]] = {}
        for conc in concurrencies:
            for _ in range(repeats):
                for name, address, pids, others, control in rows:
                    r = measure(address, pids, conc, seconds, warmup, others, control)
                    runs.setdefault((name, conc), []).append(r)
        results = {k: _median_result(v) for k, v in runs.items()}

        def ratios(num: str, den: str, conc: int, f: Any) -> list[float]:
            return [
                f(x, a_) / f(y, a_)
                for x, y, a_ in zip(
                    runs[(num, conc)], runs[(den, conc)], runs[(A, conc)], strict=True
                )
            ]

        def paired(num: str, den: str, conc: int, f: Any) -> float:
            return statistics.median(ratios(num, den, conc, f))

        def spread(num: str, den: str, conc: int, f: Any) -> str:
            r = ratios(num, den, conc, f)
            return f"{statistics.median(r):.2f} (rounds {min(r):.2f}-{max(r):.2f})"

        def cpu(r: Result, _a: Result) -> float:
            return r.cpu_us or float("nan")

        def added_p50(r: Result, a_: Result) -> float:
            return r.p50_us - a_.p50_us

        out = []
        print(
            f"sidecar overhead: closed loop, [1,16] FP32 ModelInfer, {seconds:g}s x {repeats} "
            "interleaved rounds per cell (medians)"
        )
        hdr = (
            f"{'target':34} {'conc':>4} {'req/s':>8} {'thr/(a)':>8} {'p50 µs':>8} {'+p50 µs':>8} "
            f"{'p99 µs':>8} {'+p99 µs':>8} {'CPU µs/req':>10} {'all CPU µs/req':>14}"
        )
        print(hdr)
        print("-" * len(hdr))
        for conc in concurrencies:
            base = results[(A, conc)]
            for name, *_ in rows:
                r = results[(name, conc)]
                cpu_s = f"{r.cpu_us:10.0f}" if r.cpu_us is not None else f"{'-':>10}"
                print(
                    f"{name:34} {conc:4d} {r.rps:8.0f} {r.rps / base.rps:8.2f} {r.p50_us:8.0f} "
                    f"{r.p50_us - base.p50_us:8.0f} {r.p99_us:8.0f} {r.p99_us - base.p99_us:8.0f} "
                    f"{cpu_s} {r.total_cpu_us:14.0f}"
                )
                out.append(
                    {
                        "target": name,
                        "concurrency": conc,
                        "rps": r.rps,
                        "throughput_ratio": r.rps / base.rps,
                        "p50_us": r.p50_us,
                        "p99_us": r.p99_us,
                        "added_p50_us": r.p50_us - base.p50_us,
                        "added_p99_us": r.p99_us - base.p99_us,
                        "cpu_us_per_request": r.cpu_us,
                        "total_cpu_us_per_request": r.total_cpu_us,
                        "control_plane_cpu_us_per_request": r.control_cpu_us,
                    }
                )
        print()
        print(
            "ratios, median over rounds of the ratio within a round "
            "(targets: CPU (d)/(c) <= 1.2, added p50 (d)/(c) <= 1.2):"
        )
        for conc in concurrencies:
            print(
                f"  conc {conc:2d}: CPU (d)/(c) = {spread(D, C, conc, cpu)}   "
                f"added p50 (d)/(c) = {spread(D, C, conc, added_p50)}"
            )
            print(
                f"            against the bytes-only (c0): CPU {spread(D, C0, conc, cpu)}, "
                f"added p50 {spread(D, C0, conc, added_p50)}"
            )
            print(
                f"            (d') header in initial metadata: CPU (d')/(c) = "
                f"{spread(DT, C, conc, cpu)}, "
                f"added p50 {spread(DT, C, conc, added_p50)}"
            )
            if nginx is not None:
                print(
                    f"            nginx CPU {results[('(b) nginx grpc_pass', conc)].cpu_us:.0f} "
                    f"µs/req; (d)/(b) = {paired(D, '(b) nginx grpc_pass', conc, cpu):.1f}x"
                )
            print(
                f"            layers: CPU (l)/(d) = {spread(L, D, conc, cpu)} (target <= 1.1), "
                f"added p50 (l)/(d) = {spread(L, D, conc, added_p50)}"
            )
            print(
                f"            control plane CPU per request (nice 19, off the path): "
                f"(d) {results[(D, conc)].control_cpu_us:.0f} µs, "
                f"(l) {results[(L, conc)].control_cpu_us:.0f} µs"
            )
            d, e = results[(D, conc)], results[(E, conc)]
            work_ratio = e.total_cpu_us / d.total_cpu_us
            print(
                f"            shadow: p99 (e)/(d) = {e.p99_us / d.p99_us:.2f}, p50 (e)/(d) = "
                f"{e.p50_us / d.p50_us:.2f}; all CPU per request (e)/(d) = {work_ratio:.2f} "
                f"(+{e.total_cpu_us - d.total_cpu_us:.0f} µs: the shadow model's call and "
                "the sidecar's mirroring)"
            )
        for note in notes:
            print(f"note: {note}")
        if args.profile:
            print_profiles([(D, sidecar_d), (L, sidecar_l)], work)
        if args.json:
            args.json.write_text(json.dumps(out, indent=2))
    finally:
        if nginx is not None:
            nginx.terminate()
            nginx.wait(10)
        for p in reversed(procs):
            p.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
