"""The console's HTTP server: static pages, the transcoding gateway, sessions, live
changes and downloads, on aiohttp in the control plane's own event loop.

Every response carries the security headers of :data:`SECURITY_HEADERS`. Requests are
refused before any handler runs when
* the ``Host`` is not this console's own address while it listens on loopback (a DNS
  rebinding page cannot talk to it under another name): 421;
* an ``/api/`` call has no live session: 401 (``SESSION_ENDED`` with the reason when the
  cookie's session has just been found over: expired, idle, its token revoked);
* the session store (the database) cannot be read: 503;
* a POST (the API, ``/logout``) lacks the session's ``X-CSRF-Token`` (compared in
  constant time), or any POST (``/login`` too) carries an ``Origin`` other than the
  console's own: 403 ``{"code": 7, "message": "CSRF token missing or wrong", ...}``.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
from aiohttp import web

from neural.mlops.server.console import status as st
from neural.mlops.server.console.sessions import COOKIE, Found, Session, SessionStore
from neural.mlops.server.storage import is_outage

STATIC_DIR = Path(__file__).resolve().parent / "static"
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
SESSION_KEY = "neural_mlops.console.session"  # a str key: aiohttp >= 3.9 (RequestKey is 3.11+)
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Listen:
    host: str
    port: int
    strict: bool  # an explicit address: busy is an error, not a fallback

    @classmethod
    def parse(cls, text: str, default: str) -> Listen | None:
        """None for ``off``; ``""`` is the default address with the busy-port fallback."""
        value = text.strip() or default
        if value.lower() == "off":
            return None
        host, sep, port = value.rpartition(":")
        if not sep or not port.isdigit() or not host:
            raise ValueError(f"http_listen: expected HOST:PORT or off, got {value!r}")
        return cls(host.strip("[]"), int(port), strict=bool(text.strip()))


def bind(listen: Listen) -> socket.socket:
    """A listening socket for ``listen``; the default port falls back to an ephemeral one
    when busy (the caller warns), an explicit one raises OSError."""
    family = socket.AF_INET6 if ":" in listen.host else socket.AF_INET
    for port in (listen.port, 0):
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((listen.host, port))
            sock.listen(128)
            sock.setblocking(False)
            return sock
        except OSError as exc:
            sock.close()
            if listen.strict or port == 0:
                raise OSError(f"cannot serve the console on {listen.host}:{listen.port}: "
                              f"{exc.strerror or exc}") from None
    raise AssertionError("unreachable")


def tls_context(cert: str, key: str) -> ssl.SSLContext | None:
    """HTTPS with the control plane's own certificate when it has one."""
    if not cert or not key:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


async def _security_headers(_request: web.Request, response: web.StreamResponse) -> None:
    response.headers.update(SECURITY_HEADERS)


def csrf_refused() -> web.Response:
    return st.error(grpc.StatusCode.PERMISSION_DENIED, "CSRF token missing or wrong",
                    "CSRF_REFUSED")


class Guard:
    """The checks of the module docstring, as one aiohttp middleware."""

    def __init__(self, sessions: SessionStore) -> None:
        self.sessions = sessions
        self.hosts: frozenset[str] | None = None  # None: any Host (not on loopback)
        self.origin_scheme = "http"

    def listening(self, host: str, port: int, loopback: bool, scheme: str) -> None:
        self.origin_scheme = scheme
        if loopback:
            names = {*LOOPBACK_NAMES, f"[{host}]" if ":" in host else host}
            self.hosts = frozenset(f"{name}:{port}" for name in names)

    def own_origin(self, request: web.Request) -> str:
        return f"{self.origin_scheme}://{request.host}"

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self.hosts is not None and request.host not in self.hosts:
            return st.error(grpc.StatusCode.PERMISSION_DENIED,
                            f"this console does not answer for host {request.host!r}",
                            "MISDIRECTED", http=421)
        path = request.path
        if request.method == "POST":
            origin = request.headers.get("Origin")
            if origin is not None and origin != self.own_origin(request):
                return csrf_refused()
        if path == "/login" or not (path.startswith("/api/") or path == "/logout"):
            return await handler(request)
        try:
            found = await self.sessions.find(request.cookies.get(COOKIE))
        except Exception as exc:
            if not is_outage(exc):
                raise
            return store_unavailable()
        request[SESSION_KEY] = found.session
        if path == "/api/session":
            return await handler(request)
        return await self._checked(request, handler, found)

    async def _checked(self, request: web.Request, handler: Handler,
                       found: Found) -> web.StreamResponse:
        """An ``/api/`` call or ``/logout``: a live session, and its CSRF token on a POST."""
        session = found.session
        if session is None:
            if request.path == "/logout":
                return csrf_refused()
            if found.ended:
                return session_ended(found.ended)
            return st.error(grpc.StatusCode.UNAUTHENTICATED,
                            "no console session: log in first (POST /login)", "NO_SESSION")
        if request.method == "POST" and not session.csrf_ok(request.headers.get("X-CSRF-Token")):
            return csrf_refused()
        return await handler(request)


def session_ended(why: str) -> web.Response:
    """401: the session is over (and its cookie cleared)."""
    out = st.error(grpc.StatusCode.UNAUTHENTICATED,
                   f"the console session ended: {why}; log in again (POST /login)",
                   "SESSION_ENDED")
    out.del_cookie(COOKIE, path="/", secure=True, httponly=True, samesite="Strict")
    return out


def store_unavailable() -> web.Response:
    return st.error(grpc.StatusCode.UNAVAILABLE,
                    "the console cannot read its sessions: the database is unreachable; "
                    "try again", "STORE_UNAVAILABLE")


def session_of(request: web.Request) -> Session:
    """The live session the guard attached to an ``/api/`` request."""
    session = request[SESSION_KEY]
    assert isinstance(session, Session)
    return session


def session_or_none(request: web.Request) -> Session | None:
    """``GET /api/session``: the live session the guard found, if any."""
    session = request.get(SESSION_KEY)
    return session if isinstance(session, Session) else None


async def index(_request: web.Request) -> web.StreamResponse:
    page = STATIC_DIR / "index.html"
    if not page.is_file():
        return web.Response(status=503, text="the console's pages are not installed",
                            content_type="text/plain")
    return web.FileResponse(page, headers={"Cache-Control": "no-cache"})


async def api_not_found(request: web.Request) -> web.StreamResponse:
    return st.error(grpc.StatusCode.NOT_FOUND, f"no console API at {request.path}",
                    "UNKNOWN_PATH")


def base_app(guard: Guard) -> web.Application:
    from neural.mlops.server.console.gateway import MAX_REQUEST_BYTES

    app = web.Application(middlewares=[guard.middleware], client_max_size=MAX_REQUEST_BYTES)
    app.on_response_prepare.append(_security_headers)
    app.router.add_get("/", index)
    if STATIC_DIR.is_dir():
        app.router.add_static("/static", STATIC_DIR, follow_symlinks=False)
    return app
