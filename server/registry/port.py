"""What other domains may ask of the registry, and its implementation over this store.

Deployments and experiments use only :class:`RegistryPort`: stage reads and existence
checks run on the caller's connection, promotions join the caller's transaction (the
audit events and history rows commit with the deployment's own change).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from neural.mlops.server.registry import store
from neural.mlops.server.registry.model import ModelStage
from neural.mlops.server.registry.stages import Stages
from neural.mlops.server.storage import Change


@dataclass(frozen=True)
class ProductionPromotion:
    """What entering PRODUCTION changed: the version's stage before, the versions archived."""

    previous_stage: ModelStage
    archived: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"registry_stage": ModelStage.PRODUCTION.value, "archived": list(self.archived),
                "previous_stage": self.previous_stage.value}


class RegistryPort(Protocol):
    async def stage_of(self, conn: AsyncConnection, name: str, version: str) -> ModelStage:
        """Stage of name/version (version may be '@alias'); raises NotFound if unknown."""
        ...

    async def version_exists(self, conn: AsyncConnection, name: str, version: str) -> bool:
        """Whether ``version`` (or ``@alias``) names a version of ``name``."""
        ...

    async def model_exists(self, conn: AsyncConnection, name: str) -> bool:
        """Whether a model ``name`` is registered."""
        ...

    async def promote_to_production(self, ch: Change, name: str, version: str, actor: str,
                                    reason: str) -> ProductionPromotion:
        """In ch's transaction: archive every other PRODUCTION version of name, set version
        PRODUCTION (stage history + audit), as an approved promotion does."""
        ...

    async def restore_production(self, ch: Change, name: str, restore: str, demote: str,
                                 actor: str, reason: str) -> ProductionPromotion:
        """A rollback in ch's transaction: ``restore`` back to PRODUCTION, ``demote`` (and
        any other PRODUCTION version) ARCHIVED."""
        ...

    async def previous_production(self, conn: AsyncConnection, name: str, version: str) -> str:
        """The version that was PRODUCTION before `version` ('' if none), from history: the
        other version that entered PRODUCTION last."""
        ...


class StoreRegistryPort:
    """:class:`RegistryPort` over the registry tables of the caller's own database."""

    def __init__(self, stages: Stages) -> None:
        self._stages = stages

    async def stage_of(self, conn: AsyncConnection, name: str, version: str) -> ModelStage:
        return (await store.resolve(conn, name, version)).stage

    async def version_exists(self, conn: AsyncConnection, name: str, version: str) -> bool:
        if version.startswith("@"):
            # An alias always names an existing version: deleting its target is refused.
            return await store.alias_target(conn, name, version[1:]) is not None
        return await store.version_id(conn, name, version) is not None

    async def model_exists(self, conn: AsyncConnection, name: str) -> bool:
        return await store.model_exists(conn, name)

    async def promote_to_production(self, ch: Change, name: str, version: str, actor: str,
                                    reason: str) -> ProductionPromotion:
        row = await store.resolve(ch.conn, name, version)
        archived = await self._stages.enter_production(
            ch, row, actor, reason,
            archive_reason=f"replaced in PRODUCTION by {row.version} ({reason})",
        )
        return ProductionPromotion(row.stage, archived)

    async def restore_production(self, ch: Change, name: str, restore: str, demote: str,
                                 actor: str, reason: str) -> ProductionPromotion:
        # `demote` is among the PRODUCTION versions that entering PRODUCTION archives.
        return await self.promote_to_production(ch, name, restore, actor, reason)

    async def previous_production(self, conn: AsyncConnection, name: str, version: str) -> str:
        return await store.previous_production(conn, name, version)
