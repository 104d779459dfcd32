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
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from neural.mlops.cli._demo_ab import ab_phase
from neural.mlops.cli._demo_processes import Processes, free_port
from neural.mlops.cli._demo_rollout import canary_phase, registry_phase, registry_summary
from neural.mlops.cli._demo_traffic import MODEL, Traffic
from neural.mlops.cli._progress import Live


@dataclass(frozen=True)
class Pace:
    """How long each phase may take; ``--fast`` is for tests and impatient people."""

    step_seconds: float
    interval: float
    min_requests: int
    max_ab_users: int
    rps: float


PACES = {"normal": Pace(3.0, 0.5, 60, 30000, 120.0), "fast": Pace(1.0, 0.25, 25, 30000, 160.0)}


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
                f"127.0.0.1:{free_port()}",
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
                f"127.0.0.1:{free_port()}",
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
        registry_phase(target, live)
        outcome["ab"] = ab_phase(target, models, pace, live)
        traffic = Traffic(sidecar, pace.rps, unrouted="v1")  # the sidecar's --upstream
        traffic.start()
        outcome["canary_v2"] = canary_phase(target, "v2", models["v2"], pace, traffic, live)
        outcome["canary_v3"] = canary_phase(target, "v3", models["v3"], pace, traffic, live)
        traffic.stop()
        live.line("")
        live.line("SUMMARY")
        live.line(f"  A/B test        {outcome['ab']}")
        live.line(f"  canary v2       {outcome['canary_v2']}")
        live.line(f"  canary v3       {outcome['canary_v3']}")
        live.line(f"  registry        {registry_summary(target)}")
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
