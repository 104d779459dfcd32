"""The deployments domain's SQL: ``deployments``, ``deployment_events``, ``shadow_deployments``.

A deployment row carries, beside its columns, two JSON documents: ``config`` (baseline,
rollback config, plan, gate decision, upstreams; written once) and ``state`` (the traffic
snapshot of the current step, reported metrics, reasons; replaced on every decision).
:class:`DeploymentRecord` keeps both next to the domain object, so a decision can write
the state it was judged on back with a compare-and-set on ``revision``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from neural.mlops.server.clock import from_us, to_us
from neural.mlops.server.deployments.model import (
    Deployment,
    DeploymentEvent,
    DeploymentStatus,
    DeploymentStrategy,
    HealthCheck,
    PerformanceMetrics,
    RollbackConfig,
    RolloutPlan,
    ShadowDeployment,
    ShadowStatus,
    Verdict,
)
from neural.mlops.server.errors import InvalidArgument, NotFound
from neural.mlops.server.pagination import after_clause
from neural.mlops.server.storage.schema import (
    deployment_events,
    deployments,
    shadow_deployments,
    traffic_windows,
)
from neural.mlops.v1.traffic import VariantStats

ID_LIMIT = 64
LIST_LIMIT = 1000
_TOTALS_CHUNK = 500  # route ids per IN (...) query, well below every driver's parameter cap
_RUNNING_TOTAL = -1  # window_start_us of the traffic store's running-total rows


@dataclass(slots=True)
class DeploymentRecord:
    """A stored deployment: the domain object and the JSON documents of its row."""

    deployment: Deployment
    config: dict[str, Any] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def upstream(self) -> str:
        """HOST:PORT serving the new version ("" = the sidecar's upstream)."""
        return str(self.config.get("upstream", ""))

    @property
    def stable_upstream(self) -> str:
        return str(self.config.get("stable_upstream", ""))

    def new_state(self) -> dict[str, Any]:
        """A copy of the state to change (top-level keys are replaced, never mutated)."""
        return dict(self.state)


def dump(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


# ----------------------------------------------------------------------------- codecs


def check_to_dict(c: HealthCheck) -> dict[str, Any]:
    return {"at_us": to_us(c.at), "verdict": c.verdict.value, "reasons": c.reasons,
            "source": c.source, "step_index": c.step_index,
            "traffic_percentage": c.traffic_percentage, "new": c.new.to_dict(),
            "stable": c.stable.to_dict() if c.stable else None, "tests": c.tests}


def check_from_dict(d: dict[str, Any] | None) -> HealthCheck | None:
    if not d:
        return None
    return HealthCheck(
        at=from_us(d["at_us"]), verdict=Verdict(d["verdict"]), reasons=list(d["reasons"]),
        source=d["source"], step_index=d["step_index"],
        traffic_percentage=d["traffic_percentage"], new=PerformanceMetrics.from_dict(d["new"]),
        stable=PerformanceMetrics.from_dict(d["stable"]) if d.get("stable") else None,
        tests=d.get("tests") or {},
    )


def record_of(r: Any) -> DeploymentRecord:
    config = json.loads(r.config)
    state = json.loads(r.state)
    metrics = state.get("current_metrics")
    d = Deployment(
        deployment_id=r.deployment_id, model_name=r.model_name, model_version=r.model_version,
        stable_version=r.stable_version, strategy=DeploymentStrategy(r.strategy),
        status=DeploymentStatus(r.status), created_by=r.created_by,
        created_at=from_us(r.created_us), updated_at=from_us(r.updated_us),
        baseline_metrics=PerformanceMetrics.from_dict(config["baseline"]),
        rollback_config=RollbackConfig.from_dict(config["rollback_config"]),
        plan=RolloutPlan.from_dict(config["plan"]), step_index=r.step_index,
        traffic_percentage=r.traffic_percentage, step_started_at=from_us(r.step_started_us),
        failed_checks=r.failed_checks,
        current_metrics=PerformanceMetrics.from_dict(metrics) if metrics else None,
        last_check=check_from_dict(json.loads(r.last_check)) if r.last_check else None,
        rollback_reasons=list(state.get("rollback_reasons") or []),
        status_reason=state.get("status_reason", ""), gate=config.get("gate", {}),
        completed_at=from_us(r.completed_us) if r.completed_us else None, revision=r.revision,
        targeting=tuple(config.get("targeting") or ()),
        header_routes=tuple((h, val, name) for h, val, name in config.get("header_routes") or ()),
    )
    return DeploymentRecord(d, config, state)


def _valid_id(value: object, field: str) -> str:
    if not isinstance(value, str) or not value or len(value) > ID_LIMIT:
        raise InvalidArgument(f"{field} must be a non-empty string", field=field)
    return value


# ----------------------------------------------------------------------------- deployments


async def load(conn: AsyncConnection, deployment_id: str) -> DeploymentRecord:
    """The deployment's record; InvalidArgument for a malformed id, NotFound if unknown."""
    _valid_id(deployment_id, "deployment_id")
    row = (await conn.execute(
        sa.select(deployments).where(deployments.c.deployment_id == deployment_id)
    )).first()
    if row is None:
        raise NotFound(f"deployment {deployment_id!r} does not exist")
    return record_of(row)


async def insert(conn: AsyncConnection, rec: DeploymentRecord, next_check_us: int) -> None:
    d = rec.deployment
    await conn.execute(deployments.insert().values(
        deployment_id=d.deployment_id, model_name=d.model_name, model_version=d.model_version,
        stable_version=d.stable_version, strategy=d.strategy.value, status=d.status.value,
        active_model=d.model_name if d.active else None, created_by=d.created_by,
        created_us=to_us(d.created_at), updated_us=to_us(d.updated_at), completed_us=None,
        step_index=d.step_index, traffic_percentage=d.traffic_percentage,
        step_started_us=to_us(d.step_started_at), next_check_us=next_check_us,
        failed_checks=d.failed_checks, revision=d.revision, config=dump(rec.config),
        state=dump(rec.state), last_check="",
    ))


async def list_ids(conn: AsyncConnection, model_name: str, active_only: bool,
                   limit: int) -> list[str]:
    """Newest first."""
    d = deployments
    q = sa.select(d.c.deployment_id).order_by(d.c.created_us.desc()).limit(limit)
    if model_name:
        q = q.where(d.c.model_name == model_name)
    if active_only:
        q = q.where(d.c.active_model.is_not(None))
    return [r.deployment_id for r in await conn.execute(q)]


async def page_keys(conn: AsyncConnection, model_name: str, active_only: bool, limit: int,
                    after: tuple[int, str] | None) -> list[tuple[int, str]]:
    """(created_us, deployment_id) of up to ``limit`` deployments, newest first, after the
    key ``after`` (the last one of the previous page)."""
    d = deployments
    q = (sa.select(d.c.created_us, d.c.deployment_id)
         .order_by(d.c.created_us.desc(), d.c.deployment_id.desc()).limit(limit))
    if model_name:
        q = q.where(d.c.model_name == model_name)
    if active_only:
        q = q.where(d.c.active_model.is_not(None))
    if after is not None:
        q = q.where(after_clause([d.c.created_us, d.c.deployment_id], after, descending=True))
    return [(r.created_us, r.deployment_id) for r in await conn.execute(q)]


async def active_for_model(conn: AsyncConnection, name: str) -> str | None:
    """The id of the model's active deployment, if any."""
    row = (await conn.execute(
        sa.select(deployments.c.deployment_id).where(deployments.c.active_model == name)
    )).first()
    return row.deployment_id if row else None


async def last_completed(conn: AsyncConnection, name: str) -> tuple[str, str] | None:
    """(version, upstream) of the model's last completed serving deployment."""
    d = deployments
    row = (await conn.execute(
        sa.select(d.c.model_version, d.c.config)
        .where(d.c.model_name == name, d.c.status == DeploymentStatus.COMPLETED.value,
               d.c.strategy != DeploymentStrategy.SHADOW.value)
        .order_by(d.c.completed_us.desc())
        .limit(1)
    )).first()
    if row is None:
        return None
    return str(row.model_version), str(json.loads(row.config).get("upstream", ""))


async def compare_and_set(conn: AsyncConnection, d: Deployment, now_us: int,
                          **values: Any) -> bool:
    """Write ``values`` and a new revision if the row is still at ``d.revision``."""
    res = await conn.execute(
        deployments.update()
        .where(deployments.c.deployment_id == d.deployment_id,
               deployments.c.revision == d.revision)
        .values(revision=d.revision + 1, updated_us=now_us, **values)
    )
    return bool(res.rowcount)


async def update_if_revision(conn: AsyncConnection, d: Deployment, **values: Any) -> bool:
    """Write ``values`` (the revision unchanged) if the row is still at ``d.revision``."""
    res = await conn.execute(
        deployments.update()
        .where(deployments.c.deployment_id == d.deployment_id,
               deployments.c.revision == d.revision)
        .values(**values)
    )
    return bool(res.rowcount)


async def update(conn: AsyncConnection, deployment_id: str, **values: Any) -> None:
    await conn.execute(
        deployments.update().where(deployments.c.deployment_id == deployment_id).values(**values)
    )


async def bump_revision(conn: AsyncConnection, deployment_id: str, **values: Any) -> None:
    await update(conn, deployment_id, revision=deployments.c.revision + 1, **values)


async def store_checks(conn: AsyncConnection, checks: list[dict[str, Any]]) -> None:
    """Many unaudited check results at once, each if its row is still at ``revision``.

    Each item: ``deployment_id``, ``revision``, ``last_check``, ``next_check_us``,
    ``failed_checks``."""
    t = deployments
    stmt = (
        t.update()
        .where(t.c.deployment_id == sa.bindparam("b_id"),
               t.c.revision == sa.bindparam("b_revision"))
        .values(last_check=sa.bindparam("b_check"), next_check_us=sa.bindparam("b_next"),
                failed_checks=sa.bindparam("b_failed"))
    )
    params = [{"b_id": c["deployment_id"], "b_revision": c["revision"],
               "b_check": c["last_check"], "b_next": c["next_check_us"],
               "b_failed": c["failed_checks"]} for c in checks]
    await conn.execute(stmt, params)  # one executemany, not one round trip each


async def due(conn: AsyncConnection, now_us: int) -> list[DeploymentRecord]:
    """Active deployments whose next check is due."""
    d = deployments
    rows = await conn.execute(
        sa.select(d).where(d.c.active_model.is_not(None), d.c.next_check_us <= now_us)
    )
    return [record_of(r) for r in rows]


async def next_due_us(conn: AsyncConnection) -> int | None:
    d = deployments
    due_us = (await conn.execute(
        sa.select(sa.func.min(d.c.next_check_us)).where(d.c.active_model.is_not(None))
    )).scalar()
    return int(due_us) if due_us is not None else None


async def active(conn: AsyncConnection) -> list[DeploymentRecord]:
    d = deployments
    return [record_of(r) for r in await conn.execute(
        sa.select(d).where(d.c.active_model.is_not(None))
    )]


async def completed_pins(conn: AsyncConnection) -> list[tuple[str, str, str, str]]:
    """(deployment_id, model, version, upstream) of completed serving deployments, oldest
    completion first (a later one replaces an earlier one's pin)."""
    d = deployments
    rows = await conn.execute(
        sa.select(d.c.deployment_id, d.c.model_name, d.c.model_version, d.c.config)
        .where(d.c.status == DeploymentStatus.COMPLETED.value,
               d.c.strategy != DeploymentStrategy.SHADOW.value)
        .order_by(d.c.completed_us)
    )
    return [(r.deployment_id, r.model_name, r.model_version,
             str(json.loads(r.config).get("upstream", ""))) for r in rows]


async def running_totals(conn: AsyncConnection,
                         route_ids: list[str]) -> dict[str, dict[str, VariantStats]]:
    """The traffic store's running totals of many routes in a few queries (the
    controller's batch read; :func:`traffic.totals` reads one route)."""
    tw = traffic_windows
    out: dict[str, dict[str, VariantStats]] = {}
    for i in range(0, len(route_ids), _TOTALS_CHUNK):
        rows = await conn.execute(
            sa.select(tw.c.route_id, tw.c.variant, tw.c.stats)
            .where(tw.c.route_id.in_(route_ids[i:i + _TOTALS_CHUNK]),
                   tw.c.window_start_us == _RUNNING_TOTAL)
        )
        for r in rows:
            out.setdefault(r.route_id, {})[r.variant] = VariantStats.from_dict(json.loads(r.stats))
    return out


# ----------------------------------------------------------------------------- events


async def insert_event(conn: AsyncConnection, deployment_id: str, at_us: int, action: str,
                       actor: str, from_status: DeploymentStatus | None,
                       to_status: DeploymentStatus, step: int, pct: float,
                       details: dict[str, Any]) -> None:
    await conn.execute(deployment_events.insert().values(
        deployment_id=deployment_id, at_us=at_us, action=action, actor=actor,
        from_status=from_status.value if from_status else "", to_status=to_status.value,
        step_index=step, traffic_percentage=pct, details=dump(details),
    ))


async def events(conn: AsyncConnection, deployment_id: str, after_seq: int,
                 limit: int | None = None) -> list[DeploymentEvent]:
    """The deployment's events after ``after_seq``, oldest first (at most ``limit``)."""
    e = deployment_events
    rows = await conn.execute(
        sa.select(e).where(e.c.deployment_id == deployment_id, e.c.id > after_seq)
        .order_by(e.c.id).limit(limit)
    )
    return [
        DeploymentEvent(
            seq=r.id, at=from_us(r.at_us), action=r.action, actor=r.actor,
            from_status=DeploymentStatus(r.from_status) if r.from_status else None,
            to_status=DeploymentStatus(r.to_status), step_index=r.step_index,
            traffic_percentage=r.traffic_percentage, details=json.loads(r.details),
        )
        for r in rows
    ]


# ----------------------------------------------------------------------------- shadows


def _shadow_of(r: Any) -> ShadowDeployment:
    return ShadowDeployment(
        shadow_id=r.shadow_id, primary_model=r.primary_model, shadow_model=r.shadow_model,
        traffic_percentage=r.percentage, status=ShadowStatus(r.status),
        created_by=r.created_by, created_at=from_us(r.created_us),
        stopped_at=from_us(r.stopped_us) if r.stopped_us else None, upstream=r.upstream,
    )


async def insert_shadow(conn: AsyncConnection, s: ShadowDeployment) -> None:
    await conn.execute(shadow_deployments.insert().values(
        shadow_id=s.shadow_id, model_name=s.model_name, primary_model=s.primary_model,
        shadow_model=s.shadow_model, percentage=s.traffic_percentage, upstream=s.upstream,
        status=s.status.value, created_by=s.created_by, created_us=to_us(s.created_at),
        stopped_us=None,
    ))


async def load_shadow(conn: AsyncConnection, shadow_id: str) -> ShadowDeployment:
    """InvalidArgument for a malformed id, NotFound if unknown."""
    _valid_id(shadow_id, "shadow_id")
    s = shadow_deployments
    r = (await conn.execute(sa.select(s).where(s.c.shadow_id == shadow_id))).first()
    if r is None:
        raise NotFound(f"shadow deployment {shadow_id!r} does not exist")
    return _shadow_of(r)


async def list_shadows(conn: AsyncConnection, active_only: bool, limit: int = LIST_LIMIT,
                       after: tuple[int, str] | None = None) -> list[ShadowDeployment]:
    """Newest first (by created_us, then shadow_id), after the key ``after``."""
    s = shadow_deployments
    q = sa.select(s).order_by(s.c.created_us.desc(), s.c.shadow_id.desc()).limit(limit)
    if active_only:
        q = q.where(s.c.status == ShadowStatus.ACTIVE.value)
    if after is not None:
        q = q.where(after_clause([s.c.created_us, s.c.shadow_id], after, descending=True))
    return [_shadow_of(r) for r in await conn.execute(q)]


async def stop_shadow(conn: AsyncConnection, shadow_id: str, now_us: int) -> None:
    s = shadow_deployments
    await conn.execute(s.update().where(s.c.shadow_id == shadow_id)
                       .values(status=ShadowStatus.STOPPED.value, stopped_us=now_us))


async def active_shadows(conn: AsyncConnection) -> list[ShadowDeployment]:
    s = shadow_deployments
    rows = await conn.execute(sa.select(s).where(s.c.status == ShadowStatus.ACTIVE.value))
    return [_shadow_of(r) for r in rows]
