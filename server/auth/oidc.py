"""OIDC / JWT bearer tokens from an existing identity provider, verified with joserfc.

A token is accepted when, in this order:

1. it is a compact JWS no larger than :data:`MAX_TOKEN_BYTES`;
2. its ``alg`` is in :data:`ALLOWED_ALGORITHMS` (asymmetric only: never ``none``, never
   HMAC, so a public key can never be used as an HMAC secret);
3. its ``kid`` names a key of the issuer's JWKS (a token without ``kid`` is accepted only
   when the JWKS holds exactly one signing key). An unknown ``kid`` refreshes the JWKS
   (at most once per ``min_refresh_seconds``), so a key the provider rotated in is
   fetched and a key it removed stops verifying. The JWKS is also re-read when older
   than ``max_age_seconds``;
4. joserfc verifies the signature with that key and that algorithm;
5. ``iss`` equals the configured issuer, ``aud`` contains the configured audience, ``exp``
   is present and not past, ``nbf`` and ``iat`` are not in the future (each with
   ``leeway_seconds``), and the user claim (``email`` by default) is a non-empty string;
   with the ``email`` claim, ``email_verified: false`` is refused.

The principal is the user claim (normalized), ``method="oidc"``, and the groups claim
(a list of strings, or one string) as ``groups``. A verified token is remembered by its
SHA-256 for at most :data:`VERIFIED_CACHE_SECONDS` (and never past its ``exp``), so a
client re-sending its token does not pay a signature check per call; a JWKS refresh that
removes a key forgets every remembered token.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import urllib.parse
import urllib.request
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
from joserfc import jws, jwt
from joserfc.errors import (
    BadSignatureError,
    ExpiredTokenError,
    InvalidClaimError,
    JoseError,
    MissingClaimError,
)
from joserfc.jwk import JWKRegistry, Key

from neural.mlops.server.auth.principal import Principal, normalize_identity
from neural.mlops.server.clock import Clock, SystemClock
from neural.mlops.server.errors import Unauthenticated
from neural.mlops.server.tls import is_loopback

if TYPE_CHECKING:
    from neural.mlops.server.config import ServerConfig

log = structlog.get_logger(__name__)

ALLOWED_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA", "Ed25519"}
)
MAX_TOKEN_BYTES = 16 * 1024
MAX_JWKS_BYTES = 1024 * 1024
VERIFIED_CACHE_SECONDS = 60.0
VERIFIED_CACHE_SIZE = 10_000
FETCH_TIMEOUT_SECONDS = 5.0


def check_jwks_location(jwks: str) -> None:
    """Refuse a JWKS source that would let a network attacker supply the keys."""
    parsed = urllib.parse.urlsplit(jwks)
    if parsed.scheme == "https":
        return
    if parsed.scheme == "http":
        if not is_loopback(parsed.hostname or ""):
            raise ValueError(f"oidc_jwks: {jwks!r} is plain http; use https (loopback excepted)")
        return
    if parsed.scheme and len(parsed.scheme) > 1:  # "C:\\..." is a path, "ftp://" is not
        raise ValueError(f"oidc_jwks: {jwks!r}: use a file path or an https:// URL")
    if not Path(jwks).is_file():
        raise ValueError(f"oidc_jwks: {jwks} is not a file")


def _read_jwks(source: str) -> bytes:
    if source.startswith(("https://", "http://")):
        request = urllib.request.Request(source, headers={"Accept": "application/json"})
        with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT_SECONDS) as response:  # noqa: S310 (scheme checked)
            data: bytes = response.read(MAX_JWKS_BYTES + 1)
    else:
        with open(source, "rb") as fh:
            data = fh.read(MAX_JWKS_BYTES + 1)
    if len(data) > MAX_JWKS_BYTES:
        raise ValueError(f"JWKS larger than {MAX_JWKS_BYTES} bytes")
    return data


def parse_jwks(data: bytes) -> dict[str, Key]:
    """The signing keys of a JWKS document by ``kid`` (``""`` for a key without one).

    Encryption keys, symmetric keys and keys joserfc cannot import are skipped (logged),
    so one odd entry does not take the provider's other keys down with it."""
    document = json.loads(data)
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise ValueError("JWKS has no 'keys' list")
    keys: dict[str, Key] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        kid = str(entry.get("kid", ""))
        if entry.get("use", "sig") != "sig" or entry.get("kty") not in ("RSA", "EC", "OKP"):
            continue
        public = {k: v for k, v in entry.items() if k not in ("d", "p", "q", "dp", "dq", "qi")}
        try:
            keys[kid] = JWKRegistry.import_key(public)
        except (JoseError, ValueError, TypeError) as exc:
            log.warning("jwks key skipped", kid=kid, error=str(exc))
    return keys


