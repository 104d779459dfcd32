"""``neural-mlops ci ...``: generate a CI/CD pipeline, and the steps that pipeline runs.

``ci init`` writes a pipeline for GitHub Actions, GitLab CI, Jenkins or Azure Pipelines
(see :mod:`neural.mlops.ci_templates`). The other sub-commands are the pipeline's own
steps, made for non-interactive use: they read the token from ``NEURAL_MLOPS_TOKEN``,
take metrics from the evaluation's JSON file, and report success only through the exit
status (0) so a CI job fails exactly when it should:

* ``ci register``: register the candidate with the metrics of its evaluation;
* ``ci request-promotion``: ask the reviewers for PRODUCTION;
* ``ci wait-approval``: block until the request is approved (0), rejected or cancelled
  (5), or the timeout passes (1);
* ``ci canary``: start a canary deployment and watch it until it is promoted (0) or
  rolled back (1).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

from neural.mlops import ci_templates as ct
from neural.mlops.cli._output import add_common, emit, print_record
from neural.mlops.server.errors import FailedPrecondition, InvalidArgument

EXIT_TIMEOUT = 1
EXIT_ROLLED_BACK = 1

_HINTS = {
    ct.Provider.GITHUB: "add the repository secret {secret} (Settings > Secrets and variables > "
    "Actions) and required reviewers on the 'production' environment",
    ct.Provider.GITLAB: "add a masked, protected CI/CD variable {secret} (Settings > CI/CD > Variables) "
    "and protect the 'production' environment",
    ct.Provider.JENKINS: "add a 'Secret text' credential with id {secret} (Manage Jenkins > Credentials)",
    ct.Provider.AZURE: "add a secret pipeline variable {secret} and approvals on the 'production' "
    "environment (Pipelines > Environments)",
}


def parse_duration(value: str, field: str) -> float:
    """``"90"`` / ``"90s"`` / ``"15m"`` / ``"2h"`` -> seconds."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", value or "")
    if not m:
        raise InvalidArgument(
            f"{field}: expected a duration such as 90s, 15m or 2h, got {value!r}", field=field
        )
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def _token(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--token",
        default=os.environ.get("NEURAL_MLOPS_TOKEN"),
        help="API token (env NEURAL_MLOPS_TOKEN; in CI, from the secret store)",
    )


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "ci",
        help="generate a CI/CD pipeline, and run its steps",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ci = p.add_subparsers(dest="ci_command", metavar="STEP", required=True)

    d = ct.PipelineSettings()
    init = ci.add_parser("init", help="write a pipeline file for a CI system")
    init.add_argument(
        "--provider",
        required=True,
        choices=ct.list_providers(),
        help="CI system: github, gitlab, jenkins or azure",
    )
    init.add_argument(
        "--output",
        default=".",
        metavar="DIR",
        help="repository root to write into (default: current folder); the file "
        "goes to the provider's usual path, e.g. .github/workflows/ml-pipeline.yml",
    )
    init.add_argument("--force", action="store_true", help="overwrite an existing pipeline file")
    init.add_argument(
        "--stdout", action="store_true", help="print the pipeline instead of writing it"
    )
    init.add_argument("--model", default=d.model_name, help="model name (default %(default)s)")
    init.add_argument(
        "--min",
        action="append",
        metavar="METRIC=VALUE",
        help="gate: minimum candidate metric (default accuracy=0.9)",
    )
    init.add_argument(
        "--max-regression",
        action="append",
        metavar="METRIC=DELTA",
        help="gate: largest allowed drop against production (default accuracy=0.01)",
    )
    init.add_argument(
        "--control-plane",
        default=d.target,
        metavar="grpc://HOST:PORT",
        help="control-plane address the pipeline talks to (default %(default)s)",
    )
    init.add_argument(
        "--token-secret",
        default=d.token_secret,
        metavar="NAME",
        help="name of the CI secret holding the API token (default %(default)s)",
    )
    init.add_argument("--python-version", default=d.python_version)
    init.add_argument("--install-command", default=d.install_command)
    init.add_argument("--test-command", default=d.test_command)
    init.add_argument(
        "--train-command",
        default=d.train_command,
        help="must write --model-path and --metrics-file (default: %(default)s)",
    )
    init.add_argument("--model-path", default=d.model_path)
    init.add_argument("--metrics-file", default=d.metrics_file)
    init.add_argument("--framework", default=d.framework)
    init.add_argument("--reviewer", action="append", default=[], help="promotion reviewer (repeat)")
    init.add_argument("--canary-percent", type=float, default=d.canary_percent)
    init.add_argument(
        "--approval-timeout",
        default=f"{d.approval_timeout_minutes}m",
        help="how long the deploy step waits for approval (default %(default)s)",
    )
    init.add_argument(
        "--watch-timeout",
        default=f"{d.watch_timeout_minutes}m",
        help="how long the canary is watched (default %(default)s)",
    )
    init.add_argument("--json", action="store_true", help="print JSON for scripts")
    init.set_defaults(handler=cmd_init)

    reg = ci.add_parser("register", help="register the candidate with its evaluation metrics")
    reg.add_argument("--model", required=True)
    reg.add_argument("--version", required=True)
    reg.add_argument("--model-path", required=True, help="artifact file (or s3://, gs://... URI)")
    reg.add_argument("--metrics-file", type=Path, help="JSON object of metric: number")
    reg.add_argument("--framework", default="")
    reg.add_argument("--created-by", required=True)
    reg.add_argument("--tag", action="append", default=[])
    reg.add_argument("--description", default="")
    _token(reg)
    add_common(reg)
    reg.set_defaults(handler=cmd_register)

    req = ci.add_parser("request-promotion", help="ask the reviewers to promote the candidate")
    req.add_argument("--model", required=True)
    req.add_argument("--version", required=True)
    req.add_argument("--stage", default="production", choices=["staging", "production"])
    req.add_argument("--requested-by", required=True)
    req.add_argument("--reviewers", default="", help="comma-separated reviewers (empty: anyone)")
    req.add_argument("--required-approvals", type=int, default=1)
    req.add_argument("--justification", default="")
    _token(req)
    add_common(req)
    req.set_defaults(handler=cmd_request_promotion)

    wait = ci.add_parser("wait-approval", help="block until the promotion is decided")
    wait.add_argument("--model", required=True)
    wait.add_argument("--version", required=True)
    wait.add_argument("--stage", default="production", choices=["staging", "production"])
    wait.add_argument(
        "--timeout", default="3h", help="give up after this long (default %(default)s)"
    )
    wait.add_argument("--interval", default="10s", help="poll interval (default %(default)s)")
    _token(wait)
    add_common(wait)
    wait.set_defaults(handler=cmd_wait_approval)

    can = ci.add_parser(
        "canary", help="canary-deploy a version and watch it until promoted or rolled back"
    )
    can.add_argument("--model", required=True)
    can.add_argument("--version", required=True)
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
    can.add_argument("--error-rate-threshold", type=float, default=0.05)
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
    can.add_argument("--baseline-latency-p95", type=float, help="seconds")
    can.add_argument("--baseline-error-rate", type=float)
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
    _token(can)
    add_common(can)
    can.set_defaults(handler=cmd_canary)


