"""The console server: one aiohttp site in the control plane's event loop, calling the
control plane's own gRPC listener (:mod:`.gateway`). Built and started by
:class:`neural.mlops.server.app.ControlPlane` unless ``--http-listen off``."""

from __future__ import annotations

import socket
from dataclasses import dataclass

import grpc
import structlog
from aiohttp import web

from neural.mlops.server.console import downloads, events
from neural.mlops.server.console.gateway import Gateway, MethodIndex
from neural.mlops.server.console.login import Logins
from neural.mlops.server.console.oidc_login import OidcLogin
from neural.mlops.server.console.sessions import (
    COOKIE,
    DEFAULT_IDLE_SECONDS,
    Session,
    SessionStore,
)
from neural.mlops.server.console.web import (
    Guard,
    Listen,
    api_not_found,
    base_app,
    bind,
    session_of,
    tls_context,
)
from neural.mlops.server.storage import Database
from neural.mlops.server.tls import is_loopback
from neural.mlops.v1.limits import MAX_MESSAGE_BYTES

log = structlog.get_logger(__name__)

DEFAULT_HTTP_LISTEN = "127.0.0.1:8080"


@dataclass(frozen=True)
class ConsoleSettings:
    listen: Listen
    grpc_target: str  # the control plane's own listener, reachable from this process
    services: tuple[str, ...]  # full names of the services the gateway transcodes
    methods: frozenset[str]  # the server's auth methods
    tls_cert: str = ""
    tls_key: str = ""
    session_hours: float = 8.0
    oidc: OidcLogin | None = None
    idle_minutes: float = DEFAULT_IDLE_SECONDS / 60


class ConsoleServer:
    def __init__(self, settings: ConsoleSettings, db: Database) -> None:
        self.settings = settings
        # In the database: shared by every replica on it, kept across restarts.
        self.sessions = SessionStore(db, settings.session_hours * 3600.0,
                                     settings.idle_minutes * 60.0)
        self.guard = Guard(self.sessions)
        self.feed = events.ChangeFeed(db)
        self.channel: grpc.aio.Channel | None = None
        self.runner: web.AppRunner | None = None
        self.url = ""
        self.fell_back = False

    def _app(self, gateway: Gateway, logins: Logins) -> web.Application:
        app = base_app(self.guard)

        async def api(request: web.Request) -> web.StreamResponse:
            session = session_of(request)
            return await self._ended_on_401(session, await gateway.handle(request, session))

        async def live(request: web.Request) -> web.StreamResponse:
            return await events.stream(request, self.feed)

        async def export(request: web.Request) -> web.StreamResponse:
            session = session_of(request)
            return await self._ended_on_401(
                session, await downloads.audit_export(request, gateway, session))

        app.router.add_post("/api/v1/{service}/{method}", api)
        app.router.add_get("/api/session", logins.session)
        app.router.add_get("/api/events", live)
        app.router.add_get("/api/download/audit-export", export)
        app.router.add_post("/login", logins.login)
        app.router.add_post("/logout", logins.logout)
        if self.settings.oidc is not None:
            self.settings.oidc.routes(app, logins, self.guard)
        app.router.add_route("*", "/api/{tail:.*}", api_not_found)
        return app

    async def _ended_on_401(self, session: Session,
                            response: web.StreamResponse) -> web.StreamResponse:
        """The server refused the session's credential (revoked, expired, unknown): the
        session ends with it, on every replica."""
        if response.status == 401:
            await self.sessions.forget(session.key)
            if not response.prepared:
                response.del_cookie(COOKIE, path="/", secure=True, httponly=True,
                                    samesite="Strict")
        return response

    async def start(self) -> None:
        s = self.settings
        self.channel = grpc.aio.insecure_channel(s.grpc_target, options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ])
        gateway = Gateway(self.channel, MethodIndex(s.services))
        logins = Logins(gateway, self.sessions, s.methods, s.oidc is not None)
        sock = bind(s.listen)
        host, port = sock.getsockname()[:2]
        self.fell_back = s.listen.port != 0 and port != s.listen.port
        context = tls_context(s.tls_cert, s.tls_key)
        scheme = "https" if context is not None else "http"
        self.guard.listening(host, port, is_loopback(s.listen.host), scheme)
        # open event streams must not hold up a shutdown: they reconnect to the next start
        self.runner = web.AppRunner(self._app(gateway, logins), access_log=None,
                                    handler_cancellation=True, shutdown_timeout=2.0)
        await self.runner.setup()
        await web.SockSite(self.runner, sock, ssl_context=context).start()
        shown = f"[{host}]" if sock.family == socket.AF_INET6 else host
        self.url = f"{scheme}://{shown}:{port}/"
        if self.fell_back:
            log.warning("console port busy; serving on an ephemeral port instead",
                        wanted=s.listen.port, url=self.url)

    async def stop(self) -> None:
        await self.feed.stop()
        if self.runner is not None:
            await self.runner.cleanup()
        if self.channel is not None:
            await self.channel.close()


def grpc_target(listen: str, port: int) -> str:
    """Where this process reaches its own gRPC listener: the bound address, with a
    wildcard host replaced by loopback."""
    if listen.startswith(("unix:", "unix-abstract:")):
        return listen
    host = listen.rsplit(":", 1)[0]
    bare = host.strip("[]")
    if bare in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif bare == "::":
        host = "[::1]"
    return f"{host}:{port}"


def console_listen(text: str) -> Listen | None:
    """The console's address from ``http_listen``; None when ``off``."""
    return Listen.parse(text, DEFAULT_HTTP_LISTEN)
