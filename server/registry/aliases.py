"""Aliases: movable names (``@champion``) for a model's versions, with a history to roll
back along."""

from __future__ import annotations

from neural.mlops.server import validation as v
from neural.mlops.server.audit.events import EventType
from neural.mlops.server.clock import Clock, to_us
from neural.mlops.server.errors import FailedPrecondition, InvalidArgument, NotFound
from neural.mlops.server.registry import store
from neural.mlops.server.registry.model import AliasChange
from neural.mlops.server.storage import Change, Database

# "@x" would read as an alias reference and "latest" as the newest version.
RESERVED = ("latest",)


class Aliases:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def set(self, name: str, alias: str, version: str, actor: str,
                  reason: str = "") -> AliasChange:
        v.name(alias, "alias")
        v.actor(actor, "actor")
        v.text(reason, "reason")
        if alias.startswith("@") or alias.lower() in RESERVED:
            raise InvalidArgument(f"alias {alias!r} is reserved", field="alias")
        # Pointing an alias where it points changes nothing: answer from a read, as an
        # audited change must record an event.
        async with self.db.read() as conn:
            target = await store.resolve(conn, name, version)
            if await store.alias_target(conn, name, alias) == target.version:
                return AliasChange(name, alias, target.version, target.version)
        async with self.db.change() as ch:
            target = await store.resolve(ch.conn, name, version)
            return await self._move(ch, name, alias, target.version, actor, reason)

    async def delete(self, name: str, alias: str, actor: str, reason: str = "") -> AliasChange:
        v.name(alias, "alias")
        v.actor(actor, "actor")
        async with self.db.change() as ch:
            await store.require_model(ch.conn, name)
            return await self._move(ch, name, alias, "", actor, reason)

    async def rollback(self, name: str, alias: str, actor: str, reason: str = "") -> AliasChange:
        """Point ``alias`` back at the version it had before its last move."""
        v.name(alias, "alias")
        v.actor(actor, "actor")
        async with self.db.change() as ch:
            previous = await store.previous_alias_target(ch.conn, name, alias)
            if previous is None:
                raise NotFound(f"alias {alias!r} of model {name!r} has no history")
            if not previous:
                raise FailedPrecondition(
                    f"alias {alias!r} of model {name!r} has no previous version"
                )
            if await store.version_id(ch.conn, name, previous) is None:
                raise FailedPrecondition(
                    f"the previous version {previous} of alias {alias!r} no longer exists"
                )
            return await self._move(ch, name, alias, previous, actor, reason or "rollback")

    async def _move(self, ch: Change, name: str, alias: str, version: str, actor: str,
                    reason: str) -> AliasChange:
        """Point ``alias`` at ``version`` ("" deletes it) and record the move (set() has
        already answered a move to where the alias points)."""
        previous = await store.alias_target(ch.conn, name, alias) or ""
        if not version and not previous:
            raise NotFound(f"alias {alias!r} of model {name!r} does not exist")
        await store.write_alias(ch.conn, name, alias, version, previous, actor, reason,
                                to_us(self.clock.now()))
        ch.record(
            EventType.MODEL_ALIAS_MOVED,
            resource_type="model",
            resource_id=f"{name}@{alias}",
            action="delete_alias" if not version else "set_alias",
            actor=actor,
            details={"alias": alias, "from_version": previous, "to_version": version,
                     "reason": reason},
        )
        return AliasChange(name, alias, version, previous)