def cmd_init(args: argparse.Namespace) -> int:
    approval = parse_duration(args.approval_timeout, "--approval-timeout")
    watch = parse_duration(args.watch_timeout, "--watch-timeout")
    settings = ct.PipelineSettings(
        model_name=args.model,
        min_metrics=ct.parse_thresholds(args.min, "--min") if args.min else {"accuracy": 0.9},
        max_regression=(
            ct.parse_thresholds(args.max_regression, "--max-regression")
            if args.max_regression
            else {"accuracy": 0.01}
        ),
        target=args.control_plane,
        token_secret=args.token_secret,
        python_version=args.python_version,
        install_command=args.install_command,
        test_command=args.test_command,
        train_command=args.train_command,
        model_path=args.model_path,
        metrics_file=args.metrics_file,
        framework=args.framework,
        reviewers=tuple(args.reviewer),
        canary_percent=args.canary_percent,
        approval_timeout_minutes=max(1, round(approval / 60)),
        watch_timeout_minutes=max(1, round(watch / 60)),
    )
    provider = ct.parse_provider(args.provider)
    if args.stdout:
        sys.stdout.write(ct.render_template(provider, settings))
        return 0
    path = ct.write_template(provider, Path(args.output), settings, force=args.force)
    record = {
        "provider": provider.value,
        "path": str(path),
        "model": settings.model_name,
        "control_plane": settings.target,
        "token_secret": settings.token_secret,
    }

    def render() -> None:
        print(f"wrote {path}")
        print_record(
            [
                ("provider", provider.value),
                ("model", settings.model_name),
                (
                    "gate",
                    f"min {ct.format_thresholds(settings.min_metrics) or '-'}; "
                    f"max regression {ct.format_thresholds(settings.max_regression) or '-'}",
                ),
                ("control plane", settings.target),
                ("token secret", settings.token_secret),
            ]
        )
        print("next: " + _HINTS[provider].format(secret=settings.token_secret))

    emit(args, record, render)
    return 0


