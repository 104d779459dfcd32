"""Operator actions on an active deployment: promote, pause, resume, abort, roll back."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from neural.mlops.server import validation as v
from neural.mlops.server.audit.events import EventSeverity, EventType
from neural.mlops.server.clock import to_us
from neural.mlops.server.deployments import store
from neural.mlops.server.deployments.model import Deployment, DeploymentStatus
from neural.mlops.server.deployments.planning import REASON_LIMIT
from neural.mlops.server.deployments.transitions import State, Transitions
from neural.mlops.server.errors import FailedPrecondition
from neural.mlops.server.storage import Change, Database


class Operation(StrEnum):
    PROMOTE = "promote"  # one step now
    PROMOTE_FULL = "promote_full"  # complete at once
    PAUSE = "pause"
    RESUME = "resume"
    ABORT = "abort"
    ROLLBACK = "rollback"

    @property
    def done(self) -> str:
        """The operation in a sentence: 'only an active deployment can be ...'."""
        return {"pause": "paused", "resume": "resumed", "abort": "aborted",
                "rollback": "rolled back"}.get(self.value, "promoted")


class Operations:
    def __init__(self, db: Database, transitions: Transitions) -> None:
        self.db = db
        self.t = transitions

    async def run(self, deployment_id: str, actor: str, reason: str,
                  op: Operation) -> Deployment:
        """Apply ``op`` as ``actor`` (audited with ``reason``); the deployment after it."""
        actor = v.actor(actor, "actor")
        reason = v.text(reason, "reason", limit=REASON_LIMIT)
        now = to_us(self.t.clock.now())
        async with self.db.change() as ch:
            rec = await store.load(ch.conn, deployment_id)
            d = rec.deployment
            if not d.active:
                raise FailedPrecondition(
                    f"deployment {deployment_id} is {d.status.value.upper()}; only an active "
                    f"deployment can be {op.done}"
                )
            details: State = {"reason": reason, "manual": True}
            by = f"{actor}" + (f": {reason}" if reason else "")
            await self._apply(ch, op, d, actor, rec.new_state(), now, details, by)
            return (await store.load(ch.conn, deployment_id)).deployment

    async def _apply(self, ch: Change, op: Operation, d: Deployment, actor: str, state: State,
                     now: int, details: State, by: str) -> None:
        t = self.t
        if op is Operation.PROMOTE:
            await t.promote_step(ch, d, actor, state, now, details)
        elif op is Operation.PROMOTE_FULL:
            await t.complete(ch, d, actor, state, now, {**details, "full": True})
        elif op is Operation.PAUSE:
            if d.status is DeploymentStatus.PAUSED:
                raise FailedPrecondition(f"deployment {d.deployment_id} is already PAUSED")
            state["status_reason"] = f"paused by {by}"
            await t.transition(ch, d, DeploymentStatus.PAUSED, "paused", actor, state, now,
                               details, EventType.DEPLOYMENT_PAUSED)
        elif op is Operation.RESUME:
            await self._resume(ch, d, actor, state, now, details)
        elif op is Operation.ABORT:
            state["status_reason"] = f"aborted by {by}"
            await t.transition(ch, d, DeploymentStatus.ABORTED, "aborted", actor, state, now,
                               details, EventType.DEPLOYMENT_ABORTED, EventSeverity.WARNING)
        else:
            reasons = [f"manual rollback by {by}"]
            state["rollback_reasons"] = reasons
            state["status_reason"] = reasons[0]
            await t.transition(ch, d, DeploymentStatus.ROLLED_BACK, "rolled_back", actor, state,
                               now, {**details, "reasons": reasons},
                               EventType.DEPLOYMENT_ROLLED_BACK, EventSeverity.WARNING)

    async def _resume(self, ch: Change, d: Deployment, actor: str, state: State, now: int,
                      details: dict[str, Any]) -> None:
        if d.status is not DeploymentStatus.PAUSED:
            raise FailedPrecondition(f"deployment {d.deployment_id} is not PAUSED")
        state["status_reason"] = ""
        # The hold of the current step starts again: a person looked at it.
        await self.t.transition(ch, d, DeploymentStatus.IN_PROGRESS, "resumed", actor, state, now,
                                details, EventType.DEPLOYMENT_RESUMED, step_started_us=now,
                                next_check_us=now + int(d.plan.analysis_interval_seconds * 1e6))
