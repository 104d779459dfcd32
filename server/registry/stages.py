"""Stage moves: the direct ones (to DEVELOPMENT or ARCHIVED) and entering PRODUCTION.

Every move writes the version's stage, an append-only history row and an audit event in
the caller's transaction. Entering PRODUCTION archives the model's other PRODUCTION
versions first, so a model has at most one; approvals and deployments both go through
:meth:`Stages.enter_production`.
"""

from __future__ import annotations

from neural.mlops.server import validation as v
from neural.mlops.server.audit.events import EventType
from neural.mlops.server.clock import Clock, to_us
from neural.mlops.server.errors import FailedPrecondition
from neural.mlops.server.registry import store
from neural.mlops.server.registry.model import GATED_STAGES, ModelStage, ModelVersion
from neural.mlops.server.registry.store import VersionRow
from neural.mlops.server.storage import Change, Database


class Stages:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def transition(self, name: str, version: str, target: ModelStage, actor: str,
                         reason: str = "") -> ModelVersion:
        """Move to DEVELOPMENT or ARCHIVED directly; STAGING/PRODUCTION need an approval."""
        v.actor(actor, "actor")
        v.text(reason, "reason")
        if target in GATED_STAGES:
            raise FailedPrecondition(
                f"entering {target.value.upper()} needs an approved promotion request "
                "(request_promotion, then approve_promotion by someone else)",
                field="target_stage", reason="APPROVAL_REQUIRED",
            )
        async with self.db.change() as ch:
            row = await store.resolve(ch.conn, name, version)
            if row.stage is target:
                raise FailedPrecondition(f"{name}:{row.version} is already {target.value.upper()}")
            await self.set(ch, row, target, actor, reason, "")
            return await store.load(ch.conn, row.id)

    async def set(self, ch: Change, row: VersionRow, target: ModelStage, actor: str,
                  reason: str, request_id: str) -> None:
        await store.write_stage(ch.conn, row, target, actor, reason, request_id,
                                to_us(self.clock.now()))
        ch.record(
            EventType.MODEL_STAGE_CHANGED,
            resource_type="model",
            resource_id=row.ref,
            action="stage_change",
            actor=actor,
            details={"from_stage": row.stage.value, "to_stage": target.value, "reason": reason,
                     "promotion_request_id": request_id},
        )

    async def enter_production(self, ch: Change, row: VersionRow, actor: str, reason: str,
                               request_id: str = "", archive_reason: str = "") -> list[str]:
        """Archive the model's other PRODUCTION versions (with ``archive_reason``, by default
        "replaced in PRODUCTION by <version>"), then move ``row`` to PRODUCTION unless it
        is there already. Returns the archived versions."""
        archive_reason = archive_reason or f"replaced in PRODUCTION by {row.version}"
        archived = []
        others = await store.rows_in_stage(ch.conn, row.name, ModelStage.PRODUCTION,
                                           except_id=row.id)
        for old in others:
            await self.set(ch, old, ModelStage.ARCHIVED, actor, archive_reason, request_id)
            archived.append(old.version)
        if row.stage is not ModelStage.PRODUCTION:
            await self.set(ch, row, ModelStage.PRODUCTION, actor, reason, request_id)
        return archived
