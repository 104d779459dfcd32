"""``neural-mlops deploy ...``: rollouts from a terminal (create, status, watch, operate)."""

from __future__ import annotations

import argparse
from typing import Any

from neural.mlops.cli._output import add_common, emit, print_record, print_table
from neural.mlops.server.errors import InvalidArgument


def _manager(args: argparse.Namespace) -> Any:
    from neural.mlops.deployment import DeploymentManager

    return DeploymentManager(args.target)


def _pct(x: float) -> str:
    return f"{x:g}%"


def _check_line(c: Any) -> str:
    if c is None:
        return "-"
    new = c.new
    parts = [c.verdict.value, f"n={new.request_count}"]
    if new.error_rate is not None:
        parts.append(f"errors={new.error_rate:.4f}")
    if new.latency_p95 is not None:
        parts.append(f"p95={new.latency_p95 * 1000:.1f}ms")
    if c.stable is not None and c.stable.request_count:
        stable_err = "-" if c.stable.error_rate is None else f"{c.stable.error_rate:.4f}"
        parts.append(f"(stable n={c.stable.request_count} errors={stable_err})")
    for m in c.tests.get("custom_metrics") or ():
        mean = m.get("mean")
        shown = "-" if mean is None else f"{mean:.4g}"
        parts.append(f"{m.get('metric')}={shown}({m.get('verdict')})")
    text = " ".join(parts)
    if c.reasons:
        text += ": " + "; ".join(c.reasons)
    return text


def _record(d: Any) -> None:
    from neural.mlops.server.deployments.custom_metrics import rule_text

    steps = " -> ".join(
        ("[" + _pct(s) + "]") if i == d.step_index else _pct(s) for i, s in enumerate(d.plan.steps)
    )
    print_record(
        [
            ("deployment_id", d.deployment_id),
            ("model", f"{d.model_name}:{d.model_version}"),
            ("stable_version", d.stable_version or "(caller's)"),
            ("strategy", d.strategy),
            ("status", d.status),
            ("traffic", _pct(d.traffic_percentage)),
            ("steps", steps),
            ("step_started_at", d.step_started_at),
            ("failed_checks", d.failed_checks),
            ("last_check", _check_line(d.last_check)),
            ("targeting", " AND ".join(d.targeting) or "(every request)"),
            ("header_routes", ", ".join(f"{h}: {v} -> {n}" for h, v, n in d.header_routes)
             or "-"),
            ("metric_rules", "; ".join(rule_text(r) for r in d.rollback_config.metric_rules)
             or "-"),
            ("reason", d.status_reason or "-"),
            ("created_by", d.created_by),
            ("created_at", d.created_at),
            ("completed_at", d.completed_at),
        ]
    )


def _event_line(e: Any) -> str:
    reasons = e.details.get("reasons") or []
    tail = f" -- {'; '.join(reasons)}" if reasons else ""
    reason = e.details.get("reason")
    if reason:
        tail += f" -- {reason}"
    return (f"{e.at.strftime('%H:%M:%S')}  {e.action:<12} {_pct(e.traffic_percentage):>5}  "
            f"{e.to_status.value:<11} by {e.actor}{tail}")


def _header_route(text: str) -> tuple[str, str, str]:
    """``HEADER=VALUE:VARIANT`` -> (header, value, variant)."""
    header, eq, rest = text.partition("=")
    value, colon, variant = rest.rpartition(":")
    if not eq or not colon:
        raise InvalidArgument(
            f"--header-route expects HEADER=VALUE:VARIANT like x-canary=always:canary, "
            f"got {text!r}", field="header_routes")
    return header.strip(), value, variant.strip()


