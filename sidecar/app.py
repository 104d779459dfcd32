"""The sidecar process: proxy + router + mirror + metrics, wired to the control plane.

Lifecycle: :meth:`Sidecar.start` binds the listener and starts the route watcher, the
metric flusher/reporter and the mirror workers; :meth:`Sidecar.stop` (SIGTERM) stops
accepting, lets in-flight calls finish for ``grace_seconds``, lets queued shadow copies
finish, flushes the last window and waits (bounded) until every metric batch is
acknowledged, then closes the channels.

Health: the standard gRPC health service answers for the sidecar itself (service ""
is SERVING while it accepts calls; ``neural.mlops.sidecar.routing`` is SERVING only with
a routing table from a connected control plane), and ``/healthz`` on the metrics port
gives the details (``routing``: ``live`` / ``stale`` (fail-static on the last table) /
``none`` (plain proxy)). Health checks are therefore answered by the sidecar, not
forwarded to the model server; OIP ServerLive/ServerReady are forwarded.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import uuid
from dataclasses import asdict, dataclass, fields
from typing import Any

import grpc
import structlog
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from neural.mlops.server.tls import is_loopback
from neural.mlops.sidecar import rest_server
from neural.mlops.sidecar.allowlist import UpstreamPolicy
from neural.mlops.sidecar.control import MetricsReporter, RouteWatcher
from neural.mlops.sidecar.metrics import Aggregator
from neural.mlops.sidecar.mirror import SENSITIVE_HEADERS, Mirror, Tolerance
from neural.mlops.sidecar.prom import MetricsServer
from neural.mlops.sidecar.proxy import Proxy
from neural.mlops.sidecar.router import Router, Table
from neural.mlops.sidecar.sticky import StickyArms
from neural.mlops.sidecar.tls import (
    control_plane_channel,
    listener_credentials,
    split_target,
)
from neural.mlops.sidecar.upstream import Upstreams
from neural.mlops.v1.limits import MAX_MESSAGE_BYTES as MAX_MESSAGE
from neural.mlops.v1.replicas import split_addresses
from neural.mlops.v1.upstream import split_patterns

log = structlog.get_logger(__name__)

ROUTING_HEALTH = "neural.mlops.sidecar.routing"
# Exit status when the shutdown drain ended with metric batches the control plane never
# acknowledged (the CLI's "control plane unavailable"): those counts are lost.
EXIT_UNFLUSHED = 8


@dataclass(frozen=True)
class SidecarConfig:
    listen: str = "127.0.0.1:8080"
    upstream: str = "127.0.0.1:8001"
    # "" = plain proxy, no routing table; HOST:PORT or several (a:1,b:2: replicas, failover)
    control_plane: str = ""
    routing_key_header: str = "x-user-id"
    # Where x-neural-variant goes: "trailing" metadata (the default: free, it rides on the
    # status), "initial" metadata (before the body; one extra core batch per call) or "off".
    variant_header: str = "trailing"
    metrics_port: int = -1  # -1 = no Prometheus endpoint; 0 = any free port
    metrics_host: str = "127.0.0.1"  # loopback like every other listener; 0.0.0.0 on request
    flush_interval: float = 1.0
    max_backlog: int = 3600
    shadow_queue: int = 1000
    shadow_in_flight: int = 32
    shadow_timeout: float = 10.0
    shadow_rtol: float = 1e-5
    shadow_atol: float = 1e-8
    shadow_top1: bool = False
    grace_seconds: float = 10.0
    sticky_units: int = 100_000  # bandit routes: (test, unit) -> arm remembered (sticky.py)
    sidecar_id: str = ""
    # Upstreams a routing table may send traffic to (comma list of HOST:PORT patterns;
    # "" = the host of ``upstream``, any port), and headers never copied to a shadow
    # besides SENSITIVE_HEADERS (comma list).
    allowed_upstreams: str = ""
    sensitive_headers: str = ""
    # TLS (sidecar/tls.py): the control-plane channel, then the sidecar's own listener.
    control_plane_ca: str = ""
    client_cert: str = ""
    client_key: str = ""
    control_plane_token: str = ""  # an API token sent as authorization: Bearer
    tls_cert: str = ""
    tls_key: str = ""
    # OIP over HTTP (sidecar/rest_server.py): "" = no REST listener; the model server's
    # REST base URL; HOST:PORT=URL pairs for upstreams a routing table names; read timeout.
    http_listen: str = ""
    upstream_http: str = ""
    upstream_http_for: str = ""
    http_timeout: float = 60.0

    @classmethod
    def load(cls, overrides: dict[str, Any]) -> SidecarConfig:
        """Flags over ``NEURAL_MLOPS_SIDECAR_<FIELD>`` environment over defaults."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            env = os.environ.get(f"NEURAL_MLOPS_SIDECAR_{f.name.upper()}")
            if env is not None:
                values[f.name] = env
        values.update({k: v for k, v in overrides.items() if v is not None})
        typed: dict[str, Any] = {}
        for f in fields(cls):
            if f.name in values:
                default = getattr(cls, f.name)
                raw = values[f.name]
                if isinstance(default, bool) and isinstance(raw, str):
                    if raw.lower() not in ("1", "true", "yes", "on", "0", "false", "no", "off", ""):
                        raise ValueError(f"{f.name}: expected true or false, got {raw!r}")
                    typed[f.name] = raw.lower() in ("1", "true", "yes", "on")
                    continue
                try:
                    typed[f.name] = type(default)(raw)
                except ValueError as exc:
                    raise ValueError(f"{f.name}: {exc}") from None
        cfg = cls(**typed)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        for name in ("listen", "upstream"):
            if ":" not in getattr(self, name):
                raise ValueError(f"{name}: expected HOST:PORT, got {getattr(self, name)!r}")
        if self.control_plane:
            try:
                split_addresses(split_target(self.control_plane)[0])
            except ValueError as exc:
                raise ValueError(f"control_plane: {exc}") from None
        self._validate_tls()
        if self.variant_header not in ("initial", "trailing", "off"):
            raise ValueError(
                f"variant_header: {self.variant_header!r} is not initial, trailing or off"
            )
        if self.flush_interval <= 0:
            raise ValueError("flush_interval: must be > 0")
        if len(self.sidecar_id) > 200:
            raise ValueError("sidecar_id: at most 200 characters")
        split_patterns(self.allowed_upstreams)
        rest_server.validate(self)
        for header in self.extra_sensitive_headers():
            if not header or not all(c.isascii() and (c.isalnum() or c in "-_.") for c in header):
                raise ValueError(f"sensitive_headers: {header!r} is not a header name")
        # sticky_units 0: bandit routes are not sticky
        for name, low in (("max_backlog", 1), ("shadow_queue", 1), ("shadow_in_flight", 1),
                          ("sticky_units", 0)):
            if getattr(self, name) < low:
                raise ValueError(f"{name}: must be >= {low}")

    def _validate_tls(self) -> None:
        for a, b in (("client_cert", "client_key"), ("tls_cert", "tls_key")):
            if bool(getattr(self, a)) != bool(getattr(self, b)):
                raise ValueError(f"{a} and {b} go together")
        channel_settings = ("control_plane_ca", "client_cert", "control_plane_token")
        for name in channel_settings:
            if getattr(self, name) and not self.control_plane:
                raise ValueError(f"{name}: needs control_plane")
        if self.control_plane_token and not self.control_plane_tls:
            addresses = split_addresses(split_target(self.control_plane)[0])
            if not all(is_loopback(a) for a in addresses):
                raise ValueError(
                    "control_plane_token: a token is sent in the clear without TLS; use "
                    "grpcs:// or control_plane_ca (plaintext is allowed on loopback only)"
                )

    def extra_sensitive_headers(self) -> frozenset[str]:
        return frozenset(h.strip().lower() for h in self.sensitive_headers.split(",") if h.strip())

    @property
    def control_plane_tls(self) -> bool:
        return split_target(self.control_plane)[1] or bool(
            self.control_plane_ca or self.client_cert
        )

    def masked(self) -> dict[str, str]:
        """The configuration as logged at start-up, the token masked."""
        out = {k: str(v) for k, v in asdict(self).items()}
        if self.control_plane_token:
            out["control_plane_token"] = "***"
        return out

    def resolved_id(self) -> str:
        # Unique per process start: sequences restart at 1 with every new id.
        return self.sidecar_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class Sidecar:
    def __init__(self, config: SidecarConfig) -> None:
        self.config = config
        self.sidecar_id = config.resolved_id()
        self.aggregator = Aggregator(window_seconds=config.flush_interval)
        self.policy = UpstreamPolicy(config.upstream, config.allowed_upstreams)
        self.router = Router(self.aggregator, on_apply=self._on_table, policy=self.policy,
                             sticky=StickyArms(config.sticky_units))
        self.upstreams = Upstreams(config.upstream)
        self.mirror = Mirror(
            self.upstreams,
            queue_size=config.shadow_queue,
            max_in_flight=config.shadow_in_flight,
            timeout=config.shadow_timeout,
            tolerance=Tolerance(config.shadow_rtol, config.shadow_atol, config.shadow_top1),
            sensitive_headers=SENSITIVE_HEADERS | config.extra_sensitive_headers(),
        )
        self.proxy = Proxy(
            self.upstreams,
            self.router,
            self.mirror,
            routing_key_header=config.routing_key_header,
            variant_header=config.variant_header,
        )
        self.rest = (
            rest_server.RestListener(config, self.router, self.upstreams)
            if config.http_listen
            else None
        )
        self.health = health.aio.HealthServicer()
        self.server: grpc.aio.Server | None = None
        self.control: grpc.aio.Channel | None = None
        self.watcher: RouteWatcher | None = None
        self.reporter: MetricsReporter | None = None
        self.metrics_server: MetricsServer | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.port = 0

    def _on_table(self, table: Table) -> None:
        asyncio.get_running_loop().create_task(self._set_routing_health())

    async def _set_routing_health(self) -> None:
        live = self.router.table is not None and self.watcher is not None and self.watcher.connected
        await self.health.set(
            ROUTING_HEALTH,
            health_pb2.HealthCheckResponse.SERVING
            if live
            else health_pb2.HealthCheckResponse.NOT_SERVING,
        )

    def routing_state(self) -> str:
        if self.router.table is None:
            return "none"
        return "live" if self.watcher is not None and self.watcher.connected else "stale"

    def state(self) -> dict[str, Any]:
        r = self.reporter
        return {
            "status": "serving",
            "sidecar_id": self.sidecar_id,
            "routing": self.routing_state(),
            "table_version": self.router.version,
            "routes": len(self.router.table.routes) if self.router.table else 0,
            "control_plane_connected": bool(self.watcher and self.watcher.connected),
            "batches_pending": len(r.pending) if r else 0,
            "batches_dropped": r.dropped_batches if r else 0,
            "batches_acked": r.acked if r else 0,
            "batches_rejected": r.rejected if r else 0,
            "shadow_queue": self.mirror.queue.qsize(),
            "in_flight": self.proxy.in_flight,
            "rest": self.rest.state() if self.rest is not None else None,
            "sticky_units": len(self.router.sticky),
            "sticky_evictions": self.router.sticky.evictions,
            "allowed_upstreams": list(self.policy.patterns),
            "upstreams_refused": [f.to_dict() for f in self.router.table.refused]
            if self.router.table
            else [],
        }

    async def start(self) -> None:
        cfg = self.config
        self.server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE),
                ("grpc.max_send_message_length", MAX_MESSAGE),
                ("grpc.so_reuseport", 0),
            ]
        )
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self.server.add_generic_rpc_handlers((self.proxy,))
        credentials = listener_credentials(cfg.tls_cert, cfg.tls_key)
        if credentials is None:
            self.port = self.server.add_insecure_port(cfg.listen)
        else:
            self.port = self.server.add_secure_port(cfg.listen, credentials)
        if self.port == 0:
            raise OSError(f"cannot listen on {cfg.listen}")
        self.mirror.start()
        if cfg.control_plane:
            self.control = control_plane_channel(
                cfg.control_plane,
                ca=cfg.control_plane_ca,
                client_cert=cfg.client_cert,
                client_key=cfg.client_key,
            )
            metadata = (
                (("authorization", f"Bearer {cfg.control_plane_token}"),)
                if cfg.control_plane_token
                else ()
            )
            self.watcher = RouteWatcher(self.control, self.router, self.sidecar_id, metadata)
            self.reporter = MetricsReporter(
                self.control,
                self.aggregator,
                self.sidecar_id,
                interval=cfg.flush_interval,
                max_backlog=cfg.max_backlog,
                metadata=metadata,
            )
            self._tasks += [
                asyncio.create_task(self.watcher.run()),
                asyncio.create_task(self.reporter.run()),
                asyncio.create_task(self.reporter.run_flusher()),
                asyncio.create_task(self._watch_health()),
            ]
        if cfg.metrics_port >= 0:
            self.metrics_server = MetricsServer(
                cfg.metrics_host,
                cfg.metrics_port,
                self.aggregator,
                self.state,
                refused_total=lambda: self.router.refused_total,
            )
            await self.metrics_server.start()
        await self.server.start()
        if self.rest is not None:
            await self.rest.start()
        await self.health.set("", health_pb2.HealthCheckResponse.SERVING)
        await self._set_routing_health()
        log.info(
            "sidecar serving",
            address=self.address,
            upstream=cfg.upstream,
            allowed_upstreams=list(self.policy.patterns),
            control_plane=cfg.control_plane or None,
            sidecar_id=self.sidecar_id,
            metrics_port=self.metrics_server.port if self.metrics_server else None,
            rest=self.rest.url if self.rest is not None else None,
        )

    async def _watch_health(self) -> None:
        last = None
        while True:
            state = self.routing_state()
            if state != last:
                await self._set_routing_health()
                last = state
            await asyncio.sleep(0.25)

    @property
    def address(self) -> str:
        return f"{self.config.listen.rsplit(':', 1)[0]}:{self.port}"

    async def stop(self) -> bool:
        """Drain and stop; False when metric batches were left unacknowledged (lost)."""
        cfg = self.config
        flushed = True
        await self.health.enter_graceful_shutdown()
        # Stop accepting, finish in-flight (both listeners at once), then the shadows.
        await asyncio.gather(
            *([self.server.stop(cfg.grace_seconds)] if self.server is not None else []),
            *([self.rest.stop_accepting()] if self.rest is not None else []),
        )
        await self.mirror.stop(min(cfg.grace_seconds, self.config.shadow_timeout))
        if self.rest is not None:
            await self.rest.close(min(cfg.grace_seconds, self.config.shadow_timeout))
        if self.reporter is not None:
            flushed = await self.reporter.drain(timeout=cfg.grace_seconds)
            if not flushed:
                log.error(
                    "metric batches not acknowledged at exit (lost); exit status "
                    f"{EXIT_UNFLUSHED}", pending=len(self.reporter.pending)
                )
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.metrics_server is not None:
            await self.metrics_server.stop()
        if self.control is not None:
            await self.control.close()
        await self.upstreams.close()
        log.info("sidecar stopped")
        return flushed

    def masked(self) -> dict[str, Any]:
        return self.config.masked()


async def serve(config: SidecarConfig) -> int:
    sidecar = Sidecar(config)
    await sidecar.start()
    metrics = ""
    if sidecar.metrics_server is not None:
        metrics = f", metrics on http://{config.metrics_host}:{sidecar.metrics_server.port}/metrics"
    if sidecar.rest is not None:
        metrics += f", OIP REST on {sidecar.rest.url} -> {sidecar.rest.http.default}"
    print(
        f"neural-mlops sidecar listening on {sidecar.address} -> {config.upstream}{metrics}",
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("draining", grace_seconds=config.grace_seconds)
    return 0 if await sidecar.stop() else EXIT_UNFLUSHED
