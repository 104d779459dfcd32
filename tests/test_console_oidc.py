"""The console's OIDC login end to end: a small real OIDC issuer on loopback (discovery,
JWKS, an authorization endpoint that redirects back with a code, a token endpoint that
checks the PKCE verifier) and a control plane with ``--auth token,oidc``; the test is the
browser, following each redirect itself."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import RSAKey

sys.path.insert(0, str(Path(__file__).parent))

from support.console import (  # noqa: E402
    Console,
    bootstrap_admin,
    cookie_attributes,
    start_console_server,
)
from support.databases import execute_sql  # noqa: E402

from neural.mlops.server.console.oidc_pending import derive  # noqa: E402

pytestmark = pytest.mark.storage

CLIENT = "neural-console"


class Issuer:
    """An OIDC provider: codes bound to the client, redirect URI and PKCE challenge."""

    def __init__(self) -> None:
        self.key = RSAKey.generate_key(2048, parameters={"kid": "k1"}, private=True)
        self.codes: dict[str, dict[str, str]] = {}
        self.nonce_override = ""
        self.verifiers: list[str] = []
        self.issued: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                url = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(url.query))
                if url.path == "/.well-known/openid-configuration":
                    self._json(200, outer.discovery())
                elif url.path == "/jwks":
                    self._json(200, {"keys": [outer.key.as_dict(private=False) |
                                              {"use": "sig"}]})
                elif url.path == "/authorize":
                    self._redirect(outer.authorize(query))
                else:
                    self._json(404, {"error": "not_found"})

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length", "0"))
                form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
                status, body = outer.token(form)
                self._json(status, body)

            def _json(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _redirect(self, location: str) -> None:
                self.send_response(302)
                self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def discovery(self) -> dict[str, Any]:
        return {"issuer": self.url, "authorization_endpoint": f"{self.url}/authorize",
                "token_endpoint": f"{self.url}/token", "jwks_uri": f"{self.url}/jwks",
                "code_challenge_methods_supported": ["S256"]}

    def authorize(self, q: dict[str, str]) -> str:
        assert q["response_type"] == "code" and q["client_id"] == CLIENT
        assert q["code_challenge_method"] == "S256" and "openid" in q["scope"].split()
        code = secrets.token_urlsafe(16)
        self.codes[code] = q
        return q["redirect_uri"] + "?" + urllib.parse.urlencode({"code": code,
                                                                  "state": q["state"]})

    def token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        q = self.codes.pop(form.get("code", ""), None)
        if q is None or form.get("grant_type") != "authorization_code":
            return 400, {"error": "invalid_grant"}
        verifier = form.get("code_verifier", "")
        self.verifiers.append(verifier)
        digest = hashlib.sha256(verifier.encode()).digest()
        challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        if challenge != q["code_challenge"] or form.get("redirect_uri") != q["redirect_uri"] \
                or form.get("client_id") != CLIENT:
            return 400, {"error": "invalid_grant"}
        now = int(time.time())
        claims = {"iss": self.url, "aud": CLIENT, "sub": "u-1", "email": "Alice@Example.com",
                  "email_verified": True, "iat": now, "exp": now + 600,
                  "nonce": self.nonce_override or q["nonce"]}
        token = jwt.encode({"alg": "RS256", "kid": "k1"}, claims, self.key)
        self.issued.append(token)
        return 200, {"access_token": "opaque", "token_type": "Bearer", "id_token": token}


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Issuer, str, str]]:
    issuer = Issuer()
    data = tmp_path_factory.mktemp("oidc") / "data"
    DATA.append(data)
    admin = bootstrap_admin(data)
    server, url = start_console_server(data, *_flags(issuer))
    try:
        yield issuer, url, admin
    finally:
        server.stop()
        issuer.httpd.shutdown()


DATA: list[Path] = []  # the module's store


def _flags(issuer: Issuer) -> tuple[str, ...]:
    return ("--auth", "token,oidc", "--oidc-issuer", issuer.url, "--oidc-audience", CLIENT,
            "--oidc-jwks", f"{issuer.url}/jwks")


def _begin(url: str) -> tuple[requests.Response, str]:
    """GET /login/oidc: the redirect to the issuer and the state cookie (the secret the
    login's state, nonce and verifier derive from)."""
    r = requests.get(f"{url}/login/oidc", allow_redirects=False)
    assert r.status_code == 302, r.text
    cookie = cookie_attributes(r.headers["Set-Cookie"])
    assert cookie["samesite"] == "Lax" and {"httponly", "secure"} <= set(cookie)
    return r, cookie["nmo_oidc_state"]


def _at_issuer(r: requests.Response) -> str:
    """The browser at the issuer: its redirect back to the console's callback."""
    back = requests.get(r.headers["Location"], allow_redirects=False)
    assert back.status_code == 302
    return str(back.headers["Location"])


def test_pkce_login_opens_a_session_for_the_id_tokens_user(
        setup: tuple[Issuer, str, str]) -> None:
    issuer, url, admin_token = setup
    admin = Console(url)
    assert admin.login(token=admin_token).status_code == 200
    admin.ok("AuthService", "CreateGrant", {"subject": "alice@example.com", "role": "viewer"})
    assert admin.session()["oidc_login"] is True

    r, state = _begin(url)
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(r.headers["Location"]).query))
    assert query["state"] == derive(state, "").state != state  # the cookie stays a secret
    assert query["redirect_uri"] == f"{url}/login/oidc/callback"
    callback = _at_issuer(r)
    done = requests.get(callback, headers={"Cookie": f"nmo_oidc_state={state}"},
                        allow_redirects=False)
    assert done.status_code == 302 and done.headers["Location"] == "/#/"
    sid = next(cookie_attributes(c)["nmo_session"] for c in done.raw.headers.getlist(
        "Set-Cookie") if c.startswith("nmo_session="))
    # the verifier the issuer checked is the one whose S256 challenge the console sent
    sent = hashlib.sha256(issuer.verifiers[-1].encode()).digest()
    assert base64.urlsafe_b64encode(sent).rstrip(b"=").decode() == query["code_challenge"]

    alice = Console(url, cookie=sid)
    session = alice.session()
    assert session["authenticated"] and session["subject"] == "alice@example.com"
    assert session["roles"] == ["viewer"]
    alice.csrf = session["csrf_token"]
    who = alice.ok("AuthService", "WhoAmI")
    assert who["method"].lower().endswith("oidc") and who["principal"] == "alice@example.com"
    assert alice.rpc("RegistryService", "ApprovePromotion",
                     {"name": "m", "version": "1"}).status_code == 403


