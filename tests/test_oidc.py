"""OIDC bearer tokens: real keys, a JWKS file and a JWKS served over loopback HTTP."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from neural.mlops.server.auth.oidc import OidcVerifier
from neural.mlops.server.clock import ManualClock
from neural.mlops.server.config import ServerConfig
from neural.mlops.server.errors import Unauthenticated
from neural.mlops.v1 import auth_pb2, auth_pb2_grpc

sys.path.insert(0, str(Path(__file__).parent))

from support.secure_server import SecurePlane, bearer  # noqa: E402

ISSUER = "https://idp.example.com/realms/ml"
AUDIENCE = "neural-mlops"


def rsa_key(kid: str) -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": kid}, private=True)


def jwks_of(*keys: Any) -> dict[str, Any]:
    return {"keys": [k.as_dict(private=False) | {"use": "sig"} for k in keys]}


def claims(clock: ManualClock, **extra: Any) -> dict[str, Any]:
    now = int(clock.now().timestamp())
    base = {"iss": ISSUER, "aud": AUDIENCE, "sub": "u-1", "email": "Alice@Example.com",
            "email_verified": True, "groups": ["ml-reviewers"], "iat": now, "exp": now + 300}
    return base | extra


def sign(key: Any, body: dict[str, Any], alg: str = "RS256", **header: Any) -> str:
    return jwt.encode({"alg": alg, "kid": key.kid, **header}, body, key, algorithms=[alg])


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


class JwksServer:
    """A JWKS endpoint on loopback whose document the test swaps, counting fetches."""

    def __init__(self) -> None:
        self.document: dict[str, Any] = {"keys": []}
        self.fetches = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                outer.fetches += 1
                body = json.dumps(outer.document).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/certs"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def jwks_server() -> Iterator[JwksServer]:
    srv = JwksServer()
    yield srv
    srv.close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def key() -> RSAKey:
    return rsa_key("k1")


@pytest.fixture
def verifier(tmp_path: Path, key: RSAKey, clock: ManualClock) -> OidcVerifier:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(jwks_of(key)))
    return OidcVerifier(ISSUER, AUDIENCE, str(path), clock=clock)


async def test_a_valid_token_from_a_jwks_file_is_a_principal_with_groups(
    verifier: OidcVerifier, key: RSAKey, clock: ManualClock
) -> None:
    principal = await verifier.verify(sign(key, claims(clock)))
    assert (principal.name, principal.method, principal.groups) == (
        "alice@example.com", "oidc", ("ml-reviewers",)
    )


async def test_an_es256_token_verifies_against_a_jwks_url(
    jwks_server: JwksServer, clock: ManualClock
) -> None:
    ec = ECKey.generate_key("P-256", parameters={"kid": "ec-1"}, private=True)
    jwks_server.document = jwks_of(ec)
    verifier = OidcVerifier(ISSUER, AUDIENCE, jwks_server.url, clock=clock,
                            user_claim="sub", groups_claim="roles")
    principal = await verifier.verify(sign(ec, claims(clock, roles="ops"), alg="ES256"))
    assert (principal.name, principal.groups) == ("u-1", ("ops",))


async def test_a_rotated_in_key_is_fetched_and_a_removed_key_stops_verifying(
    jwks_server: JwksServer, clock: ManualClock
) -> None:
    old, new = rsa_key("2025"), rsa_key("2026")
    jwks_server.document = jwks_of(old)
    verifier = OidcVerifier(ISSUER, AUDIENCE, jwks_server.url, clock=clock)
    token_old = sign(old, claims(clock))
    await verifier.verify(token_old)
    assert jwks_server.fetches == 1

    jwks_server.document = jwks_of(new)  # the provider rotates: the old key is gone
    clock.advance(31)
    principal = await verifier.verify(sign(new, claims(clock)))
    assert principal.name == "alice@example.com"
    assert jwks_server.fetches == 2 and verifier.key_ids == {"2026"}

    # Already verified once, the old token is still refused: removing a key empties the
    # verified-token cache.
    with pytest.raises(Unauthenticated, match="unknown key id '2025'"):
        await verifier.verify(token_old)


async def test_unknown_key_ids_refresh_the_jwks_at_most_once_per_interval(
    jwks_server: JwksServer, key: RSAKey, clock: ManualClock
) -> None:
    jwks_server.document = jwks_of(key)
    verifier = OidcVerifier(ISSUER, AUDIENCE, jwks_server.url, clock=clock)
    await verifier.verify(sign(key, claims(clock)))
    stranger = rsa_key("stranger")
    for _ in range(5):
        with pytest.raises(Unauthenticated, match="unknown key id 'stranger'"):
            await verifier.verify(sign(stranger, claims(clock, sub="x")))
    assert jwks_server.fetches == 1  # within min_refresh_seconds of the first load
    clock.advance(30)
    with pytest.raises(Unauthenticated, match="unknown key id"):
        await verifier.verify(sign(stranger, claims(clock)))
    assert jwks_server.fetches == 2


async def test_a_stale_jwks_is_reread_after_max_age(
    jwks_server: JwksServer, key: RSAKey, clock: ManualClock
) -> None:
    jwks_server.document = jwks_of(key)
    verifier = OidcVerifier(ISSUER, AUDIENCE, jwks_server.url, clock=clock)
    await verifier.verify(sign(key, claims(clock)))
    jwks_server.document = {"keys": []}  # the key is withdrawn; no new kid ever shows up
    clock.advance(301)
    with pytest.raises(Unauthenticated, match="unknown key id 'k1'"):
        await verifier.verify(sign(key, claims(clock, sub="again")))


def _none_token(clock: ManualClock) -> str:
    return f"{b64({'alg': 'none', 'kid': 'k1'})}.{b64(claims(clock))}."


def _hs256_with_public_key(key: RSAKey, clock: ManualClock) -> str:
    # The classic confusion attack: the verifier's public key used as an HMAC secret. Built
    # by hand, as an attacker would: newer joserfc releases refuse to make such a key.
    signing_input = f"{b64({'alg': 'HS256', 'kid': 'k1'})}.{b64(claims(clock))}"
    mac = hmac.new(key.as_pem(private=False), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


def _tampered(key: RSAKey, clock: ManualClock) -> str:
    header, _, signature = sign(key, claims(clock)).split(".")
    return f"{header}.{b64(claims(clock, email='mallory@example.com'))}.{signature}"


REFUSED = {
    "expired": (lambda k, c: sign(k, claims(c, exp=int(c.now().timestamp()) - 61)),
                "JWT expired"),
    "nbf in the future": (lambda k, c: sign(k, claims(c, nbf=int(c.now().timestamp()) + 120)),
                          "not valid yet"),
    "wrong issuer": (lambda k, c: sign(k, claims(c, iss="https://evil.example.com")),
                     "issuer 'https://evil.example.com' is not"),
    "wrong audience": (lambda k, c: sign(k, claims(c, aud=["other-app"])),
                       "audience \\['other-app'\\] does not include 'neural-mlops'"),
    "alg none": (lambda k, c: _none_token(c), "algorithm 'none' is not allowed"),
    "HS256 with the public key": (_hs256_with_public_key, "algorithm 'HS256' is not allowed"),
    "unknown kid": (lambda k, c: sign(rsa_key("nobody"), claims(c)), "unknown key id 'nobody'"),
    "alg that does not fit the key": (
        lambda k, c: sign(ECKey.generate_key("P-256", parameters={"kid": "k1"}, private=True),
                          claims(c), alg="ES256"),
        "requires 'EC' key"),
    "tampered payload": (_tampered, "signature does not verify"),
    "no exp": (lambda k, c: sign(k, {x: v for x, v in claims(c).items() if x != "exp"}),
               "lacks required claim\\(s\\): exp"),
    "no user claim": (lambda k, c: sign(k, {x: v for x, v in claims(c).items() if x != "email"}),
                      "lacks required claim\\(s\\): email"),
    "control characters in the name": (
        lambda k, c: sign(k, claims(c, email="bob@example.com\u202e")), "printable"),
    "unverified e-mail": (lambda k, c: sign(k, claims(c, email_verified=False)),
                          "not verified"),
    "not a JWT": (lambda k, c: "nmo_abc_def", "malformed bearer token"),
}


@pytest.mark.parametrize("case", list(REFUSED))
async def test_bad_tokens_are_refused_with_a_clear_message(
    case: str, verifier: OidcVerifier, key: RSAKey, clock: ManualClock
) -> None:
    make, message = REFUSED[case]
    with pytest.raises(Unauthenticated, match=message):
        await verifier.verify(make(key, clock))


async def test_small_clock_skew_is_tolerated(
    verifier: OidcVerifier, key: RSAKey, clock: ManualClock
) -> None:
    now = int(clock.now().timestamp())
    await verifier.verify(sign(key, claims(clock, exp=now - 30, nbf=now + 30)))


async def test_a_cached_token_is_refused_once_it_expires(
    verifier: OidcVerifier, key: RSAKey, clock: ManualClock
) -> None:
    token = sign(key, claims(clock, exp=int(clock.now().timestamp()) + 10))
    await verifier.verify(token)
    await verifier.verify(token)  # remembered
    clock.advance(71)  # past exp + leeway
    with pytest.raises(Unauthenticated, match="JWT expired"):
        await verifier.verify(token)


def test_from_config_is_none_without_oidc_and_names_missing_settings(tmp_path: Path) -> None:
    assert OidcVerifier.from_config(ServerConfig(auth="token")) is None
    with pytest.raises(ValueError, match="--oidc-audience, --oidc-jwks"):
        OidcVerifier.from_config(ServerConfig(auth="oidc", oidc_issuer=ISSUER))
    jwks = tmp_path / "jwks.json"
    jwks.write_text('{"keys": []}')
    cfg = ServerConfig(auth="token,oidc", oidc_issuer=ISSUER, oidc_audience=AUDIENCE,
                       oidc_jwks=str(jwks), oidc_user_claim="preferred_username")
    verifier = OidcVerifier.from_config(cfg)
    assert verifier is not None and verifier.user_claim == "preferred_username"


def test_a_jwks_over_plain_http_to_another_host_is_refused() -> None:
    with pytest.raises(ValueError, match="plain http"):
        OidcVerifier(ISSUER, AUDIENCE, "http://idp.example.com/certs")


# --- end to end: a JWT bearer call through the control plane's interceptor ---


def test_a_jwt_bearer_call_reaches_the_server_as_its_principal(tmp_path: Path) -> None:
    plane = SecurePlane.start(tmp_path)
    try:
        with plane.channel() as channel:
            auth = auth_pb2_grpc.AuthServiceStub(channel)
            token = plane.jwt("Carol@Example.com", groups=("ml-auditors",))
            me = auth.WhoAmI(auth_pb2.WhoAmIRequest(), metadata=bearer(token), timeout=10)
            assert (me.principal, me.method, list(me.groups)) == (
                "carol@example.com", auth_pb2.AUTH_METHOD_OIDC, ["ml-auditors"]
            )
            expired = plane.jwt("carol@example.com", lifetime=-3600)
            with pytest.raises(grpc.RpcError) as refused:
                auth.WhoAmI(auth_pb2.WhoAmIRequest(), metadata=bearer(expired), timeout=10)
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert "JWT expired" in (refused.value.details() or "")
    finally:
        plane.stop()
