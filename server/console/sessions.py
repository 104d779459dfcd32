"""Console sessions, in the database: every replica knows them and a restart keeps them.

The browser holds a random 256-bit session id in an ``HttpOnly; Secure; SameSite=Strict``
cookie. The ``console_sessions`` row (migration 0015) never holds anything usable:

* its key is ``sha256(session id)``;
* the credential the console forwards on the session's gRPC calls (``authorization:
  Bearer`` with the API token or the OIDC ID token, or ``x-neural-user`` with the declared
  name) is AES-256-GCM-encrypted under a key derived with HKDF-SHA256 from the session id,
  with the row's key, subject, method and token id as associated data: only a request
  carrying the cookie can decrypt it, and a row edited in place no longer decrypts;
* the CSRF token is derived from the session id too (another HKDF output), never stored,
  and compared in constant time.

A session ends at logout (its row is deleted), after its absolute lifetime (the ID
token's expiry for OIDC), after ``idle`` seconds unused (last use is written at most every
:func:`touch interval <touch_seconds>`, so idleness is measured to within that), when
its API token is revoked, expires or is deleted (checked against ``api_tokens`` on every
request, whichever replica revoked it), and when a forwarded call is refused as
unauthenticated (:meth:`SessionStore.end_key`). Each subject holds at most
:data:`MAX_PER_SUBJECT` sessions and the table :data:`MAX_SESSIONS`: a login past either
cap ends the least recently used. Each login also deletes up to :data:`SWEEP_BATCH`
ended rows, so the work per request stays bounded.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
import structlog
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy.ext.asyncio import AsyncConnection

from neural.mlops.server.clock import to_us
from neural.mlops.server.storage import Database
from neural.mlops.server.storage.schema import api_tokens, console_sessions

log = structlog.get_logger(__name__)

COOKIE = "nmo_session"
DEFAULT_TTL_SECONDS = 8 * 3600.0
DEFAULT_IDLE_SECONDS = 3600.0
MAX_SESSIONS = 10_000
MAX_PER_SUBJECT = 20
SWEEP_BATCH = 100
MAX_ID_CHARS = 128  # a cookie longer than any id we issue is not looked up
_US = 1_000_000
_SALT = b"neural-mlops console session v1"
Credential = tuple[tuple[str, str], ...]


def digest(session_id: str) -> str:
    """The row key of a session id: its SHA-256, hex."""
    return hashlib.sha256(session_id.encode("utf-8", "replace")).hexdigest()


def _derive(session_id: str, purpose: bytes) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=_SALT, info=purpose)
    return hkdf.derive(session_id.encode("utf-8", "replace"))


def csrf_token(session_id: str) -> str:
    """The session's CSRF token: derived from its id, so nothing stores it."""
    return base64.urlsafe_b64encode(_derive(session_id, b"csrf token")).rstrip(b"=").decode()


def _aad(key: str, subject: str, method: str, token_id: str) -> bytes:
    return json.dumps([key, subject, method, token_id]).encode()


def seal(session_id: str, subject: str, method: str, token_id: str,
         credential: Credential) -> str:
    """The credential encrypted for the row of ``session_id``."""
    nonce = os.urandom(12)
    box = AESGCM(_derive(session_id, b"credential key"))
    data = box.encrypt(nonce, json.dumps([list(p) for p in credential]).encode(),
                       _aad(digest(session_id), subject, method, token_id))
    return base64.urlsafe_b64encode(nonce + data).decode()


def unseal(session_id: str, subject: str, method: str, token_id: str,
           sealed: str) -> Credential | None:
    """The credential of a row, or None when it does not decrypt with this id (a row
    edited in place, or another session's credential copied into it)."""
    try:
        raw = base64.urlsafe_b64decode(sealed.encode())
        box = AESGCM(_derive(session_id, b"credential key"))
        plain = box.decrypt(raw[:12], raw[12:], _aad(digest(session_id), subject, method,
                                                     token_id))
        pairs = json.loads(plain)
        return tuple((str(k), str(v)) for k, v in pairs)
    except (InvalidTag, ValueError, TypeError):
        return None