def test_a_callback_without_the_browsers_state_cookie_is_refused(
        setup: tuple[Issuer, str, str]) -> None:
    _issuer, url, _admin = setup
    r, state = _begin(url)
    callback = _at_issuer(r)
    refused = requests.get(callback, allow_redirects=False)  # another browser: no cookie
    assert refused.status_code == 401 and "Set-Cookie" not in refused.headers
    # and the state cannot be replayed afterwards either
    replay = requests.get(callback, headers={"Cookie": f"nmo_oidc_state={state}"},
                          allow_redirects=False)
    assert replay.status_code == 401


def test_an_id_token_with_another_nonce_is_refused(setup: tuple[Issuer, str, str]) -> None:
    issuer, url, _admin = setup
    issuer.nonce_override = "replayed-nonce"
    try:
        r, state = _begin(url)
        callback = _at_issuer(r)
        refused = requests.get(callback, headers={"Cookie": f"nmo_oidc_state={state}"},
                               allow_redirects=False)
    finally:
        issuer.nonce_override = ""
    assert refused.status_code == 401 and "nonce" in refused.json()["message"]


def test_a_login_started_on_one_replica_finishes_on_another_and_stores_no_id_token(
        setup: tuple[Issuer, str, str]) -> None:
    issuer, url, admin_token = setup
    admin = Console(url)
    assert admin.login(token=admin_token).status_code == 200
    admin.ok("AuthService", "CreateGrant", {"subject": "alice@example.com", "role": "viewer"})
    other, other_url = start_console_server(DATA[0], *_flags(issuer))  # a second replica
    try:
        r, state = _begin(url)  # started here ...
        callback = _at_issuer(r).replace(url, other_url)  # ... the balancer sends it there
        done = requests.get(callback, headers={"Cookie": f"nmo_oidc_state={state}"},
                            allow_redirects=False)
        assert done.status_code == 302, done.text
        sid = next(cookie_attributes(c)["nmo_session"] for c in done.raw.headers.getlist(
            "Set-Cookie") if c.startswith("nmo_session="))
        for where in (url, other_url):  # the session is known to both
            assert Console(where, cookie=sid).session()["subject"] == "alice@example.com"
    finally:
        other.stop()
    id_token = issuer.issued[-1]
    [rows] = execute_sql(DATA[0], "SELECT * FROM console_sessions")
    [logins] = execute_sql(DATA[0], "SELECT * FROM console_oidc_logins")
    stored = repr(rows) + repr(logins)
    for part in (id_token, *id_token.split("."), sid, state):
        assert part not in stored
    key = hashlib.sha256(sid.encode()).hexdigest()
    [row] = [r for r in rows if key in r]
    assert "alice@example.com" in row and "oidc" in row
