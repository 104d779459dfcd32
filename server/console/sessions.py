"""Console sessions, held server-side.

The browser holds only a random 256-bit session id in an ``HttpOnly; Secure;
SameSite=Strict`` cookie; the store keeps the SHA-256 of that id (a leaked store dump or
log names no usable session), the principal, the credential the console forwards on its
gRPC calls (the bearer token or ID token stays in this process's memory, never on disk,
never logged), a CSRF token, and an absolute expiry. The store is bounded: past
:data:`MAX_SESSIONS` the sessions closest to expiry are dropped.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, field

COOKIE = "nmo_session"
MAX_SESSIONS = 10_000
DEFAULT_TTL_SECONDS = 8 * 3600.0


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8", "replace")).hexdigest()


@dataclass(slots=True)
class Session:
    subject: str
    method: str  # none | token | oidc
    # gRPC metadata sent with every forwarded call: authorization or x-neural-user.
    credential: tuple[tuple[str, str], ...] = field(repr=False)
    csrf_token: str
    expires_at: float  # time.time()

    def csrf_ok(self, presented: str | None) -> bool:
        """Constant-time comparison with the session's CSRF token."""
        if not presented:
            return False
        return hmac.compare_digest(presented.encode(), self.csrf_token.encode())

    def __repr__(self) -> str:  # never the credential, never the CSRF token
        return f"Session(subject={self.subject!r}, method={self.method!r})"


class SessionStore:
    def __init__(self, ttl_seconds: float = DEFAULT_TTL_SECONDS) -> None:
        self.ttl_seconds = ttl_seconds
        self._sessions: dict[str, Session] = {}

    def create(self, subject: str, method: str, credential: tuple[tuple[str, str], ...],
               *, expires_at: float | None = None) -> tuple[str, Session]:
        """A new session; returns (the id for the cookie, the session)."""
        self._expire()
        session_id = secrets.token_urlsafe(32)  # 256 random bits
        limit = time.time() + self.ttl_seconds
        session = Session(subject, method, credential, secrets.token_urlsafe(32),
                          min(limit, expires_at) if expires_at is not None else limit)
        if len(self._sessions) >= MAX_SESSIONS:
            oldest = sorted(self._sessions, key=lambda k: self._sessions[k].expires_at)
            for key in oldest[: len(self._sessions) - MAX_SESSIONS + 1]:
                del self._sessions[key]
        self._sessions[_digest(session_id)] = session
        return session_id, session

    def get(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        key = _digest(session_id)
        session = self._sessions.get(key)
        if session is None:
            return None
        if session.expires_at <= time.time():
            del self._sessions[key]
            return None
        return session

    def end(self, session_id: str | None) -> bool:
        if not session_id:
            return False
        return self._sessions.pop(_digest(session_id), None) is not None

    def __len__(self) -> int:
        return len(self._sessions)

    def _expire(self) -> None:
        now = time.time()
        for key in [k for k, s in self._sessions.items() if s.expires_at <= now]:
            del self._sessions[key]
