"""OIDC logins between their start and the issuer's callback, in the database, so the
callback may reach any replica (or the same one after a restart).

``GET /login/oidc`` gives the browser a random 256-bit secret in the state cookie; the
login's ``state``, ``nonce`` and PKCE code verifier are HKDF-SHA256 outputs of that secret,
so the store keeps only the SHA-256 of the state (with the redirect URI and the start
time) and nothing from which the verifier or nonce could be recomputed. The callback
deletes the row its ``state`` names whatever happens next (each state is usable once),
then checks that the browser's cookie derives that same state (constant time) and that the
login started less than :data:`PENDING_SECONDS` ago. Each start deletes up to
:data:`~neural.mlops.server.console.sessions.SWEEP_BATCH` stale rows and keeps at most
:data:`MAX_PENDING` (the oldest go first).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

import sqlalchemy as sa
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from neural.mlops.server.clock import to_us
from neural.mlops.server.console.sessions import SWEEP_BATCH
from neural.mlops.server.storage import Database
from neural.mlops.server.storage.schema import console_oidc_logins

PENDING_SECONDS = 600.0
MAX_PENDING = 1000
MAX_SECRET_CHARS = 128
_SALT = b"neural-mlops console oidc login v1"


@dataclass(frozen=True, slots=True)
class Pending:
    state: str
    nonce: str
    verifier: str  # the PKCE code verifier: 43 base64url characters (RFC 7636: 43-128)
    redirect_uri: str


def _derive(secret: str, purpose: bytes) -> str:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=_SALT, info=purpose)
    raw = hkdf.derive(secret.encode("utf-8", "replace"))
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def derive(secret: str, redirect_uri: str) -> Pending:
    """The login values a state cookie's secret stands for."""
    return Pending(_derive(secret, b"state"), _derive(secret, b"nonce"),
                   _derive(secret, b"pkce verifier"), redirect_uri)


def _key(state: str) -> str:
    return hashlib.sha256(state.encode("utf-8", "replace")).hexdigest()


class PendingLogins:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def begin(self, redirect_uri: str) -> tuple[str, Pending]:
        """A new login: (the secret for the state cookie, its values)."""
        secret = secrets.token_urlsafe(32)
        pending = derive(secret, redirect_uri)
        t = console_oidc_logins
        now = to_us(self.db.clock.now())
        async with self.db.change(audited=False) as ch:
            stale = (await ch.conn.execute(
                sa.select(t.c.state_hash).where(t.c.created_us <= now - PENDING_SECONDS * 1e6)
                .limit(SWEEP_BATCH))).scalars().all()
            count = (await ch.conn.execute(sa.select(sa.func.count()).select_from(t)
                                           )).scalar_one()
            excess = min(int(count) - len(stale) - MAX_PENDING + 1, SWEEP_BATCH)
            if excess > 0:
                stale = [*stale, *(await ch.conn.execute(
                    sa.select(t.c.state_hash).where(t.c.state_hash.not_in(stale))
                    .order_by(t.c.created_us).limit(excess))).scalars().all()]
            if stale:
                await ch.conn.execute(t.delete().where(t.c.state_hash.in_(stale)))
            await ch.conn.execute(t.insert().values(state_hash=_key(pending.state),
                                                    redirect_uri=redirect_uri, created_us=now))
        return secret, pending

    async def take(self, state: str, cookie: str) -> Pending | None:
        """The login ``state`` names, used up; None unless it is known, recent, and the
        browser's cookie holds its secret."""
        if not state or len(state) > MAX_SECRET_CHARS:
            return None
        t = console_oidc_logins
        key = _key(state)
        async with self.db.change(audited=False) as ch:
            row = (await ch.conn.execute(sa.select(t).where(t.c.state_hash == key))).one_or_none()
            if row is not None:
                await ch.conn.execute(t.delete().where(t.c.state_hash == key))
        if row is None or not cookie or len(cookie) > MAX_SECRET_CHARS:
            return None
        if row.created_us <= to_us(self.db.clock.now()) - PENDING_SECONDS * 1e6:
            return None
        pending = derive(cookie, row.redirect_uri)
        if not hmac.compare_digest(pending.state.encode(), state.encode()):
            return None
        return pending
