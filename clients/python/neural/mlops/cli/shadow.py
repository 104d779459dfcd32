"""``neural-mlops shadow ...``: mirror a model's traffic to a candidate and compare."""

from __future__ import annotations

import argparse
from typing import Any

from neural.mlops.cli._output import add_common, emit, print_record


def _manager(args: argparse.Namespace) -> Any:
    from neural.mlops.deployment import DeploymentManager

    return DeploymentManager(args.target)


def _record(s: Any) -> None:
    print_record(
        [
            ("shadow_id", s.shadow_id),
            ("primary_model", s.primary_model),
            ("shadow_model", s.shadow_model),
            ("traffic", f"{s.traffic_percentage:g}%"),
            ("status", s.status),
            ("upstream", s.upstream or "-"),
            ("created_by", s.created_by),
            ("created_at", s.created_at),
            ("stopped_at", s.stopped_at),
        ]
    )


def cmd_start(args: argparse.Namespace) -> None:
    s = _manager(args).shadow_deploy(
        args.primary, args.shadow, args.percentage, args.created_by, args.upstream
    )
    emit(args, s, lambda: _record(s))


def cmd_compare(args: argparse.Namespace) -> None:
    c = _manager(args).compare_shadow_deployment(
        args.shadow_id, args.min_agreement, args.max_latency_ratio
    )

    def ms(x: float | None) -> str:
        return "-" if x is None else f"{x * 1000:.2f}ms"

    def render() -> None:
        rate = c["agreement_rate"]
        print_record(
            [
                ("shadow_id", c["shadow_id"]),
                ("models", f"{c['primary_model']} vs {c['shadow_model']}"),
                ("compared", c["n"]),
                ("agreement_rate", "-" if rate is None else f"{rate:.2%}"),
                (
                    "primary latency",
                    " ".join(f"{k}={ms(c['primary_latency'][k])}" for k in ("p50", "p95", "p99")),
                ),
                (
                    "shadow latency",
                    " ".join(f"{k}={ms(c['shadow_latency'][k])}" for k in ("p50", "p95", "p99")),
                ),
                ("shadow error rate", c["shadow_error_rate"]),
                ("dropped", c["dropped"]),
                ("verdict", c["verdict"]),
                ("reasons", "; ".join(c["reasons"]) or "-"),
            ]
        )
        for sample in c["disagreement_samples"][-5:]:
            print(f"  disagreement: primary={sample.get('primary')} shadow={sample.get('shadow')}")

    emit(args, c, render)


def cmd_stop(args: argparse.Namespace) -> None:
    s = _manager(args).stop_shadow(args.shadow_id, args.stopped_by)
    emit(args, s, lambda: _record(s))


_SHADOW_ID = "the shadow's id (shadow start prints it)"


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("shadow", help="mirror traffic to a candidate model and compare the answers")
    ss = p.add_subparsers(dest="shadow_command", metavar="ACTION", required=True)

    def cmd(name: str, handler: Any, help: str) -> argparse.ArgumentParser:
        q = ss.add_parser(name, help=help)
        add_common(q)
        q.set_defaults(handler=handler)
        return q

    q = cmd("start", cmd_start, "mirror PRIMARY's traffic (name:version) to SHADOW")
    q.add_argument("primary", help="the serving version, MODEL:VERSION")
    q.add_argument("shadow", help="the candidate that gets the copies, MODEL:VERSION")
    q.add_argument("--percentage", type=float, default=100.0,
                   help="share of the primary's requests copied to the shadow")
    q.add_argument("--created-by", default="")
    q.add_argument("--upstream", default="", help="HOST:PORT of the shadow's model server")

    q = cmd("compare", cmd_compare, "agreement, latency and errors of primary vs shadow")
    q.add_argument("shadow_id", help=_SHADOW_ID)
    q.add_argument("--min-agreement", type=float, default=0.95,
                   help="answers that must agree with the primary's for a pass (fraction)")
    q.add_argument("--max-latency-ratio", type=float, default=1.5,
                   help="shadow latency / primary latency allowed for a pass")

    q = cmd("stop", cmd_stop, "stop mirroring")
    q.add_argument("shadow_id", help=_SHADOW_ID)
    q.add_argument("--stopped-by", default="", help="who stops it (audited)")
