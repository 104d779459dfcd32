"""Model registry throughput: ``neural-mlops serve`` (gRPC) vs an MLflow tracking server.

One command::

    python benchmarks/registry_vs_mlflow.py            # 1,000 versions, 3 repeats
    python benchmarks/registry_vs_mlflow.py --smoke    # tiny counts (the test runs this)

Both systems run as servers on loopback, each on a fresh store per repeat, and are driven
by one sequential client through their network API: our remote Python client
(``ModelRegistry("grpc://...")``) in this process, and ``MlflowClient`` over HTTP in a
subprocess of a private virtualenv (``.bench/mlflow-venv``, created with ``python -m venv``
and pip on first run), so this process never imports mlflow. MLflow runs as
``mlflow server --backend-store-uri sqlite:///... --host 127.0.0.1 --port P`` with its
defaults otherwise (uvicorn, 4 workers) except that its background job execution, which
serves no registry call, is switched off (``MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false``: with
it on, its polling consumers slow every request several-fold on a 2-core machine); ours as
``neural-mlops serve --data-dir D --listen 127.0.0.1:P`` with its defaults (SQLite, info
logging, audit chain on every change).

The same seeded workload is played against both; every phase is one row:

============== ============================================ ========================================
row            neural-mlops (calls per op)                  MLflow (calls per op)
============== ============================================ ========================================
register       ``register_model`` with 3 metrics, 3 tags,   ``create_run`` + ``log_batch`` (the 3
               artifact URI (1 RPC; audit event included)   metrics) + ``create_model_version``
                                                            (source URI, run_id, the 3 tags as
                                                            ``tag: "true"``) -- MLflow keeps
                                                            metrics on runs, and only run metrics
                                                            are searchable numerically (3)
get            ``get_model_version`` (1)                    ``get_model_version`` (1)
search_tag     ``search_models(tags=[t])``, page of 100 (1) ``search_model_versions("tags.`t` =
                                                            'true'", max_results=100)`` (1)
search_metric  ``search_models(metric_conditions=           ``search_runs("metrics.accuracy >= x",
               ["accuracy >= x"])``, page of 100 (1)        max_results=100)`` then
                                                            ``search_model_versions("run_id IN
                                                            (...)")`` to get the versions (2)
promote        ``request_promotion`` (PRODUCTION) by one    ``transition_model_version_stage(...,
               actor + ``approve_promotion`` by another;    "Production",
               the approval archives the previous           archive_existing_versions=True)`` --
               PRODUCTION version (2)                       MLflow has no approval step (1)
alias          ``set_alias("champion")`` (1)                ``set_registered_model_alias`` (1)
register_lite  same ``register_model`` as above (1)         ``create_model_version`` alone with the
                                                            metrics stored as string tags (1):
                                                            MLflow's cheapest possible
                                                            registration, a lower bound that
                                                            cannot be searched by metric
============== ============================================ ========================================

Calls per op count client API calls; whatever extra HTTP requests ``MlflowClient`` makes on
its own inside one of them (it looks up the registered model around some changes) are part
of MLflow's cost, as our client's per-call work is part of ours.

Registered models are created implicitly by our first ``register_model``; MLflow needs
``create_registered_model``, done untimed in its setup (in MLflow's favour). Before timing,
each side does a few untimed warm-up calls. Each repeat reports ops/s = operations / elapsed
seconds of a phase; the table shows the median over repeats (min-max in brackets) and the
ratio of medians ours / MLflow. The machine is shared and noisy: absolute numbers move
from run to run, the ratios are what count. Result counts (tags per get, hits per search,
versions in PRODUCTION) are checked against the workload on both sides, so a system that
skips work fails the run instead of winning it.

Target: ours >= 5x MLflow on every row.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

log = structlog.get_logger("bench.registry_vs_mlflow")

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DRIVER = HERE / "_mlflow_driver.py"
DEFAULT_VENV = REPO / ".bench" / "mlflow-venv"
MLFLOW_REQUIREMENT = "mlflow>=3,<4"
PAGE_SIZE = 100
TARGET_RATIO = 5.0
WARMUP = 10  # untimed calls of each kind before the timed phases
PHASES = ("register", "get", "search_tag", "search_metric", "promote", "alias", "register_lite")
LABELS = {
    "register": "register (metrics+tags)",
    "get": "get version",
    "search_tag": "search by tag",
    "search_metric": "search by metric",
    "promote": "promotion",
    "alias": "set alias",
    "register_lite": "register vs MLflow 1-call",
}


class BenchError(RuntimeError):
    """The benchmark could not run or a system returned wrong results."""


# --------------------------------------------------------------------------- workload


@dataclass
class Sizes:
    versions: int
    gets: int
    searches: int
    promotions: int

    @property
    def models(self) -> int:
        return max(1, self.versions // 100)


def make_workload(sizes: Sizes, seed: int) -> dict[str, Any]:
    """The operations both systems run, with the results each search must return."""
    rng = random.Random(seed)
    models = [f"bench_model_{i}" for i in range(sizes.models)]
    regs: list[dict[str, Any]] = []
    for i in range(sizes.versions):
        name = models[i % len(models)]
        # Versions are numbered 1, 2, ... per model in registration order, which is also
        # what MLflow assigns, so "name:version" means the same thing on both sides.
        version = str(i // len(models) + 1)
        regs.append({
            "name": name,
            "version": version,
            "metrics": {
                "accuracy": round(rng.uniform(0.5, 1.0), 6),
                "f1": round(rng.uniform(0.4, 1.0), 6),
                "latency_ms": round(rng.uniform(1.0, 50.0), 3),
            },
            "tags": sorted({f"grp_{i % 20}", f"team_{rng.randrange(5)}", "benchmark"}),
            "artifact_uri": f"s3://bench-bucket/{name}/{version}/model.pkl",
        })
    gets = [[r["name"], r["version"]] for r in (rng.choice(regs) for _ in range(sizes.gets))]
    n_tag = sizes.searches // 2
    tag_searches = [f"grp_{rng.randrange(min(20, sizes.versions))}" for _ in range(n_tag)]
    metric_searches: list[list[Any]] = []
    for j in range(sizes.searches - n_tag):
        if j % 2 == 0:
            metric_searches.append(["accuracy", ">=", round(rng.uniform(0.9, 0.99), 4)])
        else:
            metric_searches.append(["f1", "<", round(rng.uniform(0.42, 0.5), 4)])
    promos = []
    for j in range(min(sizes.promotions, sizes.versions)):
        # Successive promotions of one model: each approval must archive the previous
        # PRODUCTION version (MLflow: archive_existing_versions=True).
        promos.append([models[j % len(models)], str(j // len(models) + 1)])
    n_lite = max(2, sizes.versions // 5)
    lite = [
        {
            "name": "bench_lite",
            "lite_name": "bench_lite",
            "version": str(k + 1),
            "metrics": {
                "accuracy": round(rng.uniform(0.5, 1.0), 6),
                "f1": round(rng.uniform(0.4, 1.0), 6),
                "latency_ms": round(rng.uniform(1.0, 50.0), 3),
            },
            "tags": sorted({f"grp_{k % 20}", f"team_{rng.randrange(5)}", "benchmark"}),
            "artifact_uri": f"s3://bench-bucket/bench_lite/{k + 1}/model.pkl",
        }
        for k in range(n_lite)
    ]

    def hits(pred: Callable[[dict[str, Any]], bool]) -> int:
        return min(PAGE_SIZE, sum(1 for r in regs if pred(r)))

    ops = {">=": float.__ge__, "<": float.__lt__}
    by_key = {(r["name"], r["version"]): r for r in regs}
    return {
        "run_tag": f"{seed}-{time.time_ns()}",
        "page_size": PAGE_SIZE,
        "models": models,
        "lite_model": "bench_lite",
        "registrations": regs,
        "gets": gets,
        "tag_searches": tag_searches,
        "metric_searches": metric_searches,
        "promotions": promos,
        "aliases": promos,
        "lite_registrations": lite,
        "expected": {
            "get_tags": sum(len(by_key[(g[0], g[1])]["tags"]) for g in gets),
            "search_tag": [hits(lambda r, t=t: t in r["tags"]) for t in tag_searches],
            "search_metric": [hits(lambda r, c=c: ops[c[1]](float(r["metrics"][c[0]]), c[2]))
                              for c in metric_searches],
            "production": len({p[0] for p in promos}),
        },
    }


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    log_path: Path
    address: str

    def stop(self) -> None:
        if self.proc.poll() is None:
            # The server was started in its own session: its id is also its process group,
            # which holds the worker processes it forked (MLflow's uvicorn workers).
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)


def _spawn(
    cmd: Sequence[str], log_path: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    with open(log_path, "wb") as fh:
        return subprocess.Popen(
            list(cmd),
            stdout=fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=env,
        )


def _wait(server: Server, ready: Callable[[], bool], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise BenchError(f"{what} exited with {server.proc.returncode}: "
                             f"{server.log_path.read_text(errors='replace')[-2000:]}")
        if ready():
            return
        time.sleep(0.1)
    server.stop()
    raise BenchError(f"{what} not ready after {timeout:.0f}s; log {server.log_path}")


def neural_command() -> list[str]:
    script = Path(sys.executable).with_name("neural-mlops")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from neural.mlops.cli import main; sys.exit(main())"]


def start_neural(workdir: Path) -> Server:
    port = free_port()
    address = f"127.0.0.1:{port}"
    log_path = workdir / "neural-mlops.log"
    cmd = [*neural_command(), "serve", "--data-dir", str(workdir / "data"), "--listen", address]
    server = Server(_spawn(cmd, log_path), log_path, address)
    marker = f"listening on {address}"
    _wait(server, lambda: marker in log_path.read_text(errors="replace"), "neural-mlops serve", 60)
    return server


def start_mlflow(venv: Path, workdir: Path) -> Server:
    port = free_port()
    address = f"127.0.0.1:{port}"
    log_path = workdir / "mlflow-server.log"
    cmd = [str(venv / "bin" / "mlflow"), "server",
           "--backend-store-uri", f"sqlite:///{workdir / 'mlflow.db'}",
           "--default-artifact-root", str(workdir / "mlflow-artifacts"),
           "--host", "127.0.0.1", "--port", str(port)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["PATH"] = f"{venv / 'bin'}:{env.get('PATH', '')}"
    # MLflow 3 starts background job runners (huey consumers for its GenAI jobs) with the
    # server; they have nothing to do with the registry and poll constantly, which on a
    # 2-core machine slows its request workers several-fold. Off, in MLflow's favour.
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    server = Server(_spawn(cmd, log_path, env), log_path, address)

    def healthy() -> bool:
        try:
            with urllib.request.urlopen(f"http://{address}/health", timeout=1) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    _wait(server, healthy, "mlflow server", 180)
    return server


# --------------------------------------------------------------------------- MLflow venv


def mlflow_ready(venv: Path) -> bool:
    python = venv / "bin" / "python"
    if not python.exists() or not (venv / "bin" / "mlflow").exists():
        return False
    probe = subprocess.run([str(python), "-c", "import mlflow, mlflow.server"], capture_output=True)
    return probe.returncode == 0


def ensure_mlflow_venv(venv: Path) -> None:
    """Create ``venv`` with mlflow in it unless it is already usable."""
    if mlflow_ready(venv):
        return
    log.info(
        "creating MLflow virtualenv (first run only)",
        venv=str(venv),
        requirement=MLFLOW_REQUIREMENT,
    )
    if venv.exists():
        shutil.rmtree(venv)
    venv.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    done = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
                           MLFLOW_REQUIREMENT], capture_output=True, text=True)
    if done.returncode != 0 or not mlflow_ready(venv):
        raise BenchError(
            f"could not install {MLFLOW_REQUIREMENT} into {venv}: {done.stderr[-2000:]}"
        )


# --------------------------------------------------------------------------- our side


def run_neural(
    workload: dict[str, Any], workdir: Path, profile: Path | None = None
) -> dict[str, Any]:
    """Play ``workload`` against a fresh ``neural-mlops serve``; phases and result counts.
    With ``profile``, py-spy samples the server for the whole run and writes a flame graph."""
    from neural.mlops.registry import ModelRegistry

    server = start_neural(workdir)
    spy: subprocess.Popen[bytes] | None = None
    if profile is not None:
        exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        fmt = {".txt": "raw", ".json": "speedscope"}.get(profile.suffix, "flamegraph")
        spy = _spawn(
            [
                exe,
                "record",
                "--rate",
                "250",
                "--format",
                fmt,
                "--pid",
                str(server.proc.pid),
                "-o",
                str(profile),
            ],
            workdir / "py-spy.log",
        )
        time.sleep(1.0)
    try:
        reg = ModelRegistry(f"grpc://{server.address}")
        try:
            return _play_neural(reg, workload)
        finally:
            reg.close()
    finally:
        server.stop()
        if spy is not None:
            try:
                spy.wait(timeout=60)
            except subprocess.TimeoutExpired:
                spy.send_signal(signal.SIGINT)
                spy.wait(timeout=30)


def _play_neural(reg: Any, w: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"phases": {}, "counts": {}}
    page = int(w["page_size"])
    for i in range(WARMUP):
        reg.register_model("bench_warmup", str(i + 1), artifact_uri="s3://bench/warmup",
                           tags=["w"], created_by="bench")
        reg.get_model_version("bench_warmup", str(i + 1))
        reg.search_models(tags=["w"], page_size=page)

    def timed(phase: str, items: list[Any], fn: Callable[[Any], None]) -> None:
        t0 = time.perf_counter()
        for item in items:
            fn(item)
        out["phases"][phase] = {"n": len(items), "seconds": time.perf_counter() - t0}

    def register(r: dict[str, Any]) -> None:
        reg.register_model(r["name"], r["version"], artifact_uri=r["artifact_uri"],
                           metrics=r["metrics"], tags=r["tags"], created_by="bench")

    timed("register", w["registrations"], register)

    got: list[int] = []
    timed("get", w["gets"], lambda g: got.append(len(reg.get_model_version(g[0], g[1]).tags)))
    out["counts"]["get_tags"] = sum(got)

    tag_hits: list[int] = []
    timed("search_tag", w["tag_searches"],
          lambda t: tag_hits.append(len(reg.search_models(tags=[t], page_size=page).items)))
    out["counts"]["search_tag"] = tag_hits

    metric_hits: list[int] = []
    timed("search_metric", w["metric_searches"], lambda c: metric_hits.append(len(
        reg.search_models(metric_conditions=[f"{c[0]} {c[1]} {c[2]!r}"], page_size=page).items)))
    out["counts"]["search_metric"] = metric_hits

    def promote(p: list[str]) -> None:
        reg.request_promotion(p[0], p[1], "production", requested_by="alice",
                              justification="benchmark")
        reg.approve_promotion(p[0], p[1], approver="bob", comment="ok")

    timed("promote", w["promotions"], promote)
    timed("alias", w["aliases"], lambda p: reg.set_alias(p[0], "champion", p[1], actor="alice"))
    timed("register_lite", w["lite_registrations"], register)
    out["counts"]["production"] = sum(
        len(reg.get_latest_versions(name, ["production"]))
        for name in sorted({p[0] for p in w["promotions"]})
    )
    return out


# --------------------------------------------------------------------------- MLflow side


def run_mlflow(workload: dict[str, Any], workdir: Path, venv: Path) -> dict[str, Any]:
    """Play ``workload`` against a fresh MLflow server via the driver in ``venv``."""
    server = start_mlflow(venv, workdir)
    try:
        wl_path = workdir / "workload.json"
        wl_path.write_text(json.dumps(workload))
        done = subprocess.run(
            [str(venv / "bin" / "python"), str(DRIVER), str(wl_path), f"http://{server.address}"],
            capture_output=True,
            text=True,
            env={k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")},
        )
        if done.returncode != 0:
            raise BenchError(f"MLflow driver failed ({done.returncode}): {done.stderr[-3000:]}")
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        return result
    finally:
        server.stop()


# --------------------------------------------------------------------------- report


def check_counts(system: str, result: dict[str, Any], expected: dict[str, Any]) -> None:
    for key, want in expected.items():
        got = result["counts"].get(key)
        if got != want:
            raise BenchError(
                f"{system} returned wrong results for {key}: got {got}, expected {want}"
            )


@dataclass
class Row:
    phase: str
    n: int
    ours: list[float] = field(default_factory=list)
    theirs: list[float] = field(default_factory=list)

    @property
    def ratio(self) -> float | None:
        if not self.ours or not self.theirs:
            return None
        return statistics.median(self.ours) / statistics.median(self.theirs)


def collect(runs: list[tuple[dict[str, Any], dict[str, Any] | None]]) -> list[Row]:
    rows = []
    for phase in PHASES:
        first = runs[0][0]["phases"][phase]
        row = Row(phase, int(first["n"]))
        for ours, theirs in runs:
            p = ours["phases"][phase]
            row.ours.append(p["n"] / p["seconds"] if p["seconds"] > 0 else float("inf"))
            if theirs is not None:
                q = theirs["phases"][phase]
                row.theirs.append(q["n"] / q["seconds"] if q["seconds"] > 0 else float("inf"))
        rows.append(row)
    return rows


def _fmt(values: list[float]) -> str:
    if not values:
        return "skipped"
    med = statistics.median(values)
    if len(values) == 1:
        return f"{med:,.1f}"
    return f"{med:,.1f} [{min(values):,.0f}-{max(values):,.0f}]"


def render(rows: list[Row], repeats: int, mlflow_version: str | None) -> str:
    header = (
        "operation",
        "n",
        "neural-mlops ops/s",
        "MLflow ops/s",
        "ours/MLflow",
        f">={TARGET_RATIO:g}x",
    )
    body = []
    for r in rows:
        ratio = r.ratio
        body.append((
            LABELS[r.phase], str(r.n), _fmt(r.ours), _fmt(r.theirs),
            "-" if ratio is None else f"{ratio:.2f}x",
            "-" if ratio is None else ("yes" if ratio >= TARGET_RATIO else "NO"),
        ))
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(header)]
    lines = [
        f"registry throughput, median of {repeats} repeat(s) [min-max]; "
        f"MLflow {mlflow_version or 'not run'}; one sequential client each, loopback",
        "  ".join(
            h.ljust(widths[i]) if i == 0 else h.rjust(widths[i]) for i, h in enumerate(header)
        ),
    ]
    lines.append("  ".join("-" * w for w in widths))
    for b in body:
        lines.append(
            "  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(b))
        )
    lines.append(
        "Noisy shared machine: absolute ops/s vary between runs; the ratios are what count."
    )
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--smoke", action="store_true", help="tiny counts (10/10/4/2), one repeat")
    p.add_argument("--versions", type=int, default=1000)
    p.add_argument("--gets", type=int, default=1000)
    p.add_argument("--searches", type=int, default=200, help="half by tag, half by metric")
    p.add_argument("--promotions", type=int, default=100)
    p.add_argument("--repeats", type=int, default=None, help="default 3 (1 with --smoke)")
    p.add_argument("--seed", type=int, default=20261127)
    p.add_argument("--mlflow", choices=["auto", "require", "skip"], default=None,
                   help="require: create the venv if needed (default); auto: use it only if it "
                        "already exists (default with --smoke); skip: ours only")
    p.add_argument("--mlflow-venv", type=Path, default=DEFAULT_VENV)
    p.add_argument("--json", type=Path, help="also write the raw results here")
    p.add_argument("--keep", action="store_true", help="keep the temporary stores and logs")
    p.add_argument("--py-spy", type=Path, metavar="OUT",
                   help="profile our server in the first repeat with `py-spy record` "
                        "(pip install py-spy): OUT.svg flame graph, OUT.txt collapsed stacks, "
                        "OUT.json speedscope")
    args = p.parse_args(argv)
    if args.smoke:
        args.versions, args.gets, args.searches, args.promotions = 10, 10, 4, 2
    args.repeats = args.repeats or (1 if args.smoke else 3)
    args.mlflow = args.mlflow or ("auto" if args.smoke else "require")
    for name in ("versions", "gets", "searches", "promotions", "repeats"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be at least 1")
    if args.searches < 2:
        p.error("--searches must be at least 2 (one by tag, one by metric)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    sizes = Sizes(args.versions, args.gets, args.searches, args.promotions)
    use_mlflow = False
    if args.mlflow == "require":
        ensure_mlflow_venv(args.mlflow_venv)
        use_mlflow = True
    elif args.mlflow == "auto":
        use_mlflow = mlflow_ready(args.mlflow_venv)
        if not use_mlflow:
            log.warning("MLflow virtualenv not found; running neural-mlops only",
                        venv=str(args.mlflow_venv), hint="run once without --smoke to create it")

    root = Path(tempfile.mkdtemp(prefix="bench-registry-"))
    runs: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
    mlflow_version = None
    try:
        for rep in range(args.repeats):
            workload = make_workload(sizes, args.seed + rep)
            ours_dir, theirs_dir = root / f"r{rep}-neural", root / f"r{rep}-mlflow"
            ours_dir.mkdir()
            theirs_dir.mkdir()
            theirs: dict[str, Any] | None = None
            # Alternate which system goes first so slow drift of the machine hits both.
            order = ["ours", "mlflow"] if rep % 2 == 0 else ["mlflow", "ours"]
            for system in order:
                if system == "ours":
                    ours = run_neural(workload, ours_dir, args.py_spy if rep == 0 else None)
                    check_counts("neural-mlops", ours, workload["expected"])
                elif use_mlflow:
                    theirs = run_mlflow(workload, theirs_dir, args.mlflow_venv)
                    check_counts("MLflow", theirs, workload["expected"])
                    mlflow_version = theirs.get("mlflow_version")
            log.info("repeat done", repeat=rep + 1, of=args.repeats)
            runs.append((ours, theirs))
    except BenchError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        print(f"stores and logs kept in {root}", file=sys.stderr)
        return 1
    else:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    rows = collect(runs)
    print(render(rows, args.repeats, mlflow_version))
    if args.json:
        args.json.write_text(json.dumps({
            "sizes": vars(sizes), "repeats": args.repeats, "mlflow_version": mlflow_version,
            "target_ratio": TARGET_RATIO,
            "rows": [{"phase": r.phase, "n": r.n, "ours_ops_per_s": r.ours,
                      "mlflow_ops_per_s": r.theirs,
                      "ours_median": statistics.median(r.ours),
                      "mlflow_median": statistics.median(r.theirs) if r.theirs else None,
                      "ratio": r.ratio} for r in rows],
        }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