class OidcVerifier:
    """Verifies bearer JWTs of one issuer and audience against its JWKS."""

    def __init__(
        self,
        issuer: str,
        audience: str,
        jwks: str,
        user_claim: str = "email",
        groups_claim: str = "groups",
        leeway_seconds: int = 60,
        *,
        clock: Clock | None = None,
        min_refresh_seconds: float = 30.0,
        max_age_seconds: float = 300.0,
    ) -> None:
        if not issuer or not audience or not jwks:
            raise ValueError("OIDC needs an issuer, an audience and a JWKS (file or URL)")
        check_jwks_location(jwks)
        self.issuer = issuer
        self.audience = audience
        self.jwks = jwks
        self.user_claim = user_claim
        self.groups_claim = groups_claim
        self.leeway_seconds = leeway_seconds
        self.clock = clock or SystemClock()
        self.min_refresh_seconds = min_refresh_seconds
        self.max_age_seconds = max_age_seconds
        self._keys: dict[str, Key] = {}
        self._loaded_at: float | None = None  # monotonic time of the last successful load
        self._attempted_at: float | None = None  # ... of the last attempt, failed or not
        self._refresh_lock = asyncio.Lock()
        self._verified: OrderedDict[bytes, tuple[Principal, float]] = OrderedDict()
        self.refreshes = 0

    @classmethod
    def from_config(cls, cfg: ServerConfig) -> OidcVerifier | None:
        """The verifier ``serve --auth ...,oidc`` uses; None when OIDC is not enabled."""
        if "oidc" not in cfg.auth_methods():
            return None
        missing = [
            flag
            for flag, value in (
                ("--oidc-issuer", cfg.oidc_issuer),
                ("--oidc-audience", cfg.oidc_audience),
                ("--oidc-jwks", cfg.oidc_jwks),
            )
            if not value
        ]
        if missing:
            raise ValueError(f"--auth oidc needs {', '.join(missing)}")
        return cls(
            cfg.oidc_issuer,
            cfg.oidc_audience,
            cfg.oidc_jwks,
            user_claim=cfg.oidc_user_claim,
            groups_claim=cfg.oidc_groups_claim,
        )

    @property
    def key_ids(self) -> frozenset[str]:
        return frozenset(self._keys)

    async def refresh(self, *, force: bool = False) -> bool:
        """Re-read the JWKS unless one was read within ``min_refresh_seconds`` (or
        ``force``); True when a new set was loaded. A failed read keeps the old keys."""
        async with self._refresh_lock:
            now = self.clock.monotonic()
            if (
                not force
                and self._attempted_at is not None
                and now - self._attempted_at < self.min_refresh_seconds
            ):
                return False
            self._attempted_at = now
            try:
                keys = parse_jwks(await asyncio.to_thread(_read_jwks, self.jwks))
            except (OSError, ValueError) as exc:
                log.warning("jwks refresh failed; keeping the previous keys", jwks=self.jwks,
                            error=str(exc), kids=sorted(self._keys))
                return False
            removed = set(self._keys) - set(keys)
            if removed:
                self._verified.clear()  # a token signed by a removed key must stop working
            self._keys, self._loaded_at = keys, now
            self.refreshes += 1
            log.info("jwks loaded", jwks=self.jwks, kids=sorted(keys), removed=sorted(removed))
            return True

    async def _key_for(self, kid: str | None) -> Key:
        stale = self._loaded_at is None or (
            self.clock.monotonic() - self._loaded_at >= self.max_age_seconds
        )
        if stale or (kid is not None and kid not in self._keys):
            await self.refresh()
        if self._loaded_at is None:
            raise Unauthenticated("the issuer's JWKS could not be loaded (see the server log)")
        if kid is None:
            if len(self._keys) == 1:
                return next(iter(self._keys.values()))
            raise Unauthenticated(
                f"JWT has no 'kid' header and the issuer's JWKS holds {len(self._keys)} keys"
            )
        key = self._keys.get(kid)
        if key is None:
            raise Unauthenticated(f"JWT signed with unknown key id {kid!r} (not in the JWKS)")
        return key

    def _remembered(self, digest: bytes) -> Principal | None:
        hit = self._verified.get(digest)
        if hit is None:
            return None
        principal, until = hit
        if self.clock.now().timestamp() >= until:
            del self._verified[digest]
            return None
        return principal

    async def verify(self, token: str) -> Principal:
        """The principal of a bearer JWT; :class:`Unauthenticated` saying why not."""
        raw = token.strip().encode("utf-8", "replace")
        if len(raw) > MAX_TOKEN_BYTES:
            raise Unauthenticated(f"bearer token larger than {MAX_TOKEN_BYTES} bytes")
        digest = hashlib.sha256(raw).digest()
        if (known := self._remembered(digest)) is not None:
            return known
        try:
            header = jws.extract_compact(raw).protected
        except (JoseError, ValueError, TypeError):
            raise Unauthenticated("malformed bearer token: not a JWT") from None
        alg = header.get("alg")
        if alg not in ALLOWED_ALGORITHMS:
            raise Unauthenticated(
                f"JWT algorithm {alg!r} is not allowed (allowed: "
                f"{', '.join(sorted(ALLOWED_ALGORITHMS))})"
            )
        kid = header.get("kid")
        key = await self._key_for(None if kid is None else str(kid))
        try:
            claims = jwt.decode(raw, key, algorithms=[alg]).claims
        except BadSignatureError:
            raise Unauthenticated("JWT signature does not verify") from None
        except JoseError as exc:
            raise Unauthenticated(f"JWT refused: {exc.description or exc.error}") from None
        principal = self._check_claims(claims)
        expires = float(claims["exp"]) + self.leeway_seconds
        until = min(expires, self.clock.now().timestamp() + VERIFIED_CACHE_SECONDS)
        self._verified[digest] = (principal, until)
        if len(self._verified) > VERIFIED_CACHE_SIZE:
            self._verified.popitem(last=False)
        return principal

    def _check_claims(self, claims: dict[str, Any]) -> Principal:
        options: dict[str, Any] = {self.user_claim: {"essential": True}}
        options.update(
            iss={"essential": True, "value": self.issuer},
            aud={"essential": True, "value": self.audience},
            exp={"essential": True},
        )
        registry = jwt.JWTClaimsRegistry(
            now=lambda: int(self.clock.now().timestamp()), leeway=self.leeway_seconds, **options
        )
        try:
            registry.validate(claims)
        except ExpiredTokenError:
            raise Unauthenticated("JWT expired") from None
        except MissingClaimError as exc:
            raise Unauthenticated(f"JWT lacks required claim(s): {exc.claim}") from None
        except InvalidClaimError as exc:
            raise Unauthenticated(self._claim_message(exc.claim, claims)) from None
        except JoseError as exc:
            raise Unauthenticated(f"JWT refused: {exc.description or exc.error}") from None
        name = claims[self.user_claim]
        if not isinstance(name, str) or not name.strip() or not name.isprintable():
            raise Unauthenticated(
                f"JWT claim {self.user_claim!r} is not a non-empty printable string"
            )
        if self.user_claim == "email" and claims.get("email_verified") is False:
            raise Unauthenticated("JWT e-mail is not verified by the issuer (email_verified)")
        groups = claims.get(self.groups_claim, ())
        if isinstance(groups, str):
            groups = (groups,)
        if not isinstance(groups, (list, tuple)) or not all(isinstance(g, str) for g in groups):
            raise Unauthenticated(f"JWT claim {self.groups_claim!r} is not a list of strings")
        return Principal(name=normalize_identity(name), method="oidc", groups=tuple(groups))

    def _claim_message(self, claim: str, claims: dict[str, Any]) -> str:
        if claim == "iss":
            return f"JWT issuer {claims.get('iss')!r} is not {self.issuer!r}"
        if claim == "aud":
            return f"JWT audience {claims.get('aud')!r} does not include {self.audience!r}"
        if claim == "nbf":
            return "JWT not valid yet (nbf is in the future)"
        if claim == "iat":
            return "JWT issued in the future (iat)"
        return f"JWT claim {claim!r} is invalid"
