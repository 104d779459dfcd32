"""Who is using the console: ``POST /login``, ``POST /logout``, ``GET /api/session``.

A login proves itself the way a gRPC client does: the console calls ``WhoAmI`` on its
own gRPC listener with the credential the login supplied (an API token, or with
``--auth none`` the declared name), so a token the server would refuse is refused here
with the same status. ``allowed`` lists the RPCs the session's roles permit, from the
server's permission table (:mod:`neural.mlops.server.auth.permissions`), so the pages
hide what the user may not do; the server refuses it anyway.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import grpc
from aiohttp import web

from neural.mlops.server.auth.permissions import RULES
from neural.mlops.server.auth.roles import PUBLIC, ROLES, SESSION
from neural.mlops.server.auth.tokens import PREFIX
from neural.mlops.server.console import status as st
from neural.mlops.server.console.gateway import Gateway
from neural.mlops.server.console.sessions import COOKIE, Session, SessionStore
from neural.mlops.server.console.web import session_or_none, store_unavailable
from neural.mlops.server.errors import FailedPrecondition, InvalidArgument
from neural.mlops.server.storage import is_outage
from neural.mlops.server.validation import actor
from neural.mlops.v1 import auth_pb2

WHOAMI = "/neural.mlops.v1.AuthService/WhoAmI"
MAX_LOGIN_BYTES = 64 * 1024


def auth_mode(methods: frozenset[str]) -> str:
    """The one way the console's login form asks for: none, token, oidc or mtls."""
    for mode in ("none", "token", "oidc"):
        if mode in methods:
            return mode
    return "mtls"


def allowed_methods(paths: Iterable[str], roles: set[str] | None) -> list[str]:
    """``Service/Method`` of each of ``paths`` (``/service/Method``) the roles permit;
    ``roles`` None: no authorization (``--auth none``), every method."""
    permissions: set[str] = set().union(*(ROLES.get(r, frozenset()) for r in roles or ()))
    out = []
    for path in sorted(paths):
        rule = RULES.get(path)
        if rule is None:
            continue  # the server refuses a method missing from its table
        if roles is None or rule.permission in (PUBLIC, SESSION) or \
                rule.permission in permissions:
            out.append(path.lstrip("/"))
    return out


