"""AuthService over gRPC: converts messages and calls the domain, nothing else."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import grpc

from neural.mlops.server.auth.grants import Grant
from neural.mlops.server.auth.roles import ROLE_DESCRIPTIONS, ROLES
from neural.mlops.server.auth.service import AuthService
from neural.mlops.server.auth.tokens import MAX_LIFETIME_SECONDS, ApiToken
from neural.mlops.server.clock import to_us
from neural.mlops.server.errors import InvalidArgument
from neural.mlops.server.pagination import keyset
from neural.mlops.server.timestamps import to_timestamp
from neural.mlops.v1 import auth_pb2 as pb
from neural.mlops.v1 import auth_pb2_grpc

Ctx = grpc.aio.ServicerContext[Any, Any]


def _method_to_pb(method: str) -> str:
    name = f"AUTH_METHOD_{method.upper()}"
    return name if name in pb.AuthMethod.keys() else "AUTH_METHOD_UNSPECIFIED"


def token_to_pb(t: ApiToken, now: datetime) -> pb.ApiToken:
    # ApiToken.state() says "active" for TOKEN_STATE_ACTIVE, and so on.
    return pb.ApiToken(
        token_id=t.token_id, name=t.name, roles=t.roles, models=t.models,
        created_by=t.created_by, created_at=to_timestamp(t.created_at),
        expires_at=to_timestamp(t.expires_at), revoked_at=to_timestamp(t.revoked_at),
        revoked_by=t.revoked_by, state=f"TOKEN_STATE_{t.state(now).upper()}",
    )


def grant_to_pb(g: Grant) -> pb.RoleGrant:
    return pb.RoleGrant(subject=g.subject, role=g.role, models=g.models,
                        created_by=g.created_by, created_at=to_timestamp(g.created_at))


class AuthServicer(auth_pb2_grpc.AuthServiceServicer):
    def __init__(self, auth: AuthService, methods: frozenset[str]) -> None:
        self.auth = auth
        self.methods = sorted(methods)

    def _now(self) -> datetime:
        return self.auth.tokens.clock.now()

    async def CreateToken(self, request: pb.CreateTokenRequest,  # noqa: N802
                          context: Ctx) -> pb.CreateTokenResponse:
        seconds = request.expires_in_seconds
        if not 0 <= seconds <= MAX_LIFETIME_SECONDS:  # timedelta overflows past ~2.7e13
            raise InvalidArgument(f"expires_in_seconds must lie in [0, {MAX_LIFETIME_SECONDS}] "
                                  "(0 = never expires)", field="expires_in_seconds")
        expires = timedelta(seconds=seconds) if seconds else None
        issued = await self.auth.create_token(request.name, list(request.roles),
                                              list(request.models), expires)
        return pb.CreateTokenResponse(token=token_to_pb(issued.token, self._now()),
                                      secret=issued.secret)

    async def ListTokens(self, request: pb.ListTokensRequest,  # noqa: N802
                         context: Ctx) -> pb.ListTokensResponse:
        now = self._now()
        tokens, token = keyset(await self.auth.list_tokens(request.include_revoked),
                               request.page_size, request.page_token, listing="tokens",
                               key=lambda t: (to_us(t.created_at), t.token_id), kinds=(int, str))
        return pb.ListTokensResponse(tokens=[token_to_pb(t, now) for t in tokens],
                                     next_page_token=token)

    async def RevokeToken(self, request: pb.RevokeTokenRequest,  # noqa: N802
                          context: Ctx) -> pb.ApiToken:
        return token_to_pb(await self.auth.revoke_token(request.token_id), self._now())

    async def CreateGrant(self, request: pb.CreateGrantRequest,  # noqa: N802
                          context: Ctx) -> pb.RoleGrant:
        return grant_to_pb(await self.auth.grant(request.subject, request.role,
                                                 request.models or "*"))

    async def DeleteGrant(self, request: pb.DeleteGrantRequest,  # noqa: N802
                          context: Ctx) -> pb.DeleteGrantResponse:
        removed = await self.auth.revoke_grant(request.subject, request.role, request.models)
        return pb.DeleteGrantResponse(removed=removed)

    async def ListGrants(self, request: pb.ListGrantsRequest,  # noqa: N802
                         context: Ctx) -> pb.ListGrantsResponse:
        grants, token = keyset(await self.auth.list_grants(request.subject),
                               request.page_size, request.page_token, listing="grants",
                               key=lambda g: (g.subject, g.role, g.models),
                               kinds=(str, str, str))
        return pb.ListGrantsResponse(grants=[grant_to_pb(g) for g in grants],
                                     next_page_token=token)

    async def WhoAmI(self, request: pb.WhoAmIRequest,  # noqa: N802
                     context: Ctx) -> pb.WhoAmIResponse:
        me = await self.auth.whoami()
        return pb.WhoAmIResponse(
            principal=me.principal, authenticated=me.authenticated,
            method=_method_to_pb(me.method),
            token_id=me.token_id, groups=me.groups,
            grants=[grant_to_pb(g) for g in me.grants],
            auth_methods=[_method_to_pb(m) for m in self.methods],
        )

    async def ListRoles(self, request: pb.ListRolesRequest,  # noqa: N802
                        context: Ctx) -> pb.ListRolesResponse:
        names, token = keyset(list(ROLES), request.page_size, request.page_token,
                              listing="roles", key=lambda name: (name,), kinds=(str,))
        return pb.ListRolesResponse(roles=[
            pb.Role(name=name, description=ROLE_DESCRIPTIONS[name],
                    permissions=sorted(ROLES[name]))
            for name in names
        ], next_page_token=token)