@dataclass(slots=True)
class Session:
    subject: str
    method: str  # none | token | oidc
    # gRPC metadata sent with every forwarded call: authorization or x-neural-user.
    credential: Credential = field(repr=False)
    csrf_token: str = field(repr=False)
    expires_at: float  # seconds since the epoch
    key: str = field(default="", repr=False)  # the row key, sha256(session id)
    token_id: str = ""

    def csrf_ok(self, presented: str | None) -> bool:
        """Constant-time comparison with the session's CSRF token."""
        if not presented:
            return False
        return hmac.compare_digest(presented.encode(), self.csrf_token.encode())

    def __repr__(self) -> str:  # never the credential, never the CSRF token
        return f"Session(subject={self.subject!r}, method={self.method!r})"


@dataclass(frozen=True, slots=True)
class Found:
    """A lookup's answer: the live session, or None and why a session just ended."""

    session: Session | None
    ended: str = ""  # "" when there was no session at all


def touch_seconds(idle_seconds: float) -> float:
    """How stale a session's last-use time may get before a request rewrites it."""
    return min(60.0, idle_seconds / 4)


class SessionStore:
    def __init__(self, db: Database, ttl_seconds: float = DEFAULT_TTL_SECONDS,
                 idle_seconds: float = DEFAULT_IDLE_SECONDS, *,
                 max_sessions: int = MAX_SESSIONS,
                 max_per_subject: int = MAX_PER_SUBJECT) -> None:
        if not ttl_seconds > 0:
            raise ValueError(f"console session hours must be positive, got {ttl_seconds / 3600}")
        if not idle_seconds > 0:
            raise ValueError(f"console idle minutes must be positive, got {idle_seconds / 60}")
        self.db = db
        self.ttl_seconds = ttl_seconds
        self.idle_seconds = idle_seconds
        self.max_sessions = max_sessions
        self.max_per_subject = max_per_subject

    def _now_us(self) -> int:
        return to_us(self.db.clock.now())

    async def create(self, subject: str, method: str, credential: Credential, *,
                     expires_at: float | None = None,
                     token_id: str = "") -> tuple[str, Session]:
        """A new session; returns (the id for the cookie, the session)."""
        session_id = secrets.token_urlsafe(32)  # 256 random bits
        now = self._now_us()
        end = now + int(self.ttl_seconds * _US)
        if expires_at is not None:
            end = min(end, int(expires_at * _US))
        key = digest(session_id)
        row = {"id_hash": key, "subject": subject, "method": method, "token_id": token_id,
               "credential": seal(session_id, subject, method, token_id, credential),
               "created_us": now, "expires_us": end, "seen_us": now}
        async with self.db.change(audited=False) as ch:
            await self._sweep(ch.conn, now)
            await self._make_room(ch.conn, console_sessions.c.subject == subject,
                                  self.max_per_subject)
            await self._make_room(ch.conn, sa.true(), self.max_sessions)
            await ch.conn.execute(console_sessions.insert().values(**row))
        return session_id, Session(subject, method, credential, csrf_token(session_id),
                                   end / _US, key, token_id)

    async def _sweep(self, conn: AsyncConnection, now: int) -> None:
        """Delete up to SWEEP_BATCH sessions that have ended by time."""
        t = console_sessions
        idle_us = int(self.idle_seconds * _US)
        dead = (await conn.execute(
            sa.select(t.c.id_hash).where(sa.or_(t.c.expires_us <= now,
                                                t.c.seen_us <= now - idle_us))
            .limit(SWEEP_BATCH))).scalars().all()
        if dead:
            await conn.execute(t.delete().where(t.c.id_hash.in_(dead)))

    async def _make_room(self, conn: AsyncConnection, where: Any, cap: int) -> None:
        """Below ``cap`` rows matching ``where``: end the least recently used."""
        t = console_sessions
        count = (await conn.execute(
            sa.select(sa.func.count()).select_from(t).where(where))).scalar_one()
        excess = min(int(count) - cap + 1, SWEEP_BATCH)
        if excess > 0:
            oldest = (await conn.execute(
                sa.select(t.c.id_hash).where(where).order_by(t.c.seen_us, t.c.created_us)
                .limit(excess))).scalars().all()
            await conn.execute(t.delete().where(t.c.id_hash.in_(oldest)))

    async def find(self, session_id: str | None) -> Found:
        """The live session of a cookie's id. A session found ended (by time, by its
        token, or unreadable) is deleted and reported with the reason."""
        if not session_id or len(session_id) > MAX_ID_CHARS:
            return Found(None)
        t, tokens = console_sessions, api_tokens
        key = digest(session_id)
        query = (sa.select(t, tokens.c.token_id.label("token_row"),
                           tokens.c.revoked_us.label("token_revoked_us"),
                           tokens.c.expires_us.label("token_expires_us"))
                 .select_from(t.outerjoin(tokens, tokens.c.token_id == t.c.token_id))
                 .where(t.c.id_hash == key))
        async with self.db.read() as conn:
            row = (await conn.execute(query)).one_or_none()
        if row is None:
            return Found(None)
        now = self._now_us()
        why = self._ended(row, now)
        credential = None if why else unseal(session_id, row.subject, row.method,
                                             row.token_id, row.credential)
        if credential is None:
            await self.forget(key)
            return Found(None, why or "its stored record does not match the cookie")
        if now - row.seen_us >= touch_seconds(self.idle_seconds) * _US:
            await self._touch(key, now)
        return Found(Session(row.subject, row.method, credential, csrf_token(session_id),
                             row.expires_us / _US, key, row.token_id))

    def _ended(self, row: Any, now: int) -> str:
        """Why the session of ``row`` is over at ``now``; "" while it is live."""
        if row.expires_us <= now:
            return "it reached its end of validity"
        if row.seen_us + int(self.idle_seconds * _US) <= now:
            return f"it was idle for more than {self.idle_seconds / 60:g} minutes"
        if row.method != "token":
            return ""
        if row.token_row is None:
            return "its API token no longer exists"
        if row.token_revoked_us is not None:
            return "its API token was revoked"
        if row.token_expires_us is not None and row.token_expires_us <= now:
            return "its API token expired"
        return ""

    async def forget(self, key: str) -> None:
        """Delete an ended session's row; it stays ended if that fails (the check is
        made again on every request)."""
        try:
            await self.end_key(key)
        except Exception as exc:  # noqa: BLE001 - the answer is the same: no session
            log.warning("ended console session not deleted", error=type(exc).__name__)

    async def _touch(self, key: str, now: int) -> None:
        t = console_sessions
        try:
            async with self.db.change(audited=False) as ch:
                await ch.conn.execute(t.update().where(t.c.id_hash == key, t.c.seen_us < now)
                                      .values(seen_us=now))
        except Exception as exc:  # noqa: BLE001 - the request goes on; the next one retries
            log.warning("console session last use not recorded", error=type(exc).__name__)

    async def get(self, session_id: str | None) -> Session | None:
        return (await self.find(session_id)).session

    async def end(self, session_id: str | None) -> bool:
        """Log out: delete the session's row; whether there was one."""
        if not session_id or len(session_id) > MAX_ID_CHARS:
            return False
        return await self.end_key(digest(session_id))

    async def end_key(self, key: str) -> bool:
        t = console_sessions
        async with self.db.change(audited=False) as ch:
            result = await ch.conn.execute(t.delete().where(t.c.id_hash == key))
        return bool(result.rowcount)

    async def count(self, subject: str | None = None) -> int:
        """How many rows there are (of ``subject``), ended ones not yet swept included."""
        q = sa.select(sa.func.count()).select_from(console_sessions)
        if subject is not None:
            q = q.where(console_sessions.c.subject == subject)
        async with self.db.read() as conn:
            return int((await conn.execute(q)).scalar_one())