def cmd_create(args: argparse.Namespace) -> None:
    from neural.mlops.deployment import PerformanceMetrics, RollbackConfig
    from neural.mlops.server.deployments.custom_metrics import parse_rule

    steps = None
    if args.steps:
        try:
            steps = [float(x) for x in args.steps.split(",")]
        except ValueError:
            raise InvalidArgument(
                f"--steps expects numbers like 5,10,25,50,100, got {args.steps!r}", field="steps"
            ) from None
    d = _manager(args).create_deployment(
        model_name=args.model,
        model_version=args.version,
        strategy=args.strategy,
        created_by=args.created_by,
        baseline_metrics=PerformanceMetrics(
            latency_p95=args.baseline_p95, error_rate=args.baseline_error_rate
        ),
        rollback_config=RollbackConfig(
            error_rate_threshold=args.error_rate_threshold,
            latency_threshold_multiplier=args.latency_multiplier,
            min_requests_before_check=args.min_requests,
            max_failed_checks=args.max_failed_checks,
            statistical_judge=args.statistical,
            alpha=args.alpha,
            metric_rules=[parse_rule(t) for t in args.metric_rule],
        ),
        steps=steps,
        step_duration_seconds=args.step_duration,
        analysis_interval_seconds=args.interval,
        preview=args.preview,
        stable_version=args.stable_version,
        upstream=args.upstream,
        override_reason=args.override_reason,
        switch_back_seconds=args.switch_back,
        targeting=args.targeting,
        header_routes=[_header_route(t) for t in args.header_route],
    )
    emit(args, d, lambda: _record(d))


def cmd_status(args: argparse.Namespace) -> None:
    m = _manager(args)
    if args.deployment_id:
        d = m.get_deployment(args.deployment_id)
        events = m.get_events(args.deployment_id)

        def render() -> None:
            _record(d)
            print()
            for e in events:
                print(_event_line(e))

        emit(args, {"deployment": d, "events": events}, render)
        return
    items = m.list_deployments(model_name=args.model or "", active_only=args.active)
    emit(args, items, lambda: print_table(
        ["deployment_id", "model", "strategy", "status", "traffic", "last check", "created"],
        [[d.deployment_id, f"{d.model_name}:{d.model_version}", d.strategy, d.status,
          _pct(d.traffic_percentage), d.last_check.verdict if d.last_check else "-",
          d.created_at.strftime("%Y-%m-%d %H:%M")] for d in items],
    ))


def cmd_watch(args: argparse.Namespace) -> int:
    """Live progress: one line per decision and per new check, until the rollout ends."""
    import json

    from neural.mlops.cli._output import jsonable

    last_check = None
    final = None
    for d, events in _manager(args).watch(args.deployment_id, timeout=args.timeout):
        final = d
        if args.json:
            print(
                json.dumps(jsonable({"deployment": d, "events": events}), sort_keys=True),
                flush=True,
            )
            continue
        for e in events:
            print(_event_line(e), flush=True)
        check = d.last_check
        if check is not None and (last_check is None or check.at != last_check):
            last_check = check.at
            print(f"{check.at.strftime('%H:%M:%S')}  check        {_pct(d.traffic_percentage):>5}  "
                  f"{d.status.value:<11} {_check_line(check)}", flush=True)
    if final is None:
        return 1
    if not args.json:
        print(
            f"{final.deployment_id}: {final.status.value}"
            + (f" ({final.status_reason})" if final.status_reason else "")
        )
    return 0 if final.status.value == "completed" else (0 if final.active else 1)


def _action(name: str) -> Any:
    def run(args: argparse.Namespace) -> None:
        m = _manager(args)
        kwargs: dict[str, Any] = {"actor": args.actor, "reason": args.reason}
        if name == "promote":
            kwargs["full"] = args.full
        d = getattr(m, name)(args.deployment_id, **kwargs)
        emit(args, d, lambda: _record(d))

    return run


