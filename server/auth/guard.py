"""The admission of one call on a server with authentication: authenticate, authorize,
bind the request's actor fields, and build the call's :class:`CallContext`.

Nothing here runs before a refusal is decided, so a refused call changes no state (its
refusal is counted and, rate-limited, audited).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from neural.mlops.server.auth.authenticate import Authenticator, RefusalLog
from neural.mlops.server.auth.oidc import OidcVerifier
from neural.mlops.server.auth.permissions import RULES, Rule
from neural.mlops.server.auth.policy import Authorizer, ModelOf, bind_actors, field_value
from neural.mlops.server.auth.principal import Principal
from neural.mlops.server.auth.roles import PUBLIC, SESSION
from neural.mlops.server.auth.service import AuthService
from neural.mlops.server.clock import Clock
from neural.mlops.server.errors import PermissionDenied, Unauthenticated
from neural.mlops.server.identity import CallContext
from neural.mlops.server.storage import Database

MessageCheck = Callable[[Any], Awaitable[None]]


class CallGuard:
    def __init__(self, methods: frozenset[str], auth: AuthService, oidc: OidcVerifier | None,
                 model_of: ModelOf, db: Database, clock: Clock) -> None:
        self.auth = auth
        self.authenticator = Authenticator(methods, auth.tokens, oidc)
        self.authorizer = Authorizer(model_of)
        self.refusals = RefusalLog(db, clock)

    async def admit(
        self, method: str, metadata: dict[str, str],
        context: grpc.aio.ServicerContext[Any, Any], request: Any | None, base: CallContext,
    ) -> tuple[CallContext, MessageCheck | None]:
        """The call's context, and for a streamed request the check of each message;
        Unauthenticated or PermissionDenied otherwise. ``request`` is None when streamed."""
        rule = RULES.get(method)
        if rule is None:  # fail closed: a method added to a proto but not to the table
            raise PermissionDenied(f"{method} has no entry in the permission table")
        if rule.permission == PUBLIC:
            return base, None
        try:
            caller = await self.authenticator.authenticate(metadata, context)
        except Unauthenticated as exc:
            await self.refusals.refused("authentication", exc.field or "invalid", exc.message,
                                        method, base.peer)
            raise Unauthenticated(exc.message) from None  # the reason is no request field
        principal = caller.principal
        try:
            scoped = []
            if rule.permission != SESSION:
                grants = await self.auth.grants_of(principal, caller.token)
                scoped = self.authorizer.decide(method, rule, principal, grants, request)
            if request is not None:
                await self.authorizer.check_models(method, rule, principal, scoped, request)
                bind_actors(rule, principal, request)
        except PermissionDenied as exc:
            await self.refusals.refused("permission", rule.permission, exc.message, method,
                                        base.peer, principal.name)
            raise
        ctx = CallContext(
            actor=principal.name, authenticated=True, request_id=base.request_id,
            peer=base.peer, auth_method=principal.method, token_id=principal.token_id,
            groups=principal.groups,
        )
        check = None if request is not None else self._message_check(method, rule, principal,
                                                                     scoped, base.peer)
        return ctx, check

    def _message_check(self, method: str, rule: Rule, principal: Principal,
                       scoped: list[Any], peer: str) -> MessageCheck:
        """Streamed requests: scoped grants are checked on each message that names a model
        (the first must), actor fields bound on every message."""
        first = True

        async def check(msg: Any) -> None:
            nonlocal first
            try:
                names_model = any(
                    (found := field_value(msg, path)) is not None and getattr(*found)
                    for path in rule.models
                )
                if scoped and (first or names_model):
                    await self.authorizer.check_models(method, rule, principal, scoped, msg)
                first = False
                bind_actors(rule, principal, msg)
            except PermissionDenied as exc:
                await self.refusals.refused("permission", rule.permission, exc.message,
                                            method, peer, principal.name)
                raise

        return check
