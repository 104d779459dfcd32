"""The console's OIDC login: the authorization-code flow with PKCE (RFC 7636, S256).

``GET /login/oidc`` reads the issuer's discovery document, starts a pending login with a
fresh ``state``, ``nonce`` and code verifier (:mod:`.oidc_pending`: in the database for
:data:`PENDING_SECONDS`, so the callback may reach any replica; bound to the browser by a
``SameSite=Lax`` cookie holding the secret they derive from: the callback is a cross-site
navigation from the issuer, which a Strict cookie would not survive) and redirects to the
issuer's authorization endpoint with ``code_challenge = BASE64URL(SHA-256(verifier))``.
``GET /login/oidc/callback`` uses up the pending login its state names, checks the
browser's cookie derives that state, exchanges the code (with the verifier) at the token
endpoint, verifies the ID token exactly as the gRPC server verifies bearer JWTs
(:class:`OidcVerifier`: signature, ``iss``, ``aud``, ``exp``), checks its ``nonce``, and
opens a session (:mod:`.sessions`: in the database, the ID token encrypted) that forwards
the ID token until it expires. The client id is the configured audience (the ID token's
``aud``); the console is a public client (no secret), which PKCE exists for.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import urllib.parse
from typing import TYPE_CHECKING, Any

import aiohttp
import grpc
from aiohttp import web
from joserfc import jws

from neural.mlops.server.auth.oidc import OidcVerifier, check_jwks_location
from neural.mlops.server.console import status as st
from neural.mlops.server.console.oidc_pending import PENDING_SECONDS, Pending, PendingLogins
from neural.mlops.server.errors import Unauthenticated
from neural.mlops.server.storage import is_outage

if TYPE_CHECKING:
    from neural.mlops.server.console.login import Logins
    from neural.mlops.server.console.web import Guard

STATE_COOKIE = "nmo_oidc_state"
FETCH_TIMEOUT = aiohttp.ClientTimeout(total=10.0)
SCOPES = "openid email profile"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def code_challenge(verifier: str) -> str:
    """RFC 7636 section 4.2: S256."""
    return _b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def _store_unavailable() -> web.Response:
    return st.error(grpc.StatusCode.UNAVAILABLE, "the console cannot record the login: the "
                    "database is unreachable; try again", "STORE_UNAVAILABLE")


def _refused(message: str) -> web.Response:
    return st.error(grpc.StatusCode.UNAUTHENTICATED, f"OIDC login refused: {message}",
                    "OIDC_LOGIN_REFUSED")


class OidcLogin:
    def __init__(self, verifier: OidcVerifier, client_id: str) -> None:
        check_jwks_location(verifier.issuer.rstrip("/") + "/.well-known/openid-configuration")
        self.verifier = verifier
        self.client_id = client_id
        self.pending: PendingLogins | None = None  # set with the routes (the console's store)
        self._discovery: dict[str, Any] | None = None

    def routes(self, app: web.Application, logins: Logins, guard: Guard) -> None:
        self.pending = PendingLogins(logins.sessions.db)

        async def start(request: web.Request) -> web.StreamResponse:
            return await self.start(request, guard.own_origin(request))

        async def callback(request: web.Request) -> web.StreamResponse:
            return await self.callback(request, logins)

        app.router.add_get("/login/oidc", start)
        app.router.add_get("/login/oidc/callback", callback)

    async def discovery(self) -> dict[str, Any]:
        if self._discovery is None:
            url = self.verifier.issuer.rstrip("/") + "/.well-known/openid-configuration"
            async with aiohttp.ClientSession(timeout=FETCH_TIMEOUT) as http, \
                    http.get(url) as response:
                response.raise_for_status()
                document = await response.json(content_type=None)
            if not isinstance(document, dict) or document.get("issuer") != self.verifier.issuer:
                raise ValueError("the discovery document does not name the configured issuer")
            for key in ("authorization_endpoint", "token_endpoint"):
                check_jwks_location(str(document.get(key, "")))  # https, or http on loopback
            self._discovery = document
        return self._discovery

    async def start(self, request: web.Request, origin: str) -> web.StreamResponse:
        try:
            document = await self.discovery()
        except (aiohttp.ClientError, ValueError, TimeoutError) as exc:
            return st.error(grpc.StatusCode.UNAVAILABLE,
                            f"the OIDC issuer cannot be reached: {exc}", "OIDC_UNAVAILABLE")
        assert self.pending is not None
        try:
            secret, login = await self.pending.begin(origin + "/login/oidc/callback")
        except Exception as exc:
            if not is_outage(exc):
                raise
            return _store_unavailable()
        query = urllib.parse.urlencode({
            "response_type": "code", "client_id": self.client_id, "scope": SCOPES,
            "redirect_uri": login.redirect_uri, "state": login.state, "nonce": login.nonce,
            "code_challenge": code_challenge(login.verifier), "code_challenge_method": "S256",
        })
        response = web.Response(status=302, headers={
            "Location": f"{document['authorization_endpoint']}?{query}",
            "Cache-Control": "no-store"})
        response.set_cookie(STATE_COOKIE, secret, httponly=True, secure=True, samesite="Lax",
                            path="/login/oidc", max_age=int(PENDING_SECONDS))
        return response

    async def _take(self, request: web.Request) -> Pending | None:
        """The pending login the callback's state names (used up), bound to this
        browser's cookie."""
        assert self.pending is not None
        return await self.pending.take(request.query.get("state", ""),
                                       request.cookies.get(STATE_COOKIE, ""))

    async def callback(self, request: web.Request, logins: Logins) -> web.StreamResponse:
        if "error" in request.query:
            return _refused(f"the issuer answered {request.query['error']!r}")
        try:
            pending = await self._take(request)
        except Exception as exc:
            if not is_outage(exc):
                raise
            return _store_unavailable()
        if pending is None:
            return _refused("unknown or expired state (start again at /login/oidc)")
        code = request.query.get("code", "")
        if not code:
            return _refused("the callback carries no code")
        try:
            id_token = await self._exchange(code, pending)
            claims = await self._verified_claims(id_token, pending)
        except Unauthenticated as exc:
            return _refused(exc.message)
        except (aiohttp.ClientError, ValueError, TimeoutError) as exc:
            return _refused(f"the token exchange failed: {exc}")
        response = web.Response(status=302, headers={"Location": "/#/",
                                                     "Cache-Control": "no-store"})
        response.del_cookie(STATE_COOKIE, path="/login/oidc")
        return await logins.open_session("oidc", (("authorization", f"Bearer {id_token}"),),
                                         expires_at=float(claims["exp"]), response=response)

    async def _exchange(self, code: str, pending: Pending) -> str:
        document = await self.discovery()
        form = {"grant_type": "authorization_code", "code": code,
                "redirect_uri": pending.redirect_uri, "client_id": self.client_id,
                "code_verifier": pending.verifier}
        async with aiohttp.ClientSession(timeout=FETCH_TIMEOUT) as http, \
                http.post(str(document["token_endpoint"]), data=form,
                          headers={"Accept": "application/json"}) as response:
            answer = await response.json(content_type=None)
            if response.status != 200 or not isinstance(answer, dict):
                raise ValueError(f"HTTP {response.status} from the token endpoint")
        id_token = answer.get("id_token")
        if not isinstance(id_token, str) or not id_token:
            raise ValueError("the token endpoint returned no id_token")
        return id_token

    async def _verified_claims(self, id_token: str, pending: Pending) -> dict[str, Any]:
        await self.verifier.verify(id_token)  # signature, iss, aud, exp, user claim
        claims = json.loads(jws.extract_compact(id_token.encode()).payload)
        nonce = claims.get("nonce")
        if not isinstance(nonce, str) or not hmac.compare_digest(nonce.encode(),
                                                                  pending.nonce.encode()):
            raise Unauthenticated("the ID token's nonce is not the one this login sent")
        return dict(claims)
