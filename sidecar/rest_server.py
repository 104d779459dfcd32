"""The sidecar's REST listener: ``--http-listen`` in front of ``--upstream-http``.

Built beside the gRPC listener by :class:`~neural.mlops.sidecar.app.Sidecar` and sharing
its router (one routing table, the same metric slots) and its mirror settings; it has
its own shadow queue and workers (:class:`~neural.mlops.sidecar.rest_mirror.RestMirror`)
and one pooled HTTP session to the REST upstreams. With ``--tls-cert``/``--tls-key`` it
serves HTTPS with the same certificate as the gRPC listener (read at start).
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING, Any

from aiohttp import web

from neural.mlops.sidecar.mirror import SENSITIVE_HEADERS, Tolerance
from neural.mlops.sidecar.rest import RestFront
from neural.mlops.sidecar.rest_mirror import RestMirror
from neural.mlops.sidecar.router import Router
from neural.mlops.sidecar.upstream import (
    HttpUpstreams,
    Upstreams,
    parse_http_map,
    parse_http_upstream,
)

if TYPE_CHECKING:
    from neural.mlops.sidecar.app import SidecarConfig


def validate(cfg: SidecarConfig) -> None:
    """ValueError naming the setting that is wrong."""
    if not cfg.http_listen:
        for name in ("upstream_http", "upstream_http_for"):
            if getattr(cfg, name):
                raise ValueError(f"{name}: needs http_listen (the REST listener)")
        return
    if ":" not in cfg.http_listen:
        raise ValueError(f"http_listen: expected HOST:PORT, got {cfg.http_listen!r}")
    if not cfg.upstream_http:
        raise ValueError("http_listen: needs upstream_http (the model server's REST URL)")
    parse_http_upstream(cfg.upstream_http)
    parse_http_map(cfg.upstream_http_for)
    if not cfg.http_timeout > 0:
        raise ValueError("http_timeout: must be > 0")


class RestListener:
    def __init__(self, cfg: SidecarConfig, router: Router, upstreams: Upstreams) -> None:
        self.config = cfg
        self.http = HttpUpstreams(
            cfg.upstream_http,
            cfg.upstream,
            parse_http_map(cfg.upstream_http_for),
            read_timeout=cfg.http_timeout,
        )
        self.mirror = RestMirror(
            upstreams,
            self.http,
            queue_size=cfg.shadow_queue,
            max_in_flight=cfg.shadow_in_flight,
            timeout=cfg.shadow_timeout,
            tolerance=Tolerance(cfg.shadow_rtol, cfg.shadow_atol, cfg.shadow_top1),
            sensitive_headers=SENSITIVE_HEADERS | cfg.extra_sensitive_headers(),
        )
        self.front = RestFront(
            self.http,
            router,
            self.mirror,
            routing_key_header=cfg.routing_key_header,
            variant_header=cfg.variant_header,
        )
        self.runner: web.AppRunner | None = None
        self.port = 0

    def _ssl(self) -> ssl.SSLContext | None:
        cfg = self.config
        if not cfg.tls_cert:
            return None
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            ctx.load_cert_chain(cfg.tls_cert, cfg.tls_key)
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"tls_cert/tls_key: cannot load for REST: {exc}") from None
        return ctx

    async def start(self) -> None:
        cfg = self.config
        host, port = cfg.http_listen.rsplit(":", 1)
        self.runner = self.front.runner(
            access_log=None, handle_signals=False, shutdown_timeout=cfg.grace_seconds
        )
        await self.runner.setup()
        site = web.TCPSite(
            self.runner, host.strip("[]"), int(port), ssl_context=self._ssl(), reuse_port=False
        )
        try:
            await site.start()
        except OSError as exc:
            await self.runner.cleanup()
            raise OSError(f"cannot listen on {cfg.http_listen} (REST): {exc.strerror}") from None
        self.port = self.runner.addresses[0][1]
        self.mirror.start()

    @property
    def url(self) -> str:
        scheme = "https" if self.config.tls_cert else "http"
        return f"{scheme}://{self.config.http_listen.rsplit(':', 1)[0]}:{self.port}"

    @property
    def in_flight(self) -> int:
        return self.front.in_flight

    async def stop_accepting(self) -> None:
        """Stop accepting; let calls in flight finish (up to the grace); close the rest."""
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    async def close(self, shadow_grace: float) -> None:
        """After :meth:`stop_accepting`: let queued copies finish, close the pool."""
        await self.mirror.stop(shadow_grace)
        await self.http.close()

    def state(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "upstream": self.http.default,
            "in_flight": self.front.in_flight,
            "shadow_queue": self.mirror.queue.qsize(),
        }