class Logins:
    def __init__(self, gateway: Gateway, sessions: SessionStore, methods: frozenset[str],
                 oidc_login: bool) -> None:
        self.gateway = gateway
        self.sessions = sessions
        self.methods = methods
        self.mode = auth_mode(methods)
        self.oidc_login = oidc_login

    async def whoami(self, credential: tuple[tuple[str, str], ...]) -> auth_pb2.WhoAmIResponse:
        call = self.gateway.channel.unary_unary(
            WHOAMI, request_serializer=auth_pb2.WhoAmIRequest.SerializeToString,
            response_deserializer=auth_pb2.WhoAmIResponse.FromString)
        answer: auth_pb2.WhoAmIResponse = await call(
            auth_pb2.WhoAmIRequest(), metadata=credential, timeout=30.0)
        return answer

    def anonymous(self) -> dict[str, Any]:
        return {"authenticated": False, "auth_mode": self.mode, "subject": "", "roles": [],
                "allowed": [], "csrf_token": "", "oidc_login": self.oidc_login}

    async def describe(self, session: Session) -> dict[str, Any]:
        """The session JSON of the contract; roles read fresh from the server."""
        who = await self.whoami(session.credential)
        roles = sorted({g.role for g in who.grants})
        paths = [m.path for m in self.gateway.index.methods.values()]
        allowed = allowed_methods(paths, None if session.method == "none" else set(roles))
        return {"authenticated": True, "auth_mode": self.mode, "subject": session.subject,
                "roles": roles, "allowed": allowed, "csrf_token": session.csrf_token,
                "oidc_login": self.oidc_login}

    def _credential(self, body: dict[str, Any]) -> tuple[str, tuple[tuple[str, str], ...]]:
        """(method, gRPC metadata) of a login body; InvalidArgument saying what is wrong."""
        token, name = body.get("token"), body.get("name")
        if self.mode == "none":
            if not isinstance(name, str) or not name.strip():
                raise InvalidArgument("this server has no authentication: log in with "
                                      '{"name": "<your name>"}', field="name")
            declared = actor(name, "name")
            if not declared.isascii():  # gRPC metadata values are ASCII
                raise InvalidArgument("name must be ASCII (it travels as gRPC metadata)",
                                      field="name")
            return "none", (("x-neural-user", declared),)
        if "token" not in self.methods:
            raise InvalidArgument("this server does not accept API tokens: use the OIDC "
                                  "login (GET /login/oidc)", field="token")
        if not isinstance(token, str) or not token.strip().startswith(PREFIX):
            raise InvalidArgument(f'log in with {{"token": "{PREFIX}..."}}', field="token")
        return "token", (("authorization", f"Bearer {token.strip()}"),)

    async def login(self, request: web.Request) -> web.StreamResponse:
        raw = await request.content.read(MAX_LOGIN_BYTES + 1)
        try:
            body = json.loads(raw) if len(raw) <= MAX_LOGIN_BYTES else None
        except (UnicodeDecodeError, json.JSONDecodeError):
            body = None
        if not isinstance(body, dict):
            return st.error(grpc.StatusCode.INVALID_ARGUMENT,
                            "the login body must be a JSON object", "MALFORMED_REQUEST")
        try:
            method, credential = self._credential(body)
        except InvalidArgument as exc:
            return st.error(grpc.StatusCode.INVALID_ARGUMENT, exc.message, exc.reason,
                            field=exc.field or "")
        return await self.open_session(method, credential)

    async def open_session(self, method: str, credential: tuple[tuple[str, str], ...],
                           expires_at: float | None = None,
                           response: web.StreamResponse | None = None) -> web.StreamResponse:
        """Check the credential with WhoAmI, then start the session and set its cookie
        (on ``response`` when given: the OIDC callback's redirect)."""
        try:
            who = await self.whoami(credential)
        except grpc.aio.AioRpcError as exc:
            return st.status_response(st.from_rpc_error(exc))
        token_id = who.token_id if method == "token" else ""
        try:
            session_id, session = await self.sessions.create(
                who.principal, method, credential, expires_at=expires_at, token_id=token_id)
        except FailedPrecondition as exc:  # the store refuses writes (a broken audit chain)
            return st.error(grpc.StatusCode.FAILED_PRECONDITION,
                            f"cannot open a console session: {exc.message}", exc.reason)
        except Exception as exc:
            if not is_outage(exc):
                raise
            return store_unavailable()
        out = response if response is not None else web.json_response(
            await self.describe(session))
        out.set_cookie(COOKIE, session_id, httponly=True, secure=True, samesite="Strict",
                       path="/", max_age=int(self.sessions.ttl_seconds))
        return out

    async def logout(self, request: web.Request) -> web.StreamResponse:
        """Delete the session's row: every replica forgets it at once."""
        try:
            await self.sessions.end(request.cookies.get(COOKIE))
        except FailedPrecondition as exc:  # the store refuses writes (a broken audit chain)
            return st.error(grpc.StatusCode.FAILED_PRECONDITION,
                            f"cannot end the console session: {exc.message}", exc.reason)
        except Exception as exc:
            if not is_outage(exc):
                raise
            return store_unavailable()
        out = web.json_response(self.anonymous())
        out.del_cookie(COOKIE, path="/", secure=True, httponly=True, samesite="Strict")
        return out

    async def session(self, request: web.Request) -> web.StreamResponse:
        session = session_or_none(request)  # found (and checked) by the guard
        if session is None:
            return web.json_response(self.anonymous())
        try:
            return web.json_response(await self.describe(session))
        except grpc.aio.AioRpcError as exc:
            if exc.code() is grpc.StatusCode.UNAUTHENTICATED:  # revoked or expired
                await self.sessions.forget(session.key)
                return web.json_response(self.anonymous())
            return st.status_response(st.from_rpc_error(exc))
