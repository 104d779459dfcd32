"""The auth domain: tokens, grants, and the roles a principal holds on a call."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from neural.mlops.server.auth.grants import Grant, GrantStore
from neural.mlops.server.auth.principal import Principal
from neural.mlops.server.auth.tokens import ApiToken, IssuedToken, TokenStore
from neural.mlops.server.clock import Clock
from neural.mlops.server.identity import current_call
from neural.mlops.server.storage import Database


@dataclass(frozen=True, slots=True)
class Identity:
    """The caller as WhoAmI reports it."""

    principal: str
    authenticated: bool
    method: str
    token_id: str
    groups: tuple[str, ...]
    grants: tuple[Grant, ...]


class AuthService:
    def __init__(self, db: Database, *, clock: Clock) -> None:
        self.tokens = TokenStore(db, clock)
        self.grant_store = GrantStore(db, clock)

    async def create_token(
        self, name: str, roles: list[str] | tuple[str, ...],
        models: list[str] | tuple[str, ...] = (), expires_in: timedelta | None = None,
    ) -> IssuedToken:
        return await self.tokens.create(name, roles, models, expires_in)

    async def list_tokens(self, include_revoked: bool = False) -> list[ApiToken]:
        return await self.tokens.list_tokens(include_revoked)

    async def revoke_token(self, token_id: str) -> ApiToken:
        return await self.tokens.revoke(token_id)

    async def grant(self, subject: str, role: str, models: str = "*") -> Grant:
        return await self.grant_store.grant(subject, role, models)

    async def revoke_grant(self, subject: str, role: str, models: str = "") -> int:
        return await self.grant_store.revoke(subject, role, models)

    async def list_grants(self, subject: str = "") -> list[Grant]:
        return await self.grant_store.list_grants(subject)

    async def grants_of(self, principal: Principal, token: ApiToken | None = None) -> list[Grant]:
        """Every grant a call holds: the token's own roles over its model globs, plus the
        grants to the principal's name and groups."""
        out = [
            Grant(principal.name, role, glob, token.created_by, token.created_at)
            for role in token.roles for glob in token.models
        ] if token is not None else []
        out.extend(await self.grant_store.for_principal(principal))
        return out

    async def whoami(self) -> Identity:
        """The current call's identity and the grants it holds."""
        ctx = current_call()
        if not ctx.authenticated:
            return Identity(ctx.actor, False, ctx.auth_method or "none", "", (), ())
        principal = Principal(ctx.actor, ctx.auth_method, ctx.token_id, ctx.groups)
        token = await self.tokens.get(ctx.token_id) if ctx.token_id else None
        grants = tuple(await self.grants_of(principal, token))
        return Identity(ctx.actor, True, ctx.auth_method, ctx.token_id, ctx.groups, grants)
