"""``neural-mlops serve``: run the control plane."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from neural.mlops.server.config import DEFAULT_LISTEN, ServerConfig


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("serve", help="run the gRPC control plane")
    p.add_argument("--data-dir", type=Path, help="store folder (default ./mlops-data)")
    p.add_argument("--listen", help=f"HOST:PORT to listen on (default {DEFAULT_LISTEN})")
    p.add_argument("--database-url", help="SQLAlchemy URL instead of the SQLite file")
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    p.add_argument("--grace-seconds", type=float, help="drain time on SIGTERM")
    p.add_argument("--config", type=Path, help="TOML file with a [server] table")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from neural.mlops.server.app import serve
    from neural.mlops.server.logging import configure_logging

    config = ServerConfig.load(
        {
            "data_dir": args.data_dir,
            "listen": args.listen,
            "database_url": args.database_url,
            "log_level": args.log_level,
            "grace_seconds": args.grace_seconds,
        },
        args.config,
    )
    configure_logging(config.log_level)
    import structlog

    structlog.get_logger("neural.mlops.serve").info("configuration", **config.masked())
    return asyncio.run(serve(config))