def _registry(args: argparse.Namespace) -> Any:
    from neural.mlops.registry import ModelRegistry

    return ModelRegistry(args.target, token=args.token)


def cmd_register(args: argparse.Namespace) -> int:
    from neural.mlops.cli.gate import read_metrics_file

    metrics = read_metrics_file(args.metrics_file) if args.metrics_file else {}
    with _registry(args) as registry:
        mv = registry.register_model(
            name=args.model,
            version=args.version,
            model_path=args.model_path,
            framework=args.framework,
            created_by=args.created_by,
            metrics=metrics,
            tags=args.tag,
            description=args.description,
        )
    emit(
        args,
        mv,
        lambda: print(
            f"registered {mv.name}:{mv.version} ({mv.stage}) "
            f"metrics {', '.join(f'{k}={v:g}' for k, v in sorted(mv.metrics.items())) or '-'}"
        ),
    )
    return 0


def cmd_request_promotion(args: argparse.Namespace) -> int:
    reviewers = [r.strip() for r in args.reviewers.split(",") if r.strip()]
    with _registry(args) as registry:
        req = registry.request_promotion(
            name=args.model,
            version=args.version,
            target_stage=args.stage,
            requested_by=args.requested_by,
            justification=args.justification,
            reviewers=reviewers,
            required_approvals=args.required_approvals,
        )
    emit(
        args,
        req,
        lambda: print(
            f"promotion of {req.name}:{req.version} to {req.target_stage.value.upper()} requested "
            f"(request {req.request_id}; reviewers: {', '.join(req.reviewers) or 'any'})"
        ),
    )
    return 0


def cmd_wait_approval(args: argparse.Namespace) -> int:
    timeout = parse_duration(args.timeout, "--timeout")
    interval = max(0.05, parse_duration(args.interval, "--interval"))
    deadline = time.monotonic() + timeout
    announced = False
    with _registry(args) as registry:
        while True:
            mv = registry.get_model_version(args.model, args.version)
            if mv.stage.value == args.stage:
                done = f"{mv.name}:{mv.version} is approved and in {mv.stage.value.upper()}"
                emit(
                    args,
                    {"model": mv.name, "version": mv.version, "stage": mv.stage, "approved": True},
                    lambda d=done: print(d),
                )
                return 0
            pending = [
                r
                for r in registry.list_pending_approvals(name=args.model)
                if r.version == mv.version and r.target_stage.value == args.stage
            ]
            if (
                not pending
                and registry.get_model_version(args.model, args.version).stage.value == args.stage
            ):
                continue  # approved between the two reads: report it on the next pass
            if not pending:
                raise FailedPrecondition(
                    f"{mv.name}:{mv.version} is in {mv.stage.value.upper()} and has no pending "
                    f"promotion to {args.stage.upper()}: it was rejected or cancelled, or never "
                    "requested (see `neural-mlops registry history`)"
                )
            if time.monotonic() >= deadline:
                print(
                    f"error: timed out after {args.timeout} waiting for approval of "
                    f"{mv.name}:{mv.version} (request {pending[0].request_id})",
                    file=sys.stderr,
                )
                return EXIT_TIMEOUT
            if not announced and not args.json:
                r = pending[0]
                print(
                    f"waiting for approval of {mv.name}:{mv.version} -> {args.stage.upper()} "
                    f"(request {r.request_id}, {len(r.approvals)}/{r.required_approvals} approvals, "
                    f"reviewers: {', '.join(r.reviewers) or 'any'})",
                    flush=True,
                )
                announced = True
            time.sleep(min(interval, max(0.0, deadline - time.monotonic())))


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
    from neural.mlops.cli._progress import Live, deployment_line, event_line
    from neural.mlops.deployment import (
        DeploymentManager,
        DeploymentStatus,
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
        deadline = time.monotonic() + timeout
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
                break
            time.sleep(interval)
        if dep.active and args.abort_on_timeout:
            dep = manager.abort(
                dep.deployment_id, args.created_by, f"ci canary timed out after {args.timeout}"
            )
    finally:
        if live:
            live.close()
        manager.close()

    emit(args, dep, lambda: None)
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
