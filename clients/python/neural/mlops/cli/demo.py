"""``neural-mlops demo``: the whole product on loopback in one command.

Starts a control plane (embedded SQLite store in a scratch folder), three demo model
servers (fraud_detector v1 and v2, and a faulty v3), and a sidecar in front of them;
then, with a live display:

1. registers the three versions and approves v1 into PRODUCTION;
2. runs an A/B test v1 vs v2 (sequential test, safe to watch continuously) with a
   simulated prediction service until it reaches a verdict, and concludes it;
3. approves v2 and rolls it out as a canary through the sidecar under live traffic:
   the control plane's rollout controller promotes it step by step;
4. approves the faulty v3 and canaries it: its errors trip the rollback threshold and
   the controller rolls it back on its own within seconds.

Everything is stopped (and the scratch folder removed unless ``--keep``) at the end or
on Ctrl-C. Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neural.mlops.cli._progress import Live, bar

MODEL = "fraud_detector"
MODEL_INFER = "/inference.GRPCInferenceService/ModelInfer"
_READY = re.compile(r"listening on (\S+:\d+)")


@dataclass(frozen=True)
class Pace:
    """How long each phase may take; ``--fast`` is for tests and impatient people."""

    step_seconds: float
    interval: float
    min_requests: int
    max_ab_users: int
    rps: float


PACES = {"normal": Pace(3.0, 0.5, 60, 30000, 120.0), "fast": Pace(1.0, 0.25, 25, 30000, 160.0)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Processes:
    """Child processes of the demo, stopped in reverse order."""

    procs: list[tuple[str, subprocess.Popen[str]]] = field(default_factory=list)
    log_dir: Path | None = None

    def spawn(self, label: str, *args: str) -> subprocess.Popen[str]:
        """Start ``neural-mlops ARGS`` (stderr to logs/LABEL.log); see :meth:`ready`."""
        assert self.log_dir is not None
        err = open(self.log_dir / f"{label}.log", "w")  # noqa: SIM115 (kept open for the child)
        proc = subprocess.Popen(
            [sys.executable, "-m", "neural.mlops", *args],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            start_new_session=True,
        )
        self.procs.append((label, proc))
        return proc

    def ready(self, label: str, proc: subprocess.Popen[str], timeout: float = 90.0) -> str:
        """Wait for the child's "listening on HOST:PORT" line and return the address."""
        assert proc.stdout is not None and self.log_dir is not None
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"{label} exited with {proc.returncode}: {''.join(seen)} "
                        f"(log: {self.log_dir / (label + '.log')})"
                    )
                continue
            seen.append(line)
            if m := _READY.search(line):
                threading.Thread(target=self._drain, args=(proc,), daemon=True).start()
                return m.group(1)
        raise RuntimeError(f"{label} did not start within {timeout:g}s")

    @staticmethod
    def _drain(proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for _ in proc.stdout:
            pass

    def stop(self) -> None:
        for _, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for _, proc in reversed(self.procs):
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs.clear()


class Traffic:
    """Inference calls through the sidecar from a pool of users, counted per variant."""

    def __init__(self, address: str, rps: float) -> None:
        import grpc

        from neural.mlops.v1 import oip_pb2

        self._pb = oip_pb2
        self.channel = grpc.insecure_channel(address)
        self.call = self.channel.unary_unary(
            MODEL_INFER,
            request_serializer=oip_pb2.ModelInferRequest.SerializeToString,
            response_deserializer=oip_pb2.ModelInferResponse.FromString,
        )
        self.period = 1.0 / rps
        self.recent: deque[tuple[float, str, bool]] = deque()
        self.total = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._n = 0

    def _request(self) -> Any:
        req = self._pb.ModelInferRequest(model_name=MODEL)
        req.inputs.add(name="features", datatype="FP32", shape=[1, 4])
        req.raw_input_contents.append(b"\x00\x00\x80?" * 4)  # four float32 1.0
        return req

    def _worker(self, index: int) -> None:
        import grpc

        req = self._request()
        next_at = time.monotonic()
        while not self._stop.is_set():
            with self._lock:
                self._n += 1
                user = f"user{(self._n * 7919 + index) % 5000}"
            variant, ok = "?", True
            try:
                _, call = self.call.with_call(req, metadata=[("x-user-id", user)], timeout=5)
                variant = dict(call.initial_metadata() or ()).get("x-neural-variant", "-")
            except grpc.RpcError as err:
                ok = False
                md = dict(err.initial_metadata() or ()) if hasattr(err, "initial_metadata") else {}
                variant = md.get("x-neural-variant", "?")
            now = time.monotonic()
            with self._lock:
                self.total += 1
                self.recent.append((now, variant, ok))
                while self.recent and self.recent[0][0] < now - 1.0:
                    self.recent.popleft()
            next_at += self.period * len(self._threads)
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def start(self, workers: int = 3) -> None:
        self._stop.clear()
        self._threads = [
            threading.Thread(target=self._worker, args=(i,), daemon=True) for i in range(workers)
        ]
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(10)
        self._threads = []

    def split(self) -> str:
        """What callers saw in the last second: share per variant and error rate."""
        with self._lock:
            items = list(self.recent)
        if not items:
            return "no traffic yet"
        counts = Counter(v for _, v, _ in items)
        errors = sum(1 for _, _, ok in items if not ok)
        shares = " ".join(f"{k} {n / len(items):4.0%}" for k, n in sorted(counts.items()))
        return f"callers saw {shares} | errors {errors / len(items):4.1%} | {len(items)} req/s"

    def close(self) -> None:
        self.stop()
        self.channel.close()


def _converts(user: str, variant: str) -> bool:
    """The simulated business outcome: v2 converts 15% of users, v1 10%."""
    u = int.from_bytes(hashlib.sha256(f"demo-outcome:{user}".encode()).digest()[:8], "big") / 2**64
    return u < (0.15 if variant == "treatment" else 0.10)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "demo",
        help="run the whole system on loopback: A/B test, canary, rollback",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--fast", action="store_true", help="shorter phases (about a minute in all)")
    p.add_argument("--keep", action="store_true", help="keep the scratch folder (store and logs)")
    p.add_argument("--data-dir", type=Path, help="scratch folder (default: a new temporary one)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    pace = PACES["fast" if args.fast else "normal"]
    root = (
        Path(args.data_dir)
        if args.data_dir
        else Path(tempfile.mkdtemp(prefix="neural-mlops-demo-"))
    )
    root.mkdir(parents=True, exist_ok=True)
    (root / "logs").mkdir(exist_ok=True)
    procs = Processes(log_dir=root / "logs")
    live = Live()
    outcome: dict[str, Any] = {}
    traffic: Traffic | None = None
    os.environ.setdefault("NEURAL_MLOPS_LOG_LEVEL", "warning")
    try:
        live.line(f"neural-mlops demo: scratch folder {root}")
        # Start the control plane and the model servers together (each takes a few seconds
        # to import), then the sidecar, which needs their addresses.
        started = {
            "control-plane": procs.spawn(
                "control-plane",
                "serve",
                "--data-dir",
                str(root / "store"),
                "--listen",
                "127.0.0.1:0",
                "--log-level",
                "warning",
            )
        }
        for version, extra in (
            ("v1", ["--latency-ms", "4"]),
            ("v2", ["--latency-ms", "3"]),
            ("v3", ["--latency-ms", "6", "--error-rate", "0.25", "--seed", "3"]),
        ):
            started[f"model-{version}"] = procs.spawn(
                f"model-{version}",
                "demo-model",
                "--name",
                MODEL,
                "--listen",
                f"127.0.0.1:{_free_port()}",
                *extra,
            )
        addresses = {label: procs.ready(label, proc) for label, proc in started.items()}
        cp = addresses["control-plane"]
        models = {v: addresses[f"model-{v}"] for v in ("v1", "v2", "v3")}
        sidecar = procs.ready(
            "sidecar",
            procs.spawn(
                "sidecar",
                "sidecar",
                "--listen",
                f"127.0.0.1:{_free_port()}",
                "--upstream",
                models["v1"],
                "--control-plane",
                cp,
                "--flush-interval",
                "0.25",
                "--log-level",
                "warning",
            ),
        )
        live.line(
            f"  control plane grpc://{cp} | sidecar {sidecar} | model servers "
            + ", ".join(f"{v}@{a}" for v, a in models.items())
        )
        target = f"grpc://{cp}"
        _registry_phase(target, live)
        outcome["ab"] = _ab_phase(target, models, pace, live)
        traffic = Traffic(sidecar, pace.rps)
        traffic.start()
        outcome["canary_v2"] = _canary_phase(target, "v2", models["v2"], pace, traffic, live)
        outcome["canary_v3"] = _canary_phase(target, "v3", models["v3"], pace, traffic, live)
        traffic.stop()
        live.line("")
        live.line("SUMMARY")
        live.line(f"  A/B test        {outcome['ab']}")
        live.line(f"  canary v2       {outcome['canary_v2']}")
        live.line(f"  canary v3       {outcome['canary_v3']}")
        live.line(f"  registry        {_registry_summary(target)}")
        live.line(f"  requests sent through the sidecar: {traffic.total}")
        if args.keep:
            live.line(
                f"  explore afterwards: neural-mlops serve --data-dir {root / 'store'} & "
                "neural-mlops status"
            )
        ok = (
            outcome["ab"].startswith("ship_treatment")
            and outcome["canary_v2"].startswith("promoted")
            and outcome["canary_v3"].startswith("rolled back")
        )
        return 0 if ok else 1
    finally:
        live.close()
        if traffic is not None:
            traffic.close()
        procs.stop()
        if not args.keep and not args.data_dir:
            shutil.rmtree(root, ignore_errors=True)
        elif args.keep:
            print(f"kept {root} (store in store/, process logs in logs/)")


def _registry_summary(target: str) -> str:
    """What the registry says now: after a rollback it names the version serving again."""
    from neural.mlops.registry import ModelRegistry, ModelStage

    with ModelRegistry(target) as reg:
        versions = list(reg.list_versions(MODEL))
    by_stage: dict[str, list[str]] = {}
    for mv in versions:
        by_stage.setdefault(mv.stage.value.upper(), []).append(mv.version)
    prod = by_stage.get(ModelStage.PRODUCTION.value.upper(), [])
    archived = by_stage.get(ModelStage.ARCHIVED.value.upper(), [])
    return f"PRODUCTION {', '.join(prod) or '-'}; archived {', '.join(archived) or '-'}"


def _registry_phase(target: str, live: Live) -> None:
    from neural.mlops.registry import ModelRegistry, ModelStage

    live.line("")
    live.line("1. REGISTRY: three versions; v1 approved into PRODUCTION")
    with ModelRegistry(target) as reg:
        for version, acc in (("v1", 0.931), ("v2", 0.957), ("v3", 0.962)):
            mv = reg.register_model(
                MODEL,
                version,
                artifact_uri=f"s3://demo/{MODEL}/{version}/model.onnx",
                framework="onnx",
                created_by="data_scientist@company.com",
                metrics={"accuracy": acc},
                tags=["demo"],
            )
            live.line(f"   registered {mv.ref} accuracy={acc}")
        reg.request_promotion(
            MODEL,
            "v1",
            ModelStage.PRODUCTION,
            "ml_engineer@company.com",
            "baseline",
            ["ml_manager@company.com"],
        )
        reg.approve_promotion(MODEL, "v1", "ml_manager@company.com", "baseline approved")
        live.line("   v1 -> PRODUCTION (requested by ml_engineer, approved by ml_manager)")


def _ab_phase(target: str, models: dict[str, str], pace: Pace, live: Live) -> str:
    """A prediction service asks for each user's arm, calls that version's model server,
    and reports the outcome; the sequential test may be watched after every batch."""
    import grpc

    from neural.mlops.ab_testing import ABTestManager
    from neural.mlops.v1 import oip_pb2
    from neural.mlops.v1.assignment import assign

    live.line("")
    live.line("2. A/B TEST: v2 (treatment) against v1 (control), 50/50, sequential decision rule")
    channels = {v: grpc.insecure_channel(models[v]) for v in ("v1", "v2")}
    calls = {
        v: ch.unary_unary(
            MODEL_INFER,
            request_serializer=oip_pb2.ModelInferRequest.SerializeToString,
            response_deserializer=oip_pb2.ModelInferResponse.FromString,
        )
        for v, ch in channels.items()
    }
    req = oip_pb2.ModelInferRequest(model_name=MODEL)
    req.inputs.add(name="features", datatype="FP32", shape=[1, 4])
    req.raw_input_contents.append(b"\x00\x00\x80?" * 4)
    verdict = "no verdict"
    pool = ThreadPoolExecutor(max_workers=6, thread_name_prefix="demo-app")
    try:
        with ABTestManager(target) as ab:
            test = ab.create_test(
                name="fraud_detector v2 vs v1",
                description="demo",
                control_variant=f"{MODEL}:v1",
                treatment_variant=f"{MODEL}:v2",
                traffic_split=0.5,
                created_by="ml_engineer@company.com",
                decision_rule="sequential",
                minimum_detectable_effect=0.2,
            )
            ab.start_test(test.test_id)
            weights = [v.weight for v in test.variants]
            names = [v.name for v in test.variants]
            version_of = {"treatment": "v2", "control": "v1"}
            users = 0
            analysis: dict[str, Any] = {}

            def serve_user(user: str) -> dict[str, Any]:
                arm = names[assign(test.test_id, user, weights)]
                t0 = time.perf_counter()
                ok = True
                try:
                    calls[version_of[arm]](req, timeout=5, metadata=[("x-user-id", user)])
                except grpc.RpcError:
                    ok = False
                return {
                    "variant": arm,
                    "user_id": user,
                    "latency": time.perf_counter() - t0,
                    "success": ok and _converts(user, arm),
                    "error": not ok,
                }

            while users < pace.max_ab_users:
                batch = list(pool.map(serve_user, (f"customer{users + i}" for i in range(250))))
                users += len(batch)
                ab.record_requests(test.test_id, batch)
                batch = []
                analysis = ab.analyze_test(test.test_id)
                c, t = analysis["control"], analysis["treatment"]
                rec = analysis["recommendation"]
                p = analysis.get("sequential", {}).get("p_value", analysis.get("p_value"))
                live.status(
                    f"   users {users:6d} | control {c['success_rate'] or 0:6.2%} (n={c['n']}) | "
                    f"treatment {t['success_rate'] or 0:6.2%} (n={t['n']}) | "
                    f"always-valid p {p if p is not None else float('nan'):.3g} | {rec['action']}"
                )
                if rec["action"] != "keep_running":
                    break
            rec = analysis["recommendation"]
            live.settle()
            live.line(f"   verdict after {users} users: {rec['action']} ({rec['reason']})")
            if rec["action"] in ("ship_treatment", "keep_control"):
                done = ab.conclude_test(
                    test.test_id, reason="demo: sequential test reached a verdict"
                )
                live.line(f"   concluded {test.test_id}: winner {done.winner}")
                lift = analysis.get("improvement", {}).get("relative_improvement")
                verdict = f"{rec['action']} after {users} users" + (
                    f", lift {lift:+.1f}%" if lift else ""
                )
            else:
                ab.stop_test(test.test_id, "demo: no verdict within the user budget")
                verdict = f"no verdict after {users} users"
    finally:
        pool.shutdown()
        for ch in channels.values():
            ch.close()
    return verdict


def _canary_phase(
    target: str, version: str, upstream: str, pace: Pace, traffic: Traffic, live: Live
) -> str:
    from neural.mlops.deployment import (
        DeploymentManager,
        DeploymentStatus,
        DeploymentStrategy,
        RollbackConfig,
    )
    from neural.mlops.registry import ModelRegistry, ModelStage

    live.line("")
    faulty = version == "v3"
    live.line(
        f"{3 if not faulty else 4}. CANARY: {MODEL}:{version} through the sidecar under live traffic"
        + (" (this build fails 25% of its calls)" if faulty else "")
    )
    with ModelRegistry(target) as reg:
        reg.request_promotion(
            MODEL,
            version,
            ModelStage.PRODUCTION,
            "ml_engineer@company.com",
            "hotfix" if faulty else "won the A/B test",
            ["ml_manager@company.com"],
        )
        reg.approve_promotion(MODEL, version, "ml_manager@company.com", "approved")
    live.line(f"   {version} approved into PRODUCTION; rollout starts at 10% of traffic")
    with DeploymentManager(target) as dm:
        dep = dm.create_deployment(
            MODEL,
            version,
            DeploymentStrategy.CANARY,
            created_by="devops@company.com",
            rollback_config=RollbackConfig(
                error_rate_threshold=0.05,
                latency_threshold_multiplier=5.0,
                min_requests_before_check=pace.min_requests,
            ),
            steps=[10, 25, 50, 100],
            step_duration_seconds=pace.step_seconds,
            analysis_interval_seconds=pace.interval,
            upstream=upstream,
        )
        seq = 0
        deadline = time.monotonic() + 40 * pace.step_seconds + 60
        while True:
            dep = dm.get_deployment(dep.deployment_id)
            for event in dm.get_events(dep.deployment_id, seq):
                seq = event.seq
                reasons = (event.details or {}).get("reasons") or []
                why = f": {'; '.join(reasons)}" if reasons else ""
                live.line(
                    f"   {event.at.astimezone():%H:%M:%S} {event.action:<11} {bar(event.traffic_percentage)}"
                    f" -> {event.to_status.value}{why}"
                )
            live.status(
                f"   {version} {bar(dep.traffic_percentage)} {dep.status.value:<11} | {traffic.split()}"
            )
            if not dep.active or time.monotonic() > deadline:
                break
            time.sleep(0.25)
        live.settle()
        live.line(
            f"   {version} {bar(dep.traffic_percentage)} {dep.status.value:<11} | {traffic.split()}"
        )
        if dep.active:
            dm.abort(dep.deployment_id, "devops@company.com", "demo time limit")
            return "timed out (aborted)"
    if dep.status is DeploymentStatus.COMPLETED:
        return f"promoted to 100% in {len(dep.plan.steps)} steps"
    if dep.status is DeploymentStatus.ROLLED_BACK:
        return "rolled back: " + "; ".join(dep.rollback_reasons)
    return dep.status.value
