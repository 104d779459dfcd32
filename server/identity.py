"""Who is calling: one context per call, set by the gRPC interceptor or the embedded client.

Domain code reads :func:`current_call` (never grpc metadata) to learn the actor, the
request id and the peer, so the audit trail records them for every change.
"""

from __future__ import annotations

import contextvars
import uuid
from dataclasses import dataclass, replace


@dataclass(frozen=True, slots=True)
class CallContext:
    """``auth_method`` says how a gRPC call's actor was established: ``none`` (declared in
    ``x-neural-user`` or a request field), ``token``, ``oidc`` or ``mtls``; empty for
    calls that did not come over gRPC (embedded mode, the control plane's own loops)."""

    actor: str = "anonymous"
    authenticated: bool = False
    request_id: str = ""
    peer: str = "embedded"
    auth_method: str = ""
    token_id: str = ""  # the API token's id (never its secret)
    groups: tuple[str, ...] = ()  # OIDC group claims of an authenticated principal

    def auth_detail(self) -> dict[str, str] | None:
        """What the audit event records about the call's authentication (None: nothing)."""
        if not self.auth_method:
            return None
        if self.token_id:
            return {"method": self.auth_method, "token_id": self.token_id}
        return {"method": self.auth_method}

    def with_actor(self, actor: str | None) -> CallContext:
        """The call's user field stands in for the actor until authentication exists."""
        if self.authenticated or not actor:
            return self
        return replace(self, actor=actor)


_current: contextvars.ContextVar[CallContext] = contextvars.ContextVar(
    "neural_mlops_call", default=CallContext()  # noqa: B039 (frozen dataclass)
)


def current_call() -> CallContext:
    ctx = _current.get()
    if not ctx.request_id:
        ctx = replace(ctx, request_id=new_request_id())
        _current.set(ctx)
    return ctx


def set_call(ctx: CallContext) -> contextvars.Token[CallContext]:
    return _current.set(ctx)


def reset_call(token: contextvars.Token[CallContext]) -> None:
    _current.reset(token)


def new_request_id() -> str:
    return uuid.uuid4().hex
