"""``neural-mlops demo-model``: a small OIP model server for tours, tests and benchmarks."""

from __future__ import annotations

import argparse
import asyncio
import sys


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "demo-model",
        help="run a small Open Inference Protocol model server (numpy only)",
        description="Answers ModelInfer for any version of NAME and echoes the version asked "
        "for in model_version. Output: <input>_out = 2*x + bias, score = row sums.",
    )
    p.add_argument("--listen", default="127.0.0.1:8001", help="HOST:PORT (default %(default)s)")
    p.add_argument("--name", required=True, help="the model name it serves")
    p.add_argument("--latency-ms", type=float, default=0.0, help="added latency per call")
    p.add_argument("--error-rate", type=float, default=0.0, help="fraction of calls failing")
    p.add_argument("--bias", type=float, default=0.0, help="added to every output (a 'new model')")
    p.add_argument("--seed", type=int, help="seed for --error-rate")
    p.add_argument(
        "--emit-metric",
        action="store_true",
        help="send the output mean as trailing metadata x-neural-metric-output_mean "
        "(the sidecar turns x-neural-metric-* trailers into custom metrics)",
    )
    p.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="initial metadata sent with every ModelInfer and ServerMetadata answer "
        "(repeatable), as some model servers do",
    )
    p.add_argument(
        "--record-metadata",
        metavar="FILE",
        default="",
        help="append every ModelInfer call's request metadata to FILE as a JSON line "
        "(to see what a sidecar forwards)",
    )
    p.add_argument(
        "--http-listen",
        default="",
        metavar="HOST:PORT",
        help="also serve the Open Inference Protocol's REST form (/v2/...) on HOST:PORT",
    )
    p.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from neural.mlops.server.logging import configure_logging
    from neural.mlops.sidecar.demo_model import DemoModelConfig, serve

    if args.latency_ms < 0:
        print("error: invalid argument: --latency-ms must be >= 0", file=sys.stderr)
        return 2
    if not 0.0 <= args.error_rate <= 1.0:
        print("error: invalid argument: --error-rate must be in [0, 1]", file=sys.stderr)
        return 2
    for flag, value in (("--listen", args.listen), ("--http-listen", args.http_listen)):
        if value and ":" not in value:
            print(
                f"error: invalid argument: {flag} expects HOST:PORT, got {value!r}",
                file=sys.stderr,
            )
            return 2
    headers = []
    for item in args.header:
        key, sep, value = item.partition("=")
        if not sep or not key or key != key.lower() or key.startswith(("grpc-", ":")):
            print(
                f"error: invalid argument: --header expects lower-case KEY=VALUE (not grpc-* "
                f"or :*), got {item!r}",
                file=sys.stderr,
            )
            return 2
        headers.append((key, value))
    configure_logging(args.log_level)
    config = DemoModelConfig(
        listen=args.listen,
        name=args.name,
        latency_ms=args.latency_ms,
        error_rate=args.error_rate,
        bias=args.bias,
        seed=args.seed,
        emit_metric=args.emit_metric,
        headers=tuple(headers),
        record_metadata=args.record_metadata,
        http_listen=args.http_listen,
    )
    return asyncio.run(serve(config))