_DEPLOYMENT_ID = "the deployment's id (deploy status lists them)"


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("deploy", help="canary, blue-green, direct and shadow rollouts")
    ds = p.add_subparsers(dest="deploy_command", metavar="ACTION", required=True)

    def cmd(name: str, handler: Any, help: str) -> argparse.ArgumentParser:
        q = ds.add_parser(name, help=help)
        add_common(q)
        q.set_defaults(handler=handler)
        return q

    q = cmd("create", cmd_create, "start a rollout of MODEL VERSION")
    q.add_argument("model", help="model name")
    q.add_argument("version", help="the version to roll out (approved into PRODUCTION)")
    q.add_argument(
        "--strategy",
        default="canary",
        choices=["canary", "blue_green", "direct", "shadow"],
        help="how traffic moves to the new version",
    )
    q.add_argument("--created-by", required=True, help="who starts the rollout (audited)")
    q.add_argument("--steps", help="canary steps in percent, e.g. 5,10,25,50,100")
    q.add_argument("--step-duration", type=float, default=300.0, help="hold per step, seconds")
    q.add_argument("--interval", type=float, default=60.0, help="analysis interval, seconds")
    q.add_argument(
        "--preview", default="mirror", choices=["mirror", "header"], help="blue-green preview"
    )
    q.add_argument(
        "--switch-back",
        type=float,
        help="blue-green: seconds blue stays ready after the switch (default: --step-duration)",
    )
    q.add_argument("--baseline-p95", type=float, help="baseline p95 latency, seconds")
    q.add_argument("--baseline-error-rate", type=float, help="baseline error rate, 0..1")
    q.add_argument("--error-rate-threshold", type=float, default=0.05,
                   help="roll back when the new version's error rate exceeds this")
    q.add_argument("--latency-multiplier", type=float, default=2.0,
                   help="roll back when its p95 exceeds the baseline p95 times this")
    q.add_argument("--min-requests", type=int, default=100,
                   help="requests a step needs before it is judged")
    q.add_argument("--max-failed-checks", type=int, default=1,
                   help="consecutive failing checks before the rollback")
    q.add_argument(
        "--statistical", action="store_true", help="also judge canary vs stable statistically"
    )
    q.add_argument("--alpha", type=float, default=0.05,
                   help="significance level of the --statistical judge")
    q.add_argument(
        "--stable-version", help="the version serving now (default: the model's current)"
    )
    q.add_argument("--upstream", default="", help="HOST:PORT of the server running the new version")
    q.add_argument(
        "--override-reason", default="", help="deploy without registry approval (audited)"
    )
    q.add_argument(
        "--targeting", action="append", default=[], metavar="CONDITION",
        help="only requests matching this condition take part, the others stay on the stable "
        "version (repeatable, ANDed), e.g. 'x-country in [DE, FR]', 'x-app-version >= 4.2', "
        "'param.tier = gold'",
    )
    q.add_argument(
        "--header-route", action="append", default=[], metavar="HEADER=VALUE:VARIANT",
        help="a request with this header value goes to VARIANT (canary/stable, blue-green: "
        "green/blue) whatever the step, e.g. x-canary=always:canary (repeatable)",
    )
    q.add_argument(
        "--metric-rule", action="append", default=[], metavar="RULE",
        help="a health rule on a custom metric (x-neural-metric-NAME), repeatable: "
        "'NAME <= X' / 'NAME >= X' (threshold on the new version's mean) or 'NAME "
        "lower|higher vs stable' (Welch t-test against the stable), then options min=N, "
        "max-degradation=D, alpha=A",
    )

    q = cmd("status", cmd_status, "one deployment with its decision log, or a list")
    q.add_argument("deployment_id", nargs="?",
                   help="show this deployment and its decisions (default: list deployments)")
    q.add_argument("--model", help="list only this model's deployments")
    q.add_argument("--active", action="store_true", help="list only rollouts still running")

    q = cmd("watch", cmd_watch, "follow a rollout live until it ends")
    q.add_argument("deployment_id", help=_DEPLOYMENT_ID)
    q.add_argument("--timeout", type=float, help="stop watching after this many seconds")

    for name, help in (("promote", "advance one step now (--full: complete at once)"),
                       ("pause", "stop advancing (health checks continue)"),
                       ("resume", "continue a paused rollout"),
                       ("abort", "stop and route back to the stable version"),
                       ("rollback", "route back to the stable version now")):
        q = cmd(name, _action(name), help)
        q.add_argument("deployment_id", help=_DEPLOYMENT_ID)
        q.add_argument("--actor", default="", help="who does it (default: the caller)")
        q.add_argument("--reason", default="")
        if name == "promote":
            q.add_argument("--full", action="store_true", help="go to 100%% now")
