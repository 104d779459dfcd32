"""Role grants: a principal (or ``group:NAME``, matched against OIDC group claims) holds a
role over the models matching a glob. Stored in ``role_grants``, changed only through
:meth:`GrantStore.grant` / :meth:`GrantStore.revoke`, each change audited.

The whole table is small and read on every authorized call, so it is cached in memory:
a change through this store replaces the cache at once; one written by another process
sharing the store is seen within :data:`CACHE_SECONDS`.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from neural.mlops.server.audit.events import EventType
from neural.mlops.server.auth.principal import Principal, normalize_identity
from neural.mlops.server.auth.roles import check_role
from neural.mlops.server.auth.tokens import MAX_GLOB, check_name
from neural.mlops.server.clock import Clock, from_us, to_us
from neural.mlops.server.errors import InvalidArgument, NotFound
from neural.mlops.server.identity import current_call
from neural.mlops.server.storage import Database
from neural.mlops.server.storage.schema import role_grants

CACHE_SECONDS = 5.0
GROUP_PREFIX = "group:"


@dataclass(frozen=True, slots=True)
class Grant:
    subject: str  # principal name, or "group:NAME"
    role: str
    models: str = "*"  # model-name glob
    created_by: str = ""
    created_at: datetime | None = None


def check_subject(subject: str) -> str:
    text = subject.strip()
    if text.lower().startswith(GROUP_PREFIX):
        group = text[len(GROUP_PREFIX):].strip()
        if not group:
            raise InvalidArgument("group name is empty", field="subject")
        return GROUP_PREFIX + normalize_identity(group)
    return check_name(text, field="subject")


def _check_glob(models: str) -> str:
    glob = models.strip() or "*"
    if len(glob) > MAX_GLOB:
        raise InvalidArgument(f"model glob longer than {MAX_GLOB} characters", field="models")
    return glob


class GrantStore:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        self._by_subject: dict[str, list[Grant]] | None = None
        self._loaded_at = 0.0

    async def grant(self, subject: str, role: str, models: str = "*") -> Grant:
        subject, role, glob = check_subject(subject), check_role(role), _check_glob(models)
        now = self.clock.now()
        actor = current_call().actor
        async with self.db.change() as ch:
            exists = (await ch.conn.execute(sa.select(role_grants.c.id).where(
                role_grants.c.subject == subject, role_grants.c.role == role,
                role_grants.c.models == glob,
            ))).first()
            if exists is None:
                await ch.conn.execute(role_grants.insert().values(
                    subject=subject, role=role, models=glob, created_by=actor,
                    created_us=to_us(now),
                ))
            ch.record(
                EventType.CONFIGURATION_CHANGED, resource_type="role_grant",
                resource_id=subject, action="role_granted",
                details={"subject": subject, "role": role, "models": glob,
                         "already_held": exists is not None},
            )
            ch.on_commit(self.invalidate)
        return Grant(subject, role, glob, actor, now)

    async def revoke(self, subject: str, role: str, models: str = "") -> int:
        """Remove ``subject``'s grants of ``role`` (only the ``models`` glob when given)."""
        subject, role = check_subject(subject), check_role(role)
        where = [role_grants.c.subject == subject, role_grants.c.role == role]
        if models.strip():
            where.append(role_grants.c.models == models.strip())
        async with self.db.change() as ch:
            removed = (await ch.conn.execute(role_grants.delete().where(*where))).rowcount
            if not removed:
                raise NotFound(f"{subject} holds no {role} grant"
                               + (f" on {models.strip()}" if models.strip() else ""),
                               field="role")
            ch.record(
                EventType.CONFIGURATION_CHANGED, resource_type="role_grant",
                resource_id=subject, action="role_revoked",
                details={"subject": subject, "role": role, "models": models.strip() or "*any*",
                         "removed": removed},
            )
            ch.on_commit(self.invalidate)
        return int(removed)

    async def list_grants(self, subject: str = "") -> list[Grant]:
        table = await self._table()
        if subject:
            return list(table.get(check_subject(subject), ()))
        return [g for grants in table.values() for g in grants]

    async def for_principal(self, principal: Principal) -> list[Grant]:
        """Grants to the principal's name and to each of its groups."""
        table = await self._table()
        out = list(table.get(principal.name, ()))
        for group in principal.groups:
            out.extend(table.get(GROUP_PREFIX + normalize_identity(group), ()))
        return out

    def invalidate(self) -> None:
        self._by_subject = None

    async def _table(self) -> dict[str, list[Grant]]:
        now = self.clock.monotonic()
        if self._by_subject is None or now - self._loaded_at > CACHE_SECONDS:
            q = sa.select(role_grants).order_by(role_grants.c.subject, role_grants.c.id)
            async with self.db.read() as conn:
                rows = (await conn.execute(q)).all()
            table: dict[str, list[Grant]] = defaultdict(list)
            for r in rows:
                table[r.subject].append(
                    Grant(r.subject, r.role, r.models, r.created_by, from_us(r.created_us))
                )
            self._by_subject, self._loaded_at = dict(table), now
        return self._by_subject
