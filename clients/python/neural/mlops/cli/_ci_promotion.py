"""``neural-mlops ci register | request-promotion | wait-approval``: the pipeline's
registry steps, from the candidate's registration to its approved promotion."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from neural.mlops.cli._output import add_common, emit
from neural.mlops.cli.ci import EXIT_TIMEOUT, add_token, parse_duration
from neural.mlops.server.errors import FailedPrecondition


def add_registry_steps(ci: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """The ``register``, ``request-promotion`` and ``wait-approval`` sub-commands."""
    reg = ci.add_parser("register", help="register the candidate with its evaluation metrics")
    reg.add_argument("--model", required=True, help="model name")
    reg.add_argument("--version", required=True, help="the candidate's version, e.g. the commit")
    reg.add_argument("--model-path", required=True, help="artifact file (or s3://, gs://... URI)")
    reg.add_argument("--metrics-file", type=Path, help="JSON object of metric: number")
    reg.add_argument("--framework", default="", help="e.g. pytorch, sklearn (free text)")
    reg.add_argument("--created-by", required=True)
    reg.add_argument("--tag", action="append", default=[], help="a tag (repeatable)")
    reg.add_argument("--description", default="", help="free text shown with the version")
    add_token(reg)
    add_common(reg)
    reg.set_defaults(handler=cmd_register)

    req = ci.add_parser("request-promotion", help="ask the reviewers to promote the candidate")
    req.add_argument("--model", required=True, help="model name")
    req.add_argument("--version", required=True, help="the version to promote")
    req.add_argument(
        "--stage", default="production", choices=["staging", "production"], help="target stage"
    )
    req.add_argument("--requested-by", required=True, help="who asks (may not approve it; audited)")
    req.add_argument("--reviewers", default="", help="comma-separated reviewers (empty: anyone)")
    req.add_argument(
        "--required-approvals", type=int, default=1, help="approvals needed before it moves"
    )
    req.add_argument("--justification", default="", help="why, shown to the reviewers")
    add_token(req)
    add_common(req)
    req.set_defaults(handler=cmd_request_promotion)

    wait = ci.add_parser("wait-approval", help="block until the promotion is decided")
    wait.add_argument("--model", required=True, help="model name")
    wait.add_argument("--version", required=True, help="the version awaiting approval")
    wait.add_argument(
        "--stage",
        default="production",
        choices=["staging", "production"],
        help="the stage it was requested for",
    )
    wait.add_argument(
        "--timeout", default="3h", help="give up after this long (default %(default)s)"
    )
    wait.add_argument("--interval", default="10s", help="poll interval (default %(default)s)")
    add_token(wait)
    add_common(wait)
    wait.set_defaults(handler=cmd_wait_approval)


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
                    f"(request {r.request_id}, "
                    f"{len(r.approvals)}/{r.required_approvals} approvals, "
                    f"reviewers: {', '.join(r.reviewers) or 'any'})",
                    flush=True,
                )
                announced = True
            time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
