"""``neural-mlops serve``: run the control plane."""

from __future__ import annotations

import argparse
import asyncio
import sys
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
    p.add_argument("--metrics-listen", metavar="HOST:PORT",
                   help="serve Prometheus metrics (refused calls by kind and reason) at "
                   "http://HOST:PORT/metrics (default: off)")
    c = p.add_argument_group("web console (docs/user-guide.md, docs/security.md)")
    c.add_argument("--http-listen", metavar="HOST:PORT|off",
                   help="serve the web console at http(s)://HOST:PORT/ (default "
                   "127.0.0.1:8080, or an ephemeral port when 8080 is busy; off: no console)")
    c.add_argument("--console-session-hours", type=float,
                   help="a console login lasts this long (default 8)")
    c.add_argument("--console-idle-minutes", type=float,
                   help="a console session unused this long ends (default 60)")
    d = p.add_argument_group("deployments (docs/deployments.md)")
    d.add_argument("--deploy-gate", choices=["production", "staging"],
                   help="lowest registry stage a serving rollout admits (default production)")
    d.add_argument("--allowed-upstream", action="append", metavar="PATTERN",
                   help="HOST:PORT pattern (* and ? wildcards) a deployment's or shadow's "
                   "upstream must match; repeatable or a comma list (default: any well-formed "
                   "HOST:PORT, each sidecar enforcing its own list)")
    au = p.add_argument_group("audit trail (docs/audit.md)")
    au.add_argument("--audit-anchor", metavar="PATH",
                    help="file, or folder, outside the store that receives a copy of every "
                    "signed checkpoint (env NEURAL_MLOPS_AUDIT_ANCHOR)")
    au.add_argument("--acknowledge-broken-chain", type=int, metavar="SEQ",
                    help="start on a store whose audit chain is broken at SEQ, recording the "
                    "acknowledgement (without it such a store refuses every change)")
    st = p.add_argument_group("artifact storage (docs/operations.md)")
    st.add_argument("--artifact-store", metavar="s3://BUCKET/PREFIX",
                    help="keep artifacts in an S3-compatible object store instead of "
                    "DATA_DIR/models (env NEURAL_MLOPS_ARTIFACT_STORE; credentials and region "
                    "from the standard AWS_* environment)")
    st.add_argument("--s3-endpoint-url", metavar="URL",
                    help="the object store's endpoint (MinIO, Ceph...; default AWS, or "
                    "AWS_ENDPOINT_URL)")
    a = p.add_argument_group("authentication and TLS (docs/security.md)")
    a.add_argument("--auth", help="comma list of none|token|oidc|mtls (default none)")
    a.add_argument("--insecure", action="store_true", default=None,
                   help="without --auth, listen on a non-loopback address anyway")
    a.add_argument("--tls-cert", help="server certificate (PEM)")
    a.add_argument("--tls-key", help="server private key (PEM)")
    a.add_argument("--tls-client-ca", help="CA that verifies client certificates (mTLS)")
    a.add_argument("--oidc-issuer", help="OIDC issuer URL (the JWT iss)")
    a.add_argument("--oidc-audience", help="audience the JWTs must carry (aud)")
    a.add_argument("--oidc-jwks", help="the issuer's JWKS: file or http(s) URL")
    a.add_argument("--oidc-user-claim", help="claim naming the user (default email)")
    a.add_argument("--oidc-groups-claim", help="claim listing groups (default groups)")
    p.set_defaults(handler=run)


AUTH_FLAGS = ("auth", "insecure", "tls_cert", "tls_key", "tls_client_ca", "oidc_issuer",
              "oidc_audience", "oidc_jwks", "oidc_user_claim", "oidc_groups_claim")


def run(args: argparse.Namespace) -> int:
    from neural.mlops.server.app import check_exposure, serve
    from neural.mlops.server.logging import configure_logging
    from neural.mlops.server.tls import server_credentials

    try:
        config = _config(args)
        check_exposure(config)
        server_credentials(config)  # unreadable or mismatched TLS files: one line, not a trace
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    configure_logging(config.log_level)
    import structlog

    structlog.get_logger("neural.mlops.serve").info("configuration", **config.masked())
    try:
        return asyncio.run(serve(config))
    except OSError as exc:  # the listen address is taken: one line, not a trace
        print(f"error: {exc}", file=sys.stderr)
        return 8


def _config(args: argparse.Namespace) -> ServerConfig:
    return ServerConfig.load(
        {
            "data_dir": args.data_dir,
            "listen": args.listen,
            "database_url": args.database_url,
            "log_level": args.log_level,
            "grace_seconds": args.grace_seconds,
            "metrics_listen": args.metrics_listen,
            "deploy_gate": args.deploy_gate,
            "allowed_upstreams": ",".join(args.allowed_upstream) if args.allowed_upstream else None,
            "audit_anchor": args.audit_anchor,
            "acknowledge_broken_chain": args.acknowledge_broken_chain,
            "artifact_store": args.artifact_store,
            "s3_endpoint_url": args.s3_endpoint_url,
            "http_listen": args.http_listen,
            "console_session_hours": args.console_session_hours,
            "console_idle_minutes": args.console_idle_minutes,
            **{name: getattr(args, name) for name in AUTH_FLAGS},
        },
        args.config,
    )
