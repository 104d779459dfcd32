"""Deployment state changes, each inside the caller's :class:`Change`.

A transition writes the row with a compare-and-set on ``revision`` (``False`` when the
deployment moved on since it was read: the caller drops or re-decides), appends the
deployment's own event, records the audit event in the same transaction and, on commit,
wakes watchers and the routing table. The registry follows a rollout's end in the same
transaction (:class:`RegistryWriteBack`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from neural.mlops.server import traffic
from neural.mlops.server.audit.events import EventSeverity, EventType
from neural.mlops.server.clock import Clock, to_us
from neural.mlops.server.deployments import store
from neural.mlops.server.deployments.gate import RegistryWriteBack
from neural.mlops.server.deployments.model import Deployment, DeploymentStatus, DeploymentStrategy
from neural.mlops.server.deployments.rollout import (
    Action,
    Decision,
    decision_details,
    next_check_us,
)
from neural.mlops.server.deployments.signals import Signals
from neural.mlops.server.storage import Change

log = structlog.get_logger(__name__)

State = dict[str, Any]


class Stale(Exception):
    """The deployment changed since it was judged; the decision is dropped."""


class Transitions:
    def __init__(self, clock: Clock, signals: Signals, registry: RegistryWriteBack) -> None:
        self.clock = clock
        self.signals = signals
        self.registry = registry

    def _now_us(self) -> int:
        return to_us(self.clock.now())

    async def _cas(self, ch: Change, d: Deployment, **values: Any) -> bool:
        return await store.compare_and_set(ch.conn, d, self._now_us(), **values)

    async def _event(self, ch: Change, d: Deployment, now: int, action: str, actor: str,
                     to: DeploymentStatus, step: int, pct: float, details: State) -> None:
        await store.insert_event(ch.conn, d.deployment_id, now, action, actor, d.status, to,
                                 step, pct, details)

    async def transition(self, ch: Change, d: Deployment, to: DeploymentStatus, action: str,
                         actor: str, state: State, now: int, details: State, event: EventType,
                         severity: EventSeverity = EventSeverity.INFO, **extra: Any) -> bool:
        """Move ``d`` to status ``to`` (``extra``: more columns to write)."""
        values: dict[str, Any] = {"status": to.value, "state": store.dump(state), **extra}
        if not to.active:
            values["active_model"] = None
            values["completed_us"] = now
        if to is DeploymentStatus.IN_PROGRESS:
            values["failed_checks"] = 0
        if not await self._cas(ch, d, **values):
            return False
        if to is DeploymentStatus.ROLLED_BACK:
            restored = await self.registry.rolled_back(ch, d, actor)
            if restored is not None:
                details = {**details, "registry": restored}
        # model_name/version let audit reports tie the change to the version's approval.
        details = {**details, "model_name": d.model_name, "version": d.model_version,
                   "from_status": d.status.value, "to_status": to.value}
        await self._event(ch, d, now, action, actor, to, d.step_index, d.traffic_percentage,
                          details)
        ch.record(event, resource_type="deployment", resource_id=d.deployment_id,
                  action=action, actor=actor, severity=severity, details=details)
        self.signals.committed(ch)
        log.info("deployment " + action, deployment_id=d.deployment_id, model=d.model_name,
                 version=d.model_version, reasons=details.get("reasons"))
        return True

    async def advance(self, ch: Change, d: Deployment, actor: str, state: State, now: int,
                      details: State) -> bool:
        """On to the next step: a new traffic split, a new snapshot, a new hold."""
        index = d.step_index + 1
        pct = d.plan.steps[index]
        state["snapshot"] = await snapshot(ch.conn, d.deployment_id)
        state["current_metrics"] = None
        state["status_reason"] = ""
        if not await self._cas(ch, d, step_index=index, traffic_percentage=pct,
                               step_started_us=now,
                               next_check_us=now + int(d.plan.analysis_interval_seconds * 1e6),
                               failed_checks=0, state=store.dump(state)):
            return False
        details = {**details, "from_step": d.step_index, "to_step": index,
                   "from_percentage": d.traffic_percentage, "to_percentage": pct}
        await self._event(ch, d, now, "advanced", actor, d.status, index, pct, details)
        ch.record(EventType.DEPLOYMENT_ADVANCED, resource_type="deployment",
                  resource_id=d.deployment_id, action="advance", actor=actor, details=details)
        self.signals.committed(ch)
        log.info("deployment advanced", deployment_id=d.deployment_id, model=d.model_name,
                 to_percentage=pct)
        return True

    async def complete(self, ch: Change, d: Deployment, actor: str, state: State, now: int,
                       details: State) -> bool:
        """Promoted: all traffic on the new version (a SHADOW rollout: its verdict stands)."""
        final = 0.0 if d.strategy is DeploymentStrategy.SHADOW else 100.0
        state["status_reason"] = "promoted" if final else "shadow evaluation finished"
        details = {**details, "from_percentage": d.traffic_percentage, "to_percentage": final}
        registry = await self.registry.promoted(ch, d, actor)
        if registry is not None:
            details["registry"] = registry
        return await self.transition(ch, d, DeploymentStatus.COMPLETED, "promoted", actor, state,
                                     now, details, EventType.DEPLOYMENT_PROMOTED,
                                     traffic_percentage=final,
                                     step_index=len(d.plan.steps) - 1)

    async def promote_step(self, ch: Change, d: Deployment, actor: str, state: State, now: int,
                           details: State) -> bool:
        """One step on; completes after the last."""
        if d.step_index + 1 >= len(d.plan.steps):
            return await self.complete(ch, d, actor, state, now, details)
        return await self.advance(ch, d, actor, state, now, details)

    # ------------------------------------------------------------------ a controller decision

    async def apply(self, ch: Change, decision: Decision, actor: str) -> None:
        """Apply a status-changing decision in ``ch``; raises :class:`Stale` when the
        deployment is no longer at the revision it was judged on."""
        appliers: dict[Action, Callable[[Change, Decision, str], Awaitable[bool]]] = {
            Action.FAILED_CHECK: self._failed_check,
            Action.ROLLBACK: self._rollback,
            Action.PAUSE: self._pause,
            Action.ADVANCE: self._advance,
            Action.COMPLETE: self._complete,
        }
        if not await appliers[decision.action](ch, decision, actor):
            raise Stale

    async def _failed_check(self, ch: Change, decision: Decision, actor: str) -> bool:
        d, check = decision.deployment, decision.check
        now = to_us(check.at)
        if not await self._cas(ch, d, state=store.dump(decision.record.new_state()),
                               next_check_us=_next_check(decision),
                               failed_checks=d.failed_checks + 1):
            return False
        details = {**decision_details(check, d), "failed_checks": d.failed_checks + 1}
        await self._event(ch, d, now, "failed_check", actor, d.status, d.step_index,
                          d.traffic_percentage, details)
        ch.record(EventType.CUSTOM, resource_type="deployment", resource_id=d.deployment_id,
                  action="failed_check", actor=actor, severity=EventSeverity.WARNING,
                  details=details)
        self.signals.committed(ch, routes=False)
        return True

    async def _rollback(self, ch: Change, decision: Decision, actor: str) -> bool:
        d, check = decision.deployment, decision.check
        state = decision.record.new_state()
        state["rollback_reasons"] = list(check.reasons)
        state["status_reason"] = "; ".join(check.reasons)
        return await self.transition(ch, d, DeploymentStatus.ROLLED_BACK, "rolled_back", actor,
                                     state, to_us(check.at), decision_details(check, d),
                                     EventType.DEPLOYMENT_ROLLED_BACK, EventSeverity.WARNING)

    async def _pause(self, ch: Change, decision: Decision, actor: str) -> bool:
        d, check = decision.deployment, decision.check
        state = decision.record.new_state()
        state["status_reason"] = f"{check.verdict.value}: " + "; ".join(check.reasons)
        return await self.transition(ch, d, DeploymentStatus.PAUSED, "paused", actor, state,
                                     to_us(check.at), decision_details(check, d),
                                     EventType.DEPLOYMENT_PAUSED, EventSeverity.WARNING,
                                     next_check_us=_next_check(decision))

    async def _advance(self, ch: Change, decision: Decision, actor: str) -> bool:
        d, check = decision.deployment, decision.check
        return await self.advance(ch, d, actor, decision.record.new_state(), to_us(check.at),
                                  decision_details(check, d))

    async def _complete(self, ch: Change, decision: Decision, actor: str) -> bool:
        d, check = decision.deployment, decision.check
        return await self.complete(ch, d, actor, decision.record.new_state(), to_us(check.at),
                                   decision_details(check, d))


def _next_check(decision: Decision) -> int:
    return next_check_us(decision.deployment, to_us(decision.check.at))


async def snapshot(conn: AsyncConnection, route_id: str) -> State:
    """The route's running totals now: the zero point of a new step's health window."""
    return {k: s.to_dict() for k, s in (await traffic.totals(conn, route_id)).items()}
