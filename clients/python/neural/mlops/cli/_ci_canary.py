"""``neural-mlops ci canary``: start a canary deployment and watch it until it is promoted
(exit 0), rolled back (1) or the watch times out (1)."""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING

from neural.mlops.cli._output import add_common, emit
from neural.mlops.cli.ci import EXIT_ROLLED_BACK, EXIT_TIMEOUT, add_token, parse_duration
from neural.mlops.server.errors import InvalidArgument

if TYPE_CHECKING:  # imported when a command runs, so that the CLI starts fast
    from neural.mlops.cli._progress import Live
    from neural.mlops.deployment import Deployment, DeploymentManager


def add_canary(ci: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """The ``canary`` sub-command."""
    can = ci.add_parser(
        "canary", help="canary-deploy a version and watch it until promoted or rolled back"
    )
    can.add_argument("--model", required=True, help="model name")
    can.add_argument("--version", required=True, help="the version to roll out")
    can.add_argument(
        "--initial-percent",
        type=float,
        default=10.0,
        help="first step's share of traffic (default %(default)s)",
    )
    can.add_argument(
        "--steps",
        metavar="P1,P2,...",
        help="traffic steps in percent (default: initial, 25, 50, 100)",
    )
    can.add_argument("--step-duration", default="5m", help="hold per step (default %(default)s)")
    can.add_argument(
        "--analysis-interval", default="60s", help="health check period (default %(default)s)"
    )
    can.add_argument(
        "--error-rate-threshold",
        type=float,
        default=0.05,
        help="roll back when the canary's error rate exceeds this fraction",
    )
    can.add_argument(
        "--latency-multiplier",
        type=float,
        default=2.0,
        help="roll back when p95 exceeds the baseline p95 times this",
    )
    can.add_argument(
        "--min-requests",
        type=int,
        default=100,
        help="requests a step needs before it is judged (default %(default)s)",
    )
    can.add_argument(
        "--baseline-latency-p95",
        type=float,
        help="seconds: the p95 --latency-multiplier applies to (default: no latency limit)",
    )
    can.add_argument(
        "--baseline-error-rate", type=float, help="fraction, recorded with the deployment"
    )
    can.add_argument(
        "--stable-version", help="version traffic falls back to (default: the previous one)"
    )
    can.add_argument("--created-by", required=True)
    can.add_argument("--timeout", default="2h", help="give up watching after this long")
    can.add_argument("--interval", default="2s", help="progress poll interval")
    can.add_argument(
        "--abort-on-timeout",
        action="store_true",
        help="abort the rollout (traffic back to stable) when the timeout passes",
    )
    add_token(can)
    add_common(can)
    can.set_defaults(handler=cmd_canary)


def _steps(args: argparse.Namespace) -> list[float]:
    if args.steps:
        try:
            steps = [float(x) for x in args.steps.split(",") if x.strip()]
        except ValueError:
            raise InvalidArgument(
                f"--steps: expected percentages like 10,25,50,100, got {args.steps!r}",
                field="steps",
            ) from None
    else:
        steps = [args.initial_percent] + [
            p for p in (25.0, 50.0, 100.0) if p > args.initial_percent
        ]
    if not steps or steps[-1] != 100.0:
        raise InvalidArgument("--steps must end at 100", field="steps")
    return steps


def cmd_canary(args: argparse.Namespace) -> int:
    from neural.mlops._channel import is_remote
    from neural.mlops.cli._progress import Live
    from neural.mlops.deployment import (
        DeploymentManager,
        DeploymentStrategy,
        PerformanceMetrics,
        RollbackConfig,
    )

    timeout = parse_duration(args.timeout, "--timeout")
    interval = max(0.05, parse_duration(args.interval, "--interval"))
    manager = DeploymentManager(args.target, token=args.token)
    embedded = not is_remote(args.target)
    live = Live() if not args.json else None
    try:
        dep = manager.create_deployment(
            model_name=args.model,
            model_version=args.version,
            strategy=DeploymentStrategy.CANARY,
            created_by=args.created_by,
            baseline_metrics=PerformanceMetrics(
                latency_p95=args.baseline_latency_p95, error_rate=args.baseline_error_rate
            ),
            rollback_config=RollbackConfig(
                error_rate_threshold=args.error_rate_threshold,
                latency_threshold_multiplier=args.latency_multiplier,
                min_requests_before_check=args.min_requests,
            ),
            steps=_steps(args),
            step_duration_seconds=parse_duration(args.step_duration, "--step-duration"),
            analysis_interval_seconds=parse_duration(args.analysis_interval, "--analysis-interval"),
            stable_version=args.stable_version,
        )
        if live:
            live.line(
                f"canary {dep.deployment_id}: {dep.model_name}:{dep.model_version} "
                f"steps {', '.join(f'{p:g}%' for p in dep.plan.steps)}"
            )
        dep = _watch(manager, dep, live, embedded, interval, time.monotonic() + timeout)
        if dep.active and args.abort_on_timeout:
            dep = manager.abort(
                dep.deployment_id, args.created_by, f"ci canary timed out after {args.timeout}"
            )
    finally:
        if live:
            live.close()
        manager.close()

    emit(args, dep, lambda: None)
    return _outcome(args, dep)


def _watch(
    manager: DeploymentManager,
    dep: Deployment,
    live: Live | None,
    embedded: bool,
    interval: float,
    deadline: float,
) -> Deployment:
    """Follow the deployment until it ends or the deadline passes; its last state."""
    from neural.mlops.cli._progress import deployment_line, event_line

    seq = 0
    while True:
        if embedded:  # no control plane to run the rollout controller for us
            manager.run_controller_cycle()
        dep = manager.get_deployment(dep.deployment_id)
        events = manager.get_events(dep.deployment_id, seq)
        if events:
            seq = events[-1].seq
        if live:
            for event in events:
                live.line(event_line(event, dep))
            live.status(deployment_line(dep))
        if not dep.active or time.monotonic() >= deadline:
            return dep
        time.sleep(interval)


def _outcome(args: argparse.Namespace, dep: Deployment) -> int:
    """The exit code for how the canary ended, with a line saying why."""
    from neural.mlops.deployment import DeploymentStatus

    if dep.status is DeploymentStatus.COMPLETED:
        if not args.json:
            print(f"promoted: {dep.model_name}:{dep.model_version} serves 100% of traffic")
        return 0
    if dep.status is DeploymentStatus.ROLLED_BACK:
        reasons = (
            "; ".join(dep.rollback_reasons) or dep.status_reason or "see the deployment's events"
        )
        print(f"error: rolled back: {reasons}", file=sys.stderr)
        return EXIT_ROLLED_BACK
    if dep.active:
        print(
            f"error: timed out after {args.timeout}; deployment {dep.deployment_id} is still "
            f"{dep.status.value} at {dep.traffic_percentage:g}%",
            file=sys.stderr,
        )
        return EXIT_TIMEOUT
    print(f"error: deployment {dep.status.value}: {dep.status_reason or '-'}", file=sys.stderr)
    return EXIT_ROLLED_BACK
