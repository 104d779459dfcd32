"""Who is calling, from the credentials of one gRPC call.

``authorization: Bearer nmo_...`` is an API token, any other bearer value a JWT (when
OIDC is enabled); without a bearer header, a verified client certificate (mTLS). A bearer
header wins over a certificate, so a sidecar holding both acts as the token's principal.

Refusals are counted by reason and audited as ``access_denied`` events, at most one per
(peer host, reason) per :data:`AUDIT_INTERVAL_SECONDS`; each event carries the number
of refusals it stands for, so the trail is not flooded and nothing goes uncounted.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import grpc
import prometheus_client
import structlog

from neural.mlops.server.audit.events import EventSeverity, EventType
from neural.mlops.server.auth.mtls import principal_from_context
from neural.mlops.server.auth.oidc import OidcVerifier
from neural.mlops.server.auth.principal import Principal
from neural.mlops.server.auth.tokens import PREFIX, ApiToken, TokenStore
from neural.mlops.server.clock import Clock
from neural.mlops.server.errors import Unauthenticated
from neural.mlops.server.identity import CallContext, reset_call, set_call
from neural.mlops.server.storage import Database

log = structlog.get_logger(__name__)

AUDIT_INTERVAL_SECONDS = 60.0
AUTHORIZATION_KEY = "authorization"


@dataclass(frozen=True, slots=True)
class Caller:
    principal: Principal
    token: ApiToken | None = None


def peer_host(peer: str) -> str:
    """``ipv4:10.0.0.7:51234`` -> ``10.0.0.7`` (the port changes with every connection)."""
    kind, _, rest = peer.partition(":")
    if kind in ("ipv4", "ipv6"):
        host = rest.rsplit(":", 1)[0]
        return host.strip("[]")
    return peer


class Authenticator:
    def __init__(self, methods: frozenset[str], tokens: TokenStore,
                 oidc: OidcVerifier | None) -> None:
        self.methods = methods
        self.tokens = tokens
        self.oidc = oidc

    async def authenticate(self, metadata: dict[str, str],
                           context: grpc.aio.ServicerContext[Any, Any]) -> Caller:
        """The caller; :class:`Unauthenticated` whose ``field`` is the refusal reason."""
        header = metadata.get(AUTHORIZATION_KEY, "")
        if header:
            scheme, _, credential = header.strip().partition(" ")
            credential = credential.strip()
            if scheme.lower() != "bearer" or not credential:
                raise Unauthenticated("malformed authorization header (expected: Bearer <token>)",
                                      field="malformed")
            if credential.startswith(PREFIX):
                if "token" not in self.methods:
                    raise Unauthenticated("API tokens are not accepted by this server "
                                          "(--auth does not include token)", field="token")
                token = await self._token(credential)
                return Caller(Principal(token.name, "token", token.token_id), token)
            if self.oidc is None:
                raise Unauthenticated("bearer token is not an API token (nmo_...) and OIDC is "
                                      "not enabled on this server", field="malformed")
            try:
                return Caller(await self.oidc.verify(credential))
            except Unauthenticated as exc:
                raise Unauthenticated(exc.message, field="oidc") from None
        if "mtls" in self.methods:
            principal = principal_from_context(context)
            if principal is not None:
                return Caller(principal)
        accepted = " or ".join(
            {"token": "an API token", "oidc": "an OIDC JWT",
             "mtls": "a client certificate"}[m] for m in sorted(self.methods)
        )
        raise Unauthenticated(f"no credentials: this server requires {accepted} "
                              "(authorization: Bearer <token> for tokens and JWTs)",
                              field="missing")

    async def _token(self, credential: str) -> ApiToken:
        try:
            return await self.tokens.authenticate(credential)
        except Unauthenticated as exc:
            raise Unauthenticated(exc.message, field="token") from None


# Exposed by `serve --metrics-listen`: every refusal counts, audited or rate-limited.
REFUSED_CALLS = prometheus_client.Counter(
    "neural_mlops_refused_calls_total",
    "Calls refused by the control plane's authentication or authorization",
    ["kind", "reason"],
)


@dataclass
class _Window:
    started: float
    suppressed: int = 0


@dataclass
class RefusalLog:
    """Counts refused calls and audits them, rate-limited per peer host and reason."""

    db: Database
    clock: Clock
    counts: Counter[str] = field(default_factory=Counter)
    _windows: dict[tuple[str, str], _Window] = field(default_factory=dict)

    async def refused(self, kind: str, reason: str, message: str, method: str,
                      peer: str, principal: str = "") -> None:
        self.counts[f"{kind}:{reason}"] += 1
        REFUSED_CALLS.labels(kind=kind, reason=reason).inc()
        host = peer_host(peer)
        log.warning("call refused", kind=kind, reason=reason, message=message, method=method,
                    peer=peer, principal=principal or None, total=self.counts[f"{kind}:{reason}"])
        now = self.clock.monotonic()
        key = (host, f"{kind}:{reason}")
        window = self._windows.get(key)
        if window is not None and now - window.started < AUDIT_INTERVAL_SECONDS:
            window.suppressed += 1
            return
        suppressed = window.suppressed if window is not None else 0
        self._windows[key] = _Window(now)
        if len(self._windows) > 10_000:  # bounded: forget the oldest windows
            for old in list(self._windows)[:5_000]:
                del self._windows[old]
        details: dict[str, Any] = {"reason": reason, "message": message, "peer_host": host,
                                   "suppressed_before": suppressed}
        ctx = CallContext(actor=principal or "unauthenticated", peer=peer)
        token = set_call(ctx)
        try:
            async with self.db.change() as ch:
                ch.record(EventType.ACCESS_DENIED, resource_type="rpc", resource_id=method,
                          action=f"{kind}_refused", details=details,
                          severity=EventSeverity.WARNING)
        except Exception as exc:  # auditing a refusal must not turn it into another error
            log.error("refusal not audited", error=str(exc))
        finally:
            reset_call(token)
