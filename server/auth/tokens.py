"""API tokens: issued by the control plane, stored as hashes, checked in constant time.

A token reads ``nmo_<id>_<secret>``: the id (16 hex digits) finds the row, the secret
(256 random bits, base64url) is checked against the stored ``sha256(secret)`` with
``hmac.compare_digest``. A 256-bit random secret cannot be guessed from its hash, so no
slow or keyed hash is needed. The secret is returned once, at creation.

Verified rows are cached for :data:`CACHE_SECONDS`. A revocation through this store
(the RevokeToken RPC) evicts the entry, so the token fails on its next call; a
revocation written by another process sharing the store takes effect within the TTL.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from neural.mlops.server.audit.events import EventType
from neural.mlops.server.auth.principal import normalize_identity
from neural.mlops.server.auth.roles import check_role
from neural.mlops.server.clock import Clock, from_us, to_us
from neural.mlops.server.errors import InvalidArgument, NotFound, Unauthenticated
from neural.mlops.server.identity import current_call
from neural.mlops.server.storage import Database
from neural.mlops.server.storage.schema import api_tokens

PREFIX = "nmo_"
CACHE_SECONDS = 5.0
MAX_NAME = 320
MAX_GLOB = 300
MAX_LIFETIME_SECONDS = 100 * 366 * 86_400  # a token outliving its century is a mistake


@dataclass(frozen=True, slots=True)
class ApiToken:
    """A token's stored record (never the secret)."""

    token_id: str
    name: str
    roles: tuple[str, ...]
    models: tuple[str, ...]
    created_by: str
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    revoked_by: str = ""

    def state(self, now: datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and now >= self.expires_at:
            return "expired"
        return "active"


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: ApiToken
    secret: str  # the whole bearer string; shown once


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def check_globs(models: list[str] | tuple[str, ...], *, field: str = "models") -> tuple[str, ...]:
    globs = tuple(g.strip() for g in models if g.strip()) or ("*",)
    for g in globs:
        if len(g) > MAX_GLOB:
            raise InvalidArgument(f"model glob longer than {MAX_GLOB} characters", field=field)
    return globs


def check_name(name: str, *, field: str = "name") -> str:
    text = normalize_identity(name)
    if not text or len(text) > MAX_NAME:
        raise InvalidArgument(f"{field} must be 1-{MAX_NAME} characters", field=field)
    return text


def _row_token(row: sa.Row[Any]) -> ApiToken:
    return ApiToken(
        token_id=row.token_id,
        name=row.name,
        roles=tuple(json.loads(row.roles)),
        models=tuple(json.loads(row.models)),
        created_by=row.created_by,
        created_at=from_us(row.created_us),
        expires_at=from_us(row.expires_us) if row.expires_us is not None else None,
        revoked_at=from_us(row.revoked_us) if row.revoked_us is not None else None,
        revoked_by=row.revoked_by or "",
    )


class TokenStore:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        self._cache: dict[str, tuple[ApiToken, str, float]] = {}

    async def create(
        self,
        name: str,
        roles: list[str] | tuple[str, ...],
        models: list[str] | tuple[str, ...] = (),
        expires_in: timedelta | None = None,
    ) -> IssuedToken:
        """Issue a token for principal ``name`` with ``roles`` over ``models`` globs."""
        name = check_name(name)
        role_names = tuple(dict.fromkeys(check_role(r, field="roles") for r in roles))
        if not role_names:
            raise InvalidArgument("a token needs at least one role", field="roles")
        globs = check_globs(models)
        if expires_in is not None and expires_in <= timedelta(0):
            raise InvalidArgument("expiry must be in the future", field="expires_in")
        if expires_in is not None and expires_in.total_seconds() > MAX_LIFETIME_SECONDS:
            raise InvalidArgument(f"expiry is at most {MAX_LIFETIME_SECONDS} s (100 years) "
                                  "away", field="expires_in")
        token_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        now = self.clock.now()
        expires = now + expires_in if expires_in is not None else None
        actor = current_call().actor
        token = ApiToken(token_id, name, role_names, globs, actor, now, expires)
        async with self.db.change() as ch:
            await ch.conn.execute(api_tokens.insert().values(
                token_id=token_id, name=name, secret_hash=_hash(secret),
                roles=json.dumps(list(role_names)), models=json.dumps(list(globs)),
                created_by=actor, created_us=to_us(now),
                expires_us=to_us(expires) if expires is not None else None,
            ))
            ch.record(
                EventType.CONFIGURATION_CHANGED, resource_type="api_token",
                resource_id=token_id, action="token_created",
                details={"name": name, "roles": list(role_names), "models": list(globs),
                         "expires_at": expires.isoformat() if expires else None},
            )
        return IssuedToken(token, f"{PREFIX}{token_id}_{secret}")

    async def list_tokens(self, include_revoked: bool = False) -> list[ApiToken]:
        q = sa.select(api_tokens).order_by(api_tokens.c.created_us, api_tokens.c.token_id)
        if not include_revoked:
            q = q.where(api_tokens.c.revoked_us.is_(None))
        async with self.db.read() as conn:
            return [_row_token(r) for r in (await conn.execute(q)).all()]

    async def revoke(self, token_id: str) -> ApiToken:
        token_id = token_id.strip()
        if token_id.startswith(PREFIX):  # a whole token pasted: revoke it by its id
            token_id = token_id[len(PREFIX):].split("_", 1)[0]
        now = self.clock.now()
        actor = current_call().actor
        async with self.db.change() as ch:
            row = (await ch.conn.execute(
                sa.select(api_tokens).where(api_tokens.c.token_id == token_id)
            )).one_or_none()
            if row is None:
                raise NotFound(f"no API token {token_id!r}", field="token_id")
            if row.revoked_us is None:
                await ch.conn.execute(api_tokens.update()
                                      .where(api_tokens.c.token_id == token_id)
                                      .values(revoked_us=to_us(now), revoked_by=actor))
            ch.record(
                EventType.CONFIGURATION_CHANGED, resource_type="api_token",
                resource_id=token_id, action="token_revoked", details={"name": row.name},
            )
            ch.on_commit(lambda: self._cache.pop(token_id, None))
        self._cache.pop(token_id, None)
        async with self.db.read() as conn:
            row = (await conn.execute(
                sa.select(api_tokens).where(api_tokens.c.token_id == token_id)
            )).one()
        return _row_token(row)

    async def get(self, token_id: str) -> ApiToken:
        cached = self._cache.get(token_id)
        if cached is not None:
            return cached[0]
        async with self.db.read() as conn:
            row = (await conn.execute(
                sa.select(api_tokens).where(api_tokens.c.token_id == token_id)
            )).one_or_none()
        if row is None:
            raise NotFound(f"no API token {token_id!r}", field="token_id")
        return _row_token(row)

    async def authenticate(self, bearer: str) -> ApiToken:
        """The active token whose secret ``bearer`` holds; Unauthenticated otherwise."""
        if not bearer.startswith(PREFIX):
            raise Unauthenticated("malformed API token (expected nmo_<id>_<secret>)")
        token_id, sep, secret = bearer[len(PREFIX):].partition("_")
        if not sep or not token_id or not secret:
            raise Unauthenticated("malformed API token (expected nmo_<id>_<secret>)")
        now_mono = self.clock.monotonic()
        cached = self._cache.get(token_id)
        if cached is None or now_mono - cached[2] > CACHE_SECONDS:
            async with self.db.read() as conn:
                row = (await conn.execute(
                    sa.select(api_tokens).where(api_tokens.c.token_id == token_id)
                )).one_or_none()
            if row is None:
                raise Unauthenticated("unknown API token")
            cached = (_row_token(row), row.secret_hash, now_mono)
            self._cache[token_id] = cached
        token, stored_hash, _ = cached
        if not hmac.compare_digest(stored_hash, _hash(secret)):
            raise Unauthenticated("invalid API token secret")
        state = token.state(self.clock.now())
        if state != "active":
            raise Unauthenticated(f"API token {token_id} is {state}")
        return token
