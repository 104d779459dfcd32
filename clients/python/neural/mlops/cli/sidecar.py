"""``neural-mlops sidecar``: run the inference proxy beside a model server."""

from __future__ import annotations

import argparse
import asyncio
import sys


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "sidecar",
        help="run the inference sidecar (OIP proxy with routing, shadowing and metrics)",
    )
    p.add_argument("--listen", help="HOST:PORT to serve OIP gRPC on (default 127.0.0.1:8080)")
    p.add_argument("--upstream", help="HOST:PORT of the model server (default 127.0.0.1:8001)")
    p.add_argument(
        "--control-plane",
        help="HOST:PORT (or grpcs://HOST:PORT for TLS) of the control plane, or several "
        "replicas as a comma list (a:1,b:2,c:3: failover between them; docs/operations.md); "
        "omitted = plain proxy without routing table",
    )
    p.add_argument(
        "--control-plane-ca", help="CA certificate (PEM) of the control plane; turns TLS on"
    )
    p.add_argument("--client-cert", help="this sidecar's certificate (PEM) for mTLS")
    p.add_argument("--client-key", help="the key of --client-cert (PEM)")
    p.add_argument(
        "--control-plane-token",
        help="API token for the control plane (better: env "
        "NEURAL_MLOPS_SIDECAR_CONTROL_PLANE_TOKEN, which ps does not show)",
    )
    p.add_argument("--tls-cert", help="serve the OIP listener over TLS with this certificate")
    p.add_argument("--tls-key", help="the key of --tls-cert")
    p.add_argument(
        "--routing-key-header", help="request metadata key with the unit id (default x-user-id)"
    )
    p.add_argument(
        "--variant-header",
        choices=["initial", "trailing", "off"],
        help="where the response names its variant (x-neural-variant): trailing metadata "
        "(default), initial metadata (before the body, ~40-75 µs more per call; "
        "sidecar/README.md) or off",
    )
    p.add_argument(
        "--metrics-port", type=int, help="serve /metrics and /healthz on this port (0 = any)"
    )
    p.add_argument("--metrics-host", help="address for the metrics port (default 127.0.0.1)")
    p.add_argument("--flush-interval", type=float, help="metric window seconds (default 1)")
    p.add_argument("--max-backlog", type=int, help="unacknowledged metric batches kept")
    p.add_argument("--shadow-queue", type=int, help="mirror queue bound (default 1000)")
    p.add_argument("--shadow-in-flight", type=int, help="concurrent shadow calls (default 32)")
    p.add_argument("--shadow-timeout", type=float, help="deadline of a shadow call, seconds")
    p.add_argument("--shadow-rtol", type=float, help="relative tolerance for float outputs")
    p.add_argument("--shadow-atol", type=float, help="absolute tolerance for float outputs")
    p.add_argument(
        "--shadow-top1",
        action="store_true",
        default=None,
        help="judge float outputs by their top-1 class (argmax) instead of tolerances",
    )
    p.add_argument("--grace-seconds", type=float, help="drain time on SIGTERM (default 10)")
    p.add_argument("--sticky-units", type=int,
                   help="bandit routes: units remembered with their arm, LRU (default 100000)")
    p.add_argument("--sidecar-id", help="id in metric batches (default host-pid-random)")
    p.add_argument(
        "--allowed-upstream",
        action="append",
        metavar="PATTERN",
        help="HOST:PORT pattern (* and ? wildcards) a route or shadow may send traffic to; "
        "repeatable or a comma list (default: the --upstream host on any port)",
    )
    p.add_argument(
        "--sensitive-header",
        action="append",
        metavar="NAME",
        help="request header never copied to a shadow, besides authorization, "
        "proxy-authorization, cookie and x-api-key (repeatable)",
    )
    p.add_argument(
        "--http-listen",
        metavar="HOST:PORT",
        help="also serve the Open Inference Protocol's REST form (/v2/...) here, with the "
        "same routing, shadowing and metrics (needs --upstream-http; sidecar/README.md)",
    )
    p.add_argument(
        "--upstream-http", metavar="URL", help="the model server's REST base URL (http://H:P)"
    )
    p.add_argument(
        "--upstream-http-for",
        action="append",
        metavar="HOST:PORT=URL",
        help="REST URL of a model server that routing tables name by its gRPC HOST:PORT "
        "(repeatable)",
    )
    p.add_argument("--http-timeout", type=float, help="REST upstream read timeout (default 60)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import structlog

    from neural.mlops.server.logging import configure_logging
    from neural.mlops.sidecar.app import SidecarConfig, serve

    keys = (
        "listen upstream control_plane routing_key_header variant_header metrics_port metrics_host "
        "flush_interval max_backlog shadow_queue shadow_in_flight shadow_timeout shadow_rtol "
        "shadow_atol shadow_top1 grace_seconds sidecar_id control_plane_ca client_cert client_key "
        "control_plane_token tls_cert tls_key http_listen upstream_http http_timeout sticky_units"
    ).split()
    try:
        lists = {
            "allowed_upstreams": args.allowed_upstream,
            "sensitive_headers": args.sensitive_header,
            "upstream_http_for": args.upstream_http_for,
        }
        config = SidecarConfig.load(
            {
                **{k: getattr(args, k) for k in keys},
                **{k: ",".join(v) for k, v in lists.items() if v},
            }
        )
    except ValueError as exc:
        print(f"error: invalid argument: {exc}", file=sys.stderr)
        return 2
    configure_logging(args.log_level)
    structlog.get_logger("neural.mlops.sidecar").info("configuration", **config.masked())
    try:
        return asyncio.run(serve(config))
    except ValueError as exc:  # unreadable or mismatched TLS files, found at start
        print(f"error: invalid argument: {exc}", file=sys.stderr)
        return 2
