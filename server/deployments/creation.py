"""Starting a rollout: the registry gate, the stable version, the first step, the audit."""

from __future__ import annotations

import uuid
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from neural.mlops.server.audit.events import EventSeverity, EventType
from neural.mlops.server.clock import Clock, from_us, to_us
from neural.mlops.server.deployments import store
from neural.mlops.server.deployments.gate import RegistryGate, check_gate
from neural.mlops.server.deployments.model import (
    Deployment,
    DeploymentStatus,
    DeploymentStrategy,
    GatePolicy,
)
from neural.mlops.server.deployments.planning import ValidSpec
from neural.mlops.server.deployments.signals import Signals
from neural.mlops.server.deployments.store import DeploymentRecord
from neural.mlops.server.deployments.transitions import snapshot
from neural.mlops.server.errors import FailedPrecondition
from neural.mlops.server.storage import Change, Database

log = structlog.get_logger(__name__)


async def stable_of(conn: AsyncConnection, spec: ValidSpec,
                    gate: RegistryGate | None) -> tuple[str, str]:
    """The stable version and the upstream that serves it ("" = the sidecar's own).

    The version is, in order: the one given, the version of the model's last completed
    deployment, the version that was PRODUCTION before the new one (registry history),
    else "" (the caller's). When it is the last completed deployment's version, that
    deployment's upstream serves it, as its pinned route did until now."""
    pinned = await store.last_completed(conn, spec.name)
    stable = spec.stable_given
    if not stable and pinned is not None and pinned[0] != spec.version:
        stable = pinned[0]
    if not stable and gate is not None:
        stable = await gate.previous_production(conn, spec.name, spec.version)
    return stable, pinned[1] if pinned is not None and pinned[0] == stable else ""


class Creation:
    def __init__(self, db: Database, clock: Clock, signals: Signals,
                 policy: GatePolicy) -> None:
        self.db = db
        self.clock = clock
        self.signals = signals
        self.policy = policy

    async def create(self, spec: ValidSpec, gate: RegistryGate | None) -> Deployment:
        now = to_us(self.clock.now())
        deployment_id = f"dep-{uuid.uuid4().hex[:16]}"
        async with self.db.change() as ch:
            gate_info = await check_gate(gate, ch.conn, spec, self.policy)
            active = await store.active_for_model(ch.conn, spec.name)
            if active is not None:
                raise FailedPrecondition(
                    f"model {spec.name!r} already has an active deployment {active}; "
                    "promote, abort or roll it back first"
                )
            stable, stable_upstream = await stable_of(ch.conn, spec, gate)
            rec = DeploymentRecord(
                Deployment(
                    deployment_id=deployment_id, model_name=spec.name,
                    model_version=spec.version, stable_version=stable, strategy=spec.strategy,
                    status=DeploymentStatus.IN_PROGRESS, created_by=spec.actor,
                    created_at=from_us(now), updated_at=from_us(now),
                    baseline_metrics=spec.baseline, rollback_config=spec.rollback,
                    plan=spec.plan, step_index=0, traffic_percentage=spec.plan.steps[0],
                    step_started_at=from_us(now), gate=gate_info, revision=1,
                    targeting=spec.targeting, header_routes=spec.header_routes,
                ),
                config={"baseline": spec.baseline.to_dict(),
                        "rollback_config": spec.rollback.to_dict(), "plan": spec.plan.to_dict(),
                        "gate": gate_info, "upstream": spec.upstream,
                        "stable_upstream": stable_upstream,
                        "targeting": list(spec.targeting),
                        "header_routes": [list(h) for h in spec.header_routes]},
                state={"snapshot": await snapshot(ch.conn, deployment_id),
                       "rollback_reasons": [], "status_reason": "", "current_metrics": None,
                       "metrics_us": None},
            )
            next_check = now + int(spec.plan.analysis_interval_seconds * 1e6)
            await store.insert(ch.conn, rec, next_check)
            await self._record(ch, rec, now)
            self.signals.committed(ch)
            result = (await store.load(ch.conn, deployment_id)).deployment
        log.info("deployment created", deployment_id=deployment_id, model=spec.name,
                 version=spec.version, strategy=spec.strategy.value, stable_version=stable)
        return result

    async def _record(self, ch: Change, rec: DeploymentRecord, now: int) -> None:
        """The deployment's first event and its audit events (an override is its own).
        The upstreams are recorded: they say where callers' traffic will be sent."""
        d = rec.deployment
        first = d.traffic_percentage
        details: dict[str, Any] = {
            "model": d.model_name, "version": d.model_version,
            "stable_version": d.stable_version, "strategy": d.strategy.value,
            "plan": d.plan.to_dict(), "baseline": d.baseline_metrics.to_dict(),
            "rollback_config": d.rollback_config.to_dict(), "gate": d.gate,
            "upstream": rec.upstream, "stable_upstream": rec.stable_upstream,
        }
        if d.targeting or d.header_routes:
            details["targeting"] = list(d.targeting)
            details["header_routes"] = [list(h) for h in d.header_routes]
        await store.insert_event(ch.conn, d.deployment_id, now, "created", d.created_by, None,
                                 DeploymentStatus.IN_PROGRESS, 0, first, details)
        ch.record(EventType.DEPLOYMENT_CREATED, resource_type="deployment",
                  resource_id=d.deployment_id, action="create", actor=d.created_by,
                  details=details)
        if d.gate.get("override_reason"):
            ch.record(EventType.DEPLOYMENT_CREATED, resource_type="deployment",
                      resource_id=d.deployment_id, action="registry_gate_override",
                      actor=d.created_by, severity=EventSeverity.WARNING,
                      details={"model": f"{d.model_name}:{d.model_version}",
                               "stage": d.gate["stage"], "policy": self.policy.value,
                               "reason": d.gate["override_reason"]})
        if d.strategy is not DeploymentStrategy.SHADOW:
            ch.record(EventType.MODEL_DEPLOYED, resource_type="model",
                      resource_id=f"{d.model_name}:{d.model_version}", action="deploy",
                      actor=d.created_by,
                      details={"deployment_id": d.deployment_id, "strategy": d.strategy.value,
                               "traffic_percentage": first})
