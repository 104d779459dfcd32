"""DeploymentService: the transport-free deployment manager and rollout controller.

State lives in ``deployments`` (one row per rollout, with a ``revision`` that every
decision compares-and-sets), ``deployment_events`` (the decision log, each entry with the
values it was based on) and ``shadow_deployments``. Every state change is one
transaction that also writes its audit event and, when routes change, wakes the routing
table on commit. The controller therefore keeps no state of its own: after ``kill -9``
it re-reads the rows and continues; a step either committed (and is never repeated,
the revision moved on) or did not happen (and is decided again from the same durable
metrics), so no step is taken twice and no rollback is lost.

Health windows: the metrics of a step are the route's running totals minus a snapshot
taken when the step began (:func:`subtract`), so a check always sees exactly the traffic
of the current traffic split, whatever width the stored windows have.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from neural.mlops.server import traffic
from neural.mlops.server import validation as v
from neural.mlops.server.audit.events import EventSeverity, EventType
from neural.mlops.server.clock import Clock, SystemClock, from_us, to_us
from neural.mlops.server.deployments.judge import Judgement, judge, metrics_of, shadow_as_variant
from neural.mlops.server.deployments.model import (
    DEFAULT_CANARY_STEPS,
    Deployment,
    DeploymentEvent,
    DeploymentStatus,
    DeploymentStrategy,
    GatePolicy,
    HealthCheck,
    PerformanceMetrics,
    PreviewMode,
    RollbackConfig,
    RolloutPlan,
    ShadowDeployment,
    ShadowStatus,
    Verdict,
)
from neural.mlops.server.errors import FailedPrecondition, InvalidArgument, NotFound
from neural.mlops.server.routing.model import ModelRoute, RouteVariant, ShadowTarget
from neural.mlops.server.storage import Change, Database
from neural.mlops.server.storage.schema import (
    deployment_events,
    deployments,
    model_history,
    shadow_deployments,
)
from neural.mlops.v1.traffic import LatencyHistogram, Moments, ShadowStats, VariantStats

log = structlog.get_logger(__name__)

CONTROLLER = "rollout-controller"
MAX_STEPS = 20
MIN_INTERVAL = 0.01
MAX_DURATION = 30 * 24 * 3600.0
SHADOW_MIN_SAMPLES = 100


# ----------------------------------------------------------------------------- registry gate


class RegistryGate(Protocol):
    """What the deployment manager knows about registry stages."""

    async def stage(self, conn: AsyncConnection, name: str, version: str) -> str:
        """The version's stage (``"production"`` ...); raises NotFound if unknown."""
        ...

    async def promote(self, ch: Change, name: str, version: str, actor: str, reason: str) -> dict[str, Any]:
        """Make ``version`` the model's PRODUCTION version (previous archived), in ``ch``."""
        ...

    async def previous_production(self, conn: AsyncConnection, name: str, version: str) -> str:
        """The version that served before ``version`` was approved ("" if none)."""
        ...


class LocalRegistryGate:
    """The registry in the same store: stage reads and promotion join the transaction."""

    def __init__(self, registry: Any) -> None:
        self.registry = registry

    async def stage(self, conn: AsyncConnection, name: str, version: str) -> str:
        vid = await self.registry._resolve(conn, name, version)
        return str((await self.registry._load(conn, vid)).stage.value)

    async def promote(self, ch: Change, name: str, version: str, actor: str, reason: str) -> dict[str, Any]:
        from neural.mlops.server.registry.model import ModelStage
        from neural.mlops.server.storage.schema import model_versions as mv

        vid = await self.registry._resolve(ch.conn, name, version)
        target = await self.registry._load(ch.conn, vid)
        archived = []
        current = (
            await ch.conn.execute(
                sa.select(mv.c.id).where(mv.c.name == name, mv.c.stage == ModelStage.PRODUCTION.value,
                                         mv.c.id != vid)
            )
        ).all()
        for (old_id,) in current:
            old = await self.registry._load(ch.conn, old_id)
            await self.registry._set_stage(ch, old, ModelStage.ARCHIVED, actor,
                                           f"replaced in PRODUCTION by {version} ({reason})", "")
            archived.append(old.version)
        if target.stage is not ModelStage.PRODUCTION:
            await self.registry._set_stage(ch, target, ModelStage.PRODUCTION, actor, reason, "")
        return {"registry_stage": "production", "archived": archived,
                "previous_stage": target.stage.value}

    async def previous_production(self, conn: AsyncConnection, name: str, version: str) -> str:
        h = model_history
        row = (
            await conn.execute(
                sa.select(h.c.version)
                .where(h.c.name == name, h.c.kind == "stage", h.c.to_value == "production",
                       h.c.version != version)
                .order_by(h.c.id.desc())
                .limit(1)
            )
        ).first()
        return row.version if row else ""


class KnownStageGate:
    """A registry in another store (embedded ``registry=``): its answer, read beforehand."""

    def __init__(self, stage: str, previous: str = "") -> None:
        self._stage = stage
        self._previous = previous

    async def stage(self, conn: AsyncConnection, name: str, version: str) -> str:
        return self._stage

    async def promote(self, ch: Change, name: str, version: str, actor: str, reason: str) -> dict[str, Any]:
        return {"registry_stage": "not changed (registry in another store)"}

    async def previous_production(self, conn: AsyncConnection, name: str, version: str) -> str:
        return self._previous


# ----------------------------------------------------------------------------- helpers


def subtract(total: VariantStats, before: VariantStats) -> VariantStats:
    """``total - before`` for running totals (min/max become unknown)."""
    counts = {
        b: c - before.latency.counts.get(b, 0)
        for b, c in total.latency.counts.items()
        if c - before.latency.counts.get(b, 0) > 0
    }
    lat = LatencyHistogram(
        counts,
        total.latency.count - before.latency.count,
        total.latency.sum - before.latency.sum,
        total.latency.sum_squares - before.latency.sum_squares,
        None,
        None,
    )
    custom = {
        k: Moments(m.n - before.custom.get(k, Moments()).n, m.sum - before.custom.get(k, Moments()).sum,
                   m.sum_squares - before.custom.get(k, Moments()).sum_squares)
        for k, m in total.custom.items()
    }
    codes = {k: c - before.status_codes.get(k, 0) for k, c in total.status_codes.items()}
    return VariantStats(
        total.count - before.count,
        total.errors - before.errors,
        total.successes - before.successes,
        lat,
        {k: m for k, m in custom.items() if m.n > 0},
        {k: c for k, c in codes.items() if c > 0},
    )


def parse_ref(value: object, field: str) -> tuple[str, str]:
    """``"name:version"`` (or ``"name"``) -> (name, version)."""
    if not isinstance(value, str) or not value:
        raise InvalidArgument(f"{field} must be 'name:version'", field=field)
    name, _, version = value.partition(":")
    v.name(name, field)
    if version:
        v.name(version, field)
    return name, version


def _nonneg(value: object, field: str) -> float:
    x = v.finite(value, field)
    if x < 0:
        raise InvalidArgument(f"{field} must not be negative, got {value!r}", field=field)
    return x


def _count(value: object, field: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) and not (
        isinstance(value, float) and value.is_integer()
    ):
        raise InvalidArgument(f"{field} must be an integer, got {value!r}", field=field)
    n = int(value)  # type: ignore[arg-type]
    if n < minimum:
        raise InvalidArgument(f"{field} must be >= {minimum}, got {value!r}", field=field)
    return n


def validate_metrics(m: PerformanceMetrics, field: str) -> PerformanceMetrics:
    if not isinstance(m, PerformanceMetrics):
        raise InvalidArgument(f"{field} must be PerformanceMetrics", field=field)
    out = PerformanceMetrics(request_count=_count(m.request_count, f"{field}.request_count"))
    for name in ("latency_p50", "latency_p95", "latency_p99", "latency_mean", "throughput"):
        value = getattr(m, name)
        if value is not None:
            setattr(out, name, _nonneg(value, f"{field}.{name}"))
    if m.error_rate is not None:
        out.error_rate = v.fraction(m.error_rate, f"{field}.error_rate")
    return out


def validate_rollback(c: RollbackConfig) -> RollbackConfig:
    f = "rollback_config"
    if not isinstance(c, RollbackConfig):
        raise InvalidArgument(f"{f} must be RollbackConfig", field=f)
    out = RollbackConfig(
        error_rate_threshold=v.fraction(c.error_rate_threshold, f"{f}.error_rate_threshold"),
        latency_threshold_multiplier=_nonneg(c.latency_threshold_multiplier,
                                             f"{f}.latency_threshold_multiplier"),
        min_requests_before_check=_count(c.min_requests_before_check, f"{f}.min_requests_before_check"),
        max_failed_checks=_count(c.max_failed_checks, f"{f}.max_failed_checks", 1),
        statistical_judge=bool(c.statistical_judge),
        alpha=v.fraction(c.alpha, f"{f}.alpha"),
        latency_effect_threshold=v.fraction(c.latency_effect_threshold, f"{f}.latency_effect_threshold"),
        min_agreement_rate=(None if c.min_agreement_rate is None
                            else v.fraction(c.min_agreement_rate, f"{f}.min_agreement_rate")),
        auto_rollback=bool(c.auto_rollback),
    )
    if out.latency_threshold_multiplier == 0:
        raise InvalidArgument(f"{f}.latency_threshold_multiplier must be positive", field=f"{f}.latency_threshold_multiplier")
    if not 0 < out.alpha < 1:
        raise InvalidArgument(f"{f}.alpha must be in (0, 1)", field=f"{f}.alpha")
    return out


def plan_for(strategy: DeploymentStrategy, steps: Sequence[float] | None, step_duration_seconds: float,
             analysis_interval_seconds: float, preview: PreviewMode | str,
             mirror_percentage: float, switch_back_seconds: float | None = None) -> RolloutPlan:
    dur = _nonneg(step_duration_seconds, "step_duration_seconds")
    if dur > MAX_DURATION:
        raise InvalidArgument("step_duration_seconds must be at most 30 days", field="step_duration_seconds")
    interval = v.finite(analysis_interval_seconds, "analysis_interval_seconds")
    if not MIN_INTERVAL <= interval <= MAX_DURATION:
        raise InvalidArgument(f"analysis_interval_seconds must be in [{MIN_INTERVAL}, 30 days]",
                              field="analysis_interval_seconds")
    mirror = v.percentage(mirror_percentage, "mirror_percentage")
    try:
        mode = PreviewMode(preview)
    except ValueError:
        raise InvalidArgument(f"preview must be one of {[m.value for m in PreviewMode]}", field="preview") from None
    fixed = {DeploymentStrategy.DIRECT: [100.0], DeploymentStrategy.BLUE_GREEN: [0.0, 100.0],
             DeploymentStrategy.SHADOW: [0.0]}
    if strategy is DeploymentStrategy.CANARY:
        raw = list(DEFAULT_CANARY_STEPS) if steps is None or len(steps) == 0 else list(steps)
        if len(raw) > MAX_STEPS:
            raise InvalidArgument(f"at most {MAX_STEPS} steps", field="steps")
        values = [v.percentage(s, "steps") for s in raw]
        for a, b in zip(values, values[1:], strict=False):
            if b <= a:
                raise InvalidArgument(f"steps must be strictly increasing, got {raw}", field="steps")
        if values[-1] != 100.0:
            values.append(100.0)  # a canary ends with all traffic on the new version
    else:
        if steps:
            given = [v.percentage(s, "steps") for s in steps]
            if given != fixed[strategy]:
                raise InvalidArgument(
                    f"{strategy.value} deployments have the fixed steps {fixed[strategy]}", field="steps"
                )
        values = fixed[strategy]
    switch_back = None
    if switch_back_seconds is not None:
        if strategy is not DeploymentStrategy.BLUE_GREEN:
            raise InvalidArgument("switch_back_seconds applies to blue_green deployments only",
                                  field="switch_back_seconds")
        switch_back = _nonneg(switch_back_seconds, "switch_back_seconds")
        if switch_back > MAX_DURATION:
            raise InvalidArgument("switch_back_seconds must be at most 30 days", field="switch_back_seconds")
    return RolloutPlan(values, dur, interval, mode, mirror, switch_back)


@dataclass(slots=True)
class CreateSpec:
    model_name: str
    model_version: str
    strategy: DeploymentStrategy = DeploymentStrategy.CANARY
    created_by: str = ""
    baseline_metrics: PerformanceMetrics = field(default_factory=PerformanceMetrics)
    rollback_config: RollbackConfig = field(default_factory=RollbackConfig)
    steps: list[float] | None = None
    step_duration_seconds: float = 300.0
    analysis_interval_seconds: float = 60.0
    preview: PreviewMode | str = PreviewMode.MIRROR
    mirror_percentage: float = 100.0
    switch_back_seconds: float | None = None  # blue-green: blue kept ready this long after the switch
    stable_version: str | None = None  # None: the model's current version
    upstream: str = ""  # HOST:PORT serving the new version ("" = the sidecar's upstream)
    override_reason: str = ""  # deploy without the registry gate (audited)


class _Stale(Exception):
    """The deployment changed since it was judged; the decision is dropped."""


@dataclass(slots=True)
class _Plan:
    """What one check decided (computed on a read, applied with compare-and-set)."""

    deployment: Deployment
    check: HealthCheck
    action: str  # hold | wait | failed_check | rollback | pause | advance | complete


# ----------------------------------------------------------------------------- the service


class DeploymentService:
    """Deployments, shadow deployments and the rollout controller (a RouteProvider)."""

    def __init__(self, db: Database, *, clock: Clock | None = None, registry: Any = None,
                 gate_policy: GatePolicy | None = None,
                 on_routes_changed: Callable[[], None] | None = None) -> None:
        if gate_policy is None:
            # NEURAL_MLOPS_DEPLOY_GATE=staging lets STAGING versions serve production traffic.
            raw = os.environ.get("NEURAL_MLOPS_DEPLOY_GATE", GatePolicy.PRODUCTION.value).strip().lower()
            try:
                gate_policy = GatePolicy(raw)
            except ValueError:
                raise InvalidArgument(f"NEURAL_MLOPS_DEPLOY_GATE must be 'production' or 'staging', got {raw!r}",
                                      field="NEURAL_MLOPS_DEPLOY_GATE") from None
        self.db = db
        self.clock = clock or SystemClock()
        self.local_gate: RegistryGate | None = LocalRegistryGate(registry) if registry is not None else None
        self.gate_policy = gate_policy
        self.on_routes_changed = on_routes_changed or (lambda: None)
        self._changed: asyncio.Event | None = None
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self.cycles = 0
        self.last_cycle_seconds = 0.0

    # ------------------------------------------------------------------ notifications

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()
        self._changed = asyncio.Event()
        if self._wake is not None:
            self._wake.set()

    def _committed(self, ch: Change, routes: bool = True) -> None:
        ch.on_commit(self._notify)
        if routes:
            ch.on_commit(self.on_routes_changed)

    def _now_us(self) -> int:
        return to_us(self.clock.now())

    # ------------------------------------------------------------------ create

    async def create_deployment(self, spec: CreateSpec, *, gate: RegistryGate | None = None,
                                use_local_gate: bool = True) -> Deployment:
        """Start a rollout. The registry gate applies when ``gate`` (or the local one, with
        ``use_local_gate``) is available and the strategy serves traffic."""
        name = v.name(spec.model_name, "model_name")
        version = v.name(spec.model_version, "model_version")
        actor = v.actor(spec.created_by, "created_by")
        try:
            strategy = DeploymentStrategy(spec.strategy)
        except ValueError:
            raise InvalidArgument(f"strategy must be one of {[s.value for s in DeploymentStrategy]}",
                                  field="strategy") from None
        baseline = validate_metrics(spec.baseline_metrics, "baseline_metrics")
        rollback = validate_rollback(spec.rollback_config)
        plan = plan_for(strategy, spec.steps, spec.step_duration_seconds,
                        spec.analysis_interval_seconds, spec.preview, spec.mirror_percentage,
                        spec.switch_back_seconds)
        stable_given = spec.stable_version
        if stable_given:
            v.name(stable_given, "stable_version")
            if stable_given == version:
                raise InvalidArgument("stable_version must differ from model_version", field="stable_version")
        upstream = v.text(spec.upstream, "upstream", limit=300)
        override = v.text(spec.override_reason, "override_reason", limit=4096).strip()
        gate = gate if gate is not None else (self.local_gate if use_local_gate else None)

        now = self._now_us()
        deployment_id = f"dep-{uuid.uuid4().hex[:16]}"
        async with self.db.change() as ch:
            conn = ch.conn
            gate_info: dict[str, Any] = {"checked": False, "policy": self.gate_policy.value}
            if gate is not None:
                stage = await gate.stage(conn, name, version)  # NotFound for unknown versions
                if stable_given:
                    await gate.stage(conn, name, stable_given)
                allowed = {"production"} | ({"staging"} if self.gate_policy is GatePolicy.STAGING else set())
                gate_info = {"checked": True, "local": isinstance(gate, LocalRegistryGate),
                             "policy": self.gate_policy.value, "stage": stage,
                             "passed": stage in allowed or strategy is DeploymentStrategy.SHADOW}
                if not gate_info["passed"]:
                    if not override:
                        raise FailedPrecondition(
                            f"{name}:{version} is in stage {stage.upper()}; a {strategy.value} deployment "
                            f"needs it approved into {' or '.join(sorted(s.upper() for s in allowed))} "
                            "(or an override_reason, which is audited)"
                        )
                    gate_info["override_reason"] = override
            active = (
                await conn.execute(
                    sa.select(deployments.c.deployment_id).where(deployments.c.active_model == name)
                )
            ).first()
            if active is not None:
                raise FailedPrecondition(
                    f"model {name!r} already has an active deployment {active.deployment_id}; "
                    "promote, abort or roll it back first"
                )
            stable, stable_upstream = await self._stable(conn, name, version, stable_given, gate)
            first = plan.steps[0]
            state = {"snapshot": await self._snapshot(conn, deployment_id), "rollback_reasons": [],
                     "status_reason": "", "current_metrics": None, "metrics_us": None}
            config = {"baseline": baseline.to_dict(), "rollback_config": rollback.to_dict(),
                      "plan": plan.to_dict(), "gate": gate_info, "upstream": upstream,
                      "stable_upstream": stable_upstream}
            await conn.execute(
                deployments.insert().values(
                    deployment_id=deployment_id, model_name=name, model_version=version,
                    stable_version=stable, strategy=strategy.value,
                    status=DeploymentStatus.IN_PROGRESS.value, active_model=name, created_by=actor,
                    created_us=now, updated_us=now, completed_us=None, step_index=0,
                    traffic_percentage=first, step_started_us=now,
                    next_check_us=now + int(plan.analysis_interval_seconds * 1e6), failed_checks=0,
                    revision=1, config=_dump(config), state=_dump(state), last_check="",
                )
            )
            details = {"model": name, "version": version, "stable_version": stable,
                       "strategy": strategy.value, "plan": plan.to_dict(), "baseline": baseline.to_dict(),
                       "rollback_config": rollback.to_dict(), "gate": gate_info}
            await self._event(conn, deployment_id, now, "created", actor, None, DeploymentStatus.IN_PROGRESS,
                              0, first, details)
            ch.record(EventType.DEPLOYMENT_CREATED, resource_type="deployment", resource_id=deployment_id,
                      action="create", actor=actor, details=details)
            if gate_info.get("override_reason"):
                ch.record(EventType.DEPLOYMENT_CREATED, resource_type="deployment", resource_id=deployment_id,
                          action="registry_gate_override", actor=actor, severity=EventSeverity.WARNING,
                          details={"model": f"{name}:{version}", "stage": gate_info["stage"],
                                   "policy": self.gate_policy.value, "reason": override})
            if strategy is not DeploymentStrategy.SHADOW:
                ch.record(EventType.MODEL_DEPLOYED, resource_type="model", resource_id=f"{name}:{version}",
                          action="deploy", actor=actor,
                          details={"deployment_id": deployment_id, "strategy": strategy.value,
                                   "traffic_percentage": first})
            self._committed(ch)
            result = await self._load(conn, deployment_id)
        log.info("deployment created", deployment_id=deployment_id, model=name, version=version,
                 strategy=strategy.value, stable_version=stable)
        return result

    async def _stable(self, conn: AsyncConnection, name: str, version: str, given: str | None,
                      gate: RegistryGate | None) -> tuple[str, str]:
        """The stable version and the upstream that serves it ("" = the sidecar's own).

        The version is, in order: ``given``, the version of the model's last completed
        deployment, the version that was PRODUCTION before ``version`` (registry history),
        else "" (the caller's). When it is the last completed deployment's version, that
        deployment's upstream serves it, as its pinned route did until now."""
        d = deployments
        row = (
            await conn.execute(
                sa.select(d.c.model_version, d.c.config)
                .where(d.c.model_name == name, d.c.status == DeploymentStatus.COMPLETED.value,
                       d.c.strategy != DeploymentStrategy.SHADOW.value)
                .order_by(d.c.completed_us.desc())
                .limit(1)
            )
        ).first()
        pinned = (str(row.model_version), json.loads(row.config).get("upstream", "")) if row else None
        stable = given or ""
        if not stable and pinned is not None and pinned[0] != version:
            stable = pinned[0]
        if not stable and gate is not None:
            stable = await gate.previous_production(conn, name, version)
        return stable, pinned[1] if pinned is not None and pinned[0] == stable else ""

    async def _snapshot(self, conn: AsyncConnection, route_id: str) -> dict[str, Any]:
        return {k: s.to_dict() for k, s in (await traffic.totals(conn, route_id)).items()}

    # ------------------------------------------------------------------ reads

    async def get_deployment(self, deployment_id: str) -> Deployment:
        async with self.db.read() as conn:
            return await self._load(conn, deployment_id)

    async def list_deployments(self, model_name: str = "", active_only: bool = False,
                               limit: int = 100) -> list[Deployment]:
        d = deployments
        q = sa.select(d.c.deployment_id).order_by(d.c.created_us.desc()).limit(max(1, min(limit, 1000)))
        if model_name:
            q = q.where(d.c.model_name == v.name(model_name, "model_name"))
        if active_only:
            q = q.where(d.c.active_model.is_not(None))
        async with self.db.read() as conn:
            ids = [r.deployment_id for r in await conn.execute(q)]
            return [await self._load(conn, i) for i in ids]

    async def events(self, deployment_id: str, after_seq: int = 0) -> list[DeploymentEvent]:
        async with self.db.read() as conn:
            await self._row(conn, deployment_id)
            return await self._events(conn, deployment_id, after_seq)

    async def _events(self, conn: AsyncConnection, deployment_id: str, after_seq: int) -> list[DeploymentEvent]:
        e = deployment_events
        rows = await conn.execute(
            sa.select(e).where(e.c.deployment_id == deployment_id, e.c.id > after_seq).order_by(e.c.id)
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

    async def watch(self, deployment_id: str, poll_seconds: float = 1.0
                    ) -> AsyncIterator[tuple[Deployment, list[DeploymentEvent]]]:
        """The deployment and its events now, then again after every change, until it ends."""
        seq = 0
        revision = -1
        while True:
            if self._changed is None:
                self._changed = asyncio.Event()
            changed = self._changed
            async with self.db.read() as conn:
                dep = await self._load(conn, deployment_id)
                new = await self._events(conn, deployment_id, seq)
            if new or dep.revision != revision:
                seq = new[-1].seq if new else seq
                revision = dep.revision
                yield dep, new
            if not dep.active:
                return
            try:
                await asyncio.wait_for(changed.wait(), poll_seconds)
            except TimeoutError:
                pass

    async def _row(self, conn: AsyncConnection, deployment_id: str) -> Any:
        if not isinstance(deployment_id, str) or not deployment_id or len(deployment_id) > 64:
            raise InvalidArgument("deployment_id must be a non-empty string", field="deployment_id")
        row = (await conn.execute(sa.select(deployments).where(deployments.c.deployment_id == deployment_id))).first()
        if row is None:
            raise NotFound(f"deployment {deployment_id!r} does not exist")
        return row

    async def _load(self, conn: AsyncConnection, deployment_id: str) -> Deployment:
        return _from_row(await self._row(conn, deployment_id))

    # ------------------------------------------------------------------ manual metrics and checks

    async def update_metrics(self, deployment_id: str, metrics: PerformanceMetrics) -> Deployment:
        """Store the new version's current metrics (the seed's manual form)."""
        m = validate_metrics(metrics, "metrics")
        now = self._now_us()
        async with self.db.change(audited=False) as ch:
            row = await self._row(ch.conn, deployment_id)
            state = json.loads(row.state)
            state["current_metrics"] = m.to_dict()
            state["metrics_us"] = now
            # A new revision: a controller decision judged on the old one is refused
            # (compare-and-set) and decided again, instead of overwriting these metrics.
            await ch.conn.execute(
                deployments.update().where(deployments.c.deployment_id == deployment_id)
                .values(state=_dump(state), updated_us=now, revision=deployments.c.revision + 1)
            )
            self._committed(ch, routes=False)
            return await self._load(ch.conn, deployment_id)

    async def check_deployment_health(self, deployment_id: str, request_count: int | None = None,
                                      actor: str = "") -> tuple[bool, list[str], HealthCheck | None]:
        """Judge the deployment now and roll it back if it fails (the seed's form).

        With ``request_count`` (or after ``update_metrics``) the manually reported metrics
        are judged, else the live metrics of the current step. Returns
        ``(needs_rollback, reasons, check)``; a deployment already rolled back returns
        ``(True, its rollback reasons, None)``."""
        if request_count is not None:
            request_count = _count(request_count, "request_count")
        actor = actor or "anonymous"
        async with self.db.read() as conn:
            d = await self._load(conn, deployment_id)
            if d.status is DeploymentStatus.ROLLED_BACK:
                return True, list(d.rollback_reasons), d.last_check
            if not d.active:
                return False, [], d.last_check
            check = await self._measure_and_judge(conn, d, request_count)
        plan = self._decide(d, check, advance=False)
        applied = await self._apply(plan, actor)
        if applied is None:  # the deployment changed meanwhile: answer from its new state
            d = await self.get_deployment(deployment_id)
            return d.status is DeploymentStatus.ROLLED_BACK, list(d.rollback_reasons), d.last_check
        needs = applied.status is DeploymentStatus.ROLLED_BACK or check.verdict is Verdict.FAIL
        return needs, list(check.reasons) if check.verdict is Verdict.FAIL else [], check

    async def _measure_and_judge(self, conn: AsyncConnection, d: Deployment, request_count: int | None,
                                 totals: dict[str, VariantStats] | None = None) -> HealthCheck:
        now = self._now_us()
        seconds = max((now - to_us(d.step_started_at)) / 1e6, 0.0)
        snapshot = {k: VariantStats.from_dict(s) for k, s in (_state(d).get("snapshot") or {}).items()}
        if totals is None:
            totals = await traffic.totals(conn, d.deployment_id)
        window = {k: subtract(s, snapshot.get(k, VariantStats())) for k, s in totals.items()}
        stable_stats = window.get(d.stable_variant)
        mirrored = d.plan.steps[d.step_index] == 0 and (
            d.strategy is DeploymentStrategy.SHADOW or d.plan.preview is PreviewMode.MIRROR
        )
        agreement = None
        if mirrored:
            ss = await traffic.shadow_totals(conn, d.deployment_id)
            new_stats: VariantStats | None = shadow_as_variant(ss)
            agreement = (ss.agreements, ss.compared)
        else:
            new_stats = window.get(d.new_variant)
        source = "live"
        manual = _state(d).get("current_metrics")
        use_manual = request_count is not None or (
            manual is not None and (new_stats is None or new_stats.count == 0)
        )
        if use_manual:
            source = "manual"
            new = PerformanceMetrics.from_dict(manual) if manual else PerformanceMetrics()
            if request_count is not None:
                new.request_count = request_count
            j: Judgement = judge(d.rollback_config, d.baseline_metrics, new)
        else:
            new = metrics_of(new_stats or VariantStats(), seconds)
            j = judge(d.rollback_config, d.baseline_metrics, new, new_stats=new_stats,
                      stable_stats=stable_stats, agreement=agreement)
            if new_stats is None or new_stats.count == 0:
                source = "none"
        if agreement is not None:
            j.tests["agreement"] = {"agreements": agreement[0], "compared": agreement[1]}
        return HealthCheck(at=from_us(now), verdict=j.verdict, reasons=j.reasons, source=source,
                           step_index=d.step_index, traffic_percentage=d.traffic_percentage,
                           new=j.new, stable=j.stable, tests=j.tests)

    def _decide(self, d: Deployment, check: HealthCheck, *, advance: bool) -> _Plan:
        cfg = d.rollback_config
        if check.verdict is Verdict.FAIL:
            if d.failed_checks + 1 >= cfg.max_failed_checks:
                return _Plan(d, check, "rollback" if cfg.auto_rollback else "pause")
            return _Plan(d, check, "failed_check")
        if check.verdict is Verdict.INCONCLUSIVE:
            return _Plan(d, check, "pause" if d.status is DeploymentStatus.IN_PROGRESS else "hold")
        if check.verdict is Verdict.WAIT:
            return _Plan(d, check, "wait")
        if advance and d.status is DeploymentStatus.IN_PROGRESS:
            held = (to_us(check.at) - to_us(d.step_started_at)) / 1e6
            if held >= d.plan.hold_seconds(d.step_index):
                last = d.step_index + 1 >= len(d.plan.steps)
                return _Plan(d, check, "complete" if last else "advance")
        return _Plan(d, check, "hold")

    # ------------------------------------------------------------------ applying decisions

    async def _apply(self, plan: _Plan, actor: str) -> Deployment | None:
        """Apply one decision if the deployment is still at the revision it was judged on."""
        d, check = plan.deployment, plan.check
        now = to_us(check.at)
        interval = int(d.plan.analysis_interval_seconds * 1e6)
        step_end = to_us(d.step_started_at) + int(d.plan.hold_seconds(d.step_index) * 1e6)
        next_check = now + interval if step_end <= now else min(now + interval, step_end)
        state = _state(d)
        last_check = _dump(_check_to_dict(check))
        if plan.action in ("hold", "wait"):
            values: dict[str, Any] = {"last_check": last_check, "next_check_us": next_check}
            if check.verdict is Verdict.PASS:
                values["failed_checks"] = 0
            async with self.db.change(audited=False) as ch:
                res = await ch.conn.execute(
                    deployments.update()
                    .where(deployments.c.deployment_id == d.deployment_id, deployments.c.revision == d.revision)
                    .values(**values)
                )
                if not res.rowcount:
                    return None
                self._committed(ch, routes=False)
                return await self._load(ch.conn, d.deployment_id)
        try:
            async with self.db.change() as ch:
                await self._decision(ch, plan, actor, state, now, next_check)
                await ch.conn.execute(  # same transaction, after the compare-and-set succeeded
                    deployments.update().where(deployments.c.deployment_id == d.deployment_id)
                    .values(last_check=last_check)
                )
                return await self._load(ch.conn, d.deployment_id)
        except _Stale:
            return None

    async def _decision(self, ch: Change, plan: _Plan, actor: str, state: dict[str, Any], now: int,
                        next_check: int) -> None:
        d, check = plan.deployment, plan.check
        if plan.action == "failed_check":
            ok = await self._cas(ch, d, state=_dump(state), next_check_us=next_check,
                                 failed_checks=d.failed_checks + 1)
            if not ok:
                raise _Stale
            details = _decision_details(check, d)
            details["failed_checks"] = d.failed_checks + 1
            await self._event(ch.conn, d.deployment_id, now, "failed_check", actor, d.status, d.status,
                              d.step_index, d.traffic_percentage, details)
            ch.record(EventType.CUSTOM, resource_type="deployment", resource_id=d.deployment_id,
                      action="failed_check", actor=actor, severity=EventSeverity.WARNING, details=details)
            self._committed(ch, routes=False)
        elif plan.action == "rollback":
            state["rollback_reasons"] = list(check.reasons)
            state["status_reason"] = "; ".join(check.reasons)
            if not await self._transition(ch, d, DeploymentStatus.ROLLED_BACK, "rolled_back", actor,
                                          state, now, _decision_details(check, d),
                                          EventType.DEPLOYMENT_ROLLED_BACK, EventSeverity.WARNING):
                raise _Stale
        elif plan.action == "pause":
            state["status_reason"] = f"{check.verdict.value}: " + "; ".join(check.reasons)
            if not await self._transition(ch, d, DeploymentStatus.PAUSED, "paused", actor, state, now,
                                          _decision_details(check, d), EventType.DEPLOYMENT_PAUSED,
                                          EventSeverity.WARNING, next_check_us=next_check):
                raise _Stale
        elif plan.action == "advance":
            if not await self._advance(ch, d, d.step_index + 1, actor, state, now,
                                       _decision_details(check, d)):
                raise _Stale
        elif plan.action == "complete":
            if not await self._complete(ch, d, actor, state, now, _decision_details(check, d)):
                raise _Stale

    async def _cas(self, ch: Change, d: Deployment, **values: Any) -> bool:
        res = await ch.conn.execute(
            deployments.update()
            .where(deployments.c.deployment_id == d.deployment_id, deployments.c.revision == d.revision)
            .values(revision=d.revision + 1, updated_us=self._now_us(), **values)
        )
        return bool(res.rowcount)

    async def _transition(self, ch: Change, d: Deployment, to: DeploymentStatus, action: str, actor: str,
                          state: dict[str, Any], now: int, details: dict[str, Any], event: EventType,
                          severity: EventSeverity = EventSeverity.INFO, **extra: Any) -> bool:
        values: dict[str, Any] = {"status": to.value, "state": _dump(state), **extra}
        if not to.active:
            values["active_model"] = None
            values["completed_us"] = now
        if to is DeploymentStatus.IN_PROGRESS:
            values["failed_checks"] = 0
        if not await self._cas(ch, d, **values):
            return False
        if to is DeploymentStatus.ROLLED_BACK:
            restored = await self._restore_registry(ch, d, actor)
            if restored is not None:
                details = {**details, "registry": restored}
        # model_name/version let audit reports tie the change to the version's approval.
        details = {**details, "model_name": d.model_name, "version": d.model_version,
                   "from_status": d.status.value, "to_status": to.value}
        await self._event(ch.conn, d.deployment_id, now, action, actor, d.status, to, d.step_index,
                          d.traffic_percentage, details)
        ch.record(event, resource_type="deployment", resource_id=d.deployment_id, action=action,
                  actor=actor, severity=severity, details=details)
        self._committed(ch)
        log.info("deployment " + action, deployment_id=d.deployment_id, model=d.model_name,
                 version=d.model_version, reasons=details.get("reasons"))
        return True

    async def _restore_registry(self, ch: Change, d: Deployment, actor: str) -> dict[str, Any] | None:
        """After a rollback the registry says what serves again: the rolled-back version
        leaves PRODUCTION (archived) and the stable version it replaced returns to it, in
        the rollback's transaction. Only when the registry is this store's, the new version
        had reached PRODUCTION (an override of an unapproved version changed no stage, so
        there is nothing to undo) and the stable version is the one it replaced there."""
        if d.strategy is DeploymentStrategy.SHADOW or not d.gate.get("local") or not d.stable_version:
            return None
        gate = self.local_gate
        try:
            if await gate.stage(ch.conn, d.model_name, d.model_version) != "production":
                return None
            previous = await gate.previous_production(ch.conn, d.model_name, d.model_version)
            if previous != d.stable_version:  # never approved into PRODUCTION: not ours to put there
                return {"registry_stage": "not changed",
                        "why": f"stable version {d.stable_version} is not the PRODUCTION version "
                               f"{d.model_version} replaced ({previous or 'none'})"}
            return await gate.promote(ch, d.model_name, d.stable_version, actor,
                                      f"deployment {d.deployment_id} of {d.model_version} rolled back")
        except NotFound as exc:  # the stable version was deleted meanwhile: say so, roll back anyway
            return {"error": str(exc)}

    async def _advance(self, ch: Change, d: Deployment, index: int, actor: str, state: dict[str, Any],
                       now: int, details: dict[str, Any]) -> bool:
        pct = d.plan.steps[index]
        state["snapshot"] = await self._snapshot(ch.conn, d.deployment_id)
        state["current_metrics"] = None
        state["status_reason"] = ""
        if not await self._cas(ch, d, step_index=index, traffic_percentage=pct, step_started_us=now,
                               next_check_us=now + int(d.plan.analysis_interval_seconds * 1e6),
                               failed_checks=0, state=_dump(state)):
            return False
        details = {**details, "from_step": d.step_index, "to_step": index,
                   "from_percentage": d.traffic_percentage, "to_percentage": pct}
        await self._event(ch.conn, d.deployment_id, now, "advanced", actor, d.status, d.status, index, pct, details)
        ch.record(EventType.DEPLOYMENT_ADVANCED, resource_type="deployment", resource_id=d.deployment_id,
                  action="advance", actor=actor, details=details)
        self._committed(ch)
        log.info("deployment advanced", deployment_id=d.deployment_id, model=d.model_name,
                 to_percentage=pct)
        return True

    async def _complete(self, ch: Change, d: Deployment, actor: str, state: dict[str, Any], now: int,
                        details: dict[str, Any]) -> bool:
        final = 0.0 if d.strategy is DeploymentStrategy.SHADOW else 100.0
        state["status_reason"] = "promoted" if final else "shadow evaluation finished"
        details = {**details, "from_percentage": d.traffic_percentage, "to_percentage": final}
        if d.strategy is not DeploymentStrategy.SHADOW and d.gate.get("checked"):
            gate = self.local_gate if d.gate.get("local") else None
            if gate is not None:
                try:
                    details["registry"] = await gate.promote(ch, d.model_name, d.model_version, actor,
                                                             f"deployment {d.deployment_id} promoted")
                except NotFound as exc:  # deleted from the registry meanwhile: serve it anyway, say so
                    details["registry"] = {"error": str(exc)}
        return await self._transition(ch, d, DeploymentStatus.COMPLETED, "promoted", actor, state, now,
                                      details, EventType.DEPLOYMENT_PROMOTED,
                                      traffic_percentage=final, step_index=len(d.plan.steps) - 1)

    async def _event(self, conn: AsyncConnection, deployment_id: str, at: int, action: str, actor: str,
                     from_status: DeploymentStatus | None, to_status: DeploymentStatus, step: int, pct: float,
                     details: dict[str, Any]) -> None:
        await conn.execute(
            deployment_events.insert().values(
                deployment_id=deployment_id, at_us=at, action=action, actor=actor,
                from_status=from_status.value if from_status else "", to_status=to_status.value,
                step_index=step, traffic_percentage=pct, details=_dump(details),
            )
        )

    # ------------------------------------------------------------------ operator actions

    async def _operate(self, deployment_id: str, actor: str, reason: str, action: str) -> Deployment:
        actor = v.actor(actor, "actor")
        reason = v.text(reason, "reason", limit=4096)
        now = self._now_us()
        async with self.db.change() as ch:
            d = await self._load(ch.conn, deployment_id)
            state = _state(d)
            details: dict[str, Any] = {"reason": reason, "manual": True}
            if not d.active:
                raise FailedPrecondition(
                    f"deployment {deployment_id} is {d.status.value.upper()}; only an active deployment can be "
                    f"{'promoted' if action.startswith('promote') else action + 'd'}"
                )
            if action == "pause":
                if d.status is DeploymentStatus.PAUSED:
                    raise FailedPrecondition(f"deployment {deployment_id} is already PAUSED")
                state["status_reason"] = f"paused by {actor}" + (f": {reason}" if reason else "")
                await self._transition(ch, d, DeploymentStatus.PAUSED, "paused", actor, state, now, details,
                                       EventType.DEPLOYMENT_PAUSED)
            elif action == "resume":
                if d.status is not DeploymentStatus.PAUSED:
                    raise FailedPrecondition(f"deployment {deployment_id} is not PAUSED")
                state["status_reason"] = ""
                # The hold of the current step starts again: a person looked at it.
                await self._transition(ch, d, DeploymentStatus.IN_PROGRESS, "resumed", actor, state, now,
                                       details, EventType.DEPLOYMENT_RESUMED, step_started_us=now,
                                       next_check_us=now + int(d.plan.analysis_interval_seconds * 1e6))
            elif action == "abort":
                state["status_reason"] = f"aborted by {actor}" + (f": {reason}" if reason else "")
                await self._transition(ch, d, DeploymentStatus.ABORTED, "aborted", actor, state, now, details,
                                       EventType.DEPLOYMENT_ABORTED, EventSeverity.WARNING)
            elif action == "rollback":
                reasons = [f"manual rollback by {actor}" + (f": {reason}" if reason else "")]
                state["rollback_reasons"] = reasons
                state["status_reason"] = reasons[0]
                await self._transition(ch, d, DeploymentStatus.ROLLED_BACK, "rolled_back", actor, state, now,
                                       {**details, "reasons": reasons}, EventType.DEPLOYMENT_ROLLED_BACK,
                                       EventSeverity.WARNING)
            elif action == "promote":  # one step now
                if d.step_index + 1 >= len(d.plan.steps):
                    await self._complete(ch, d, actor, state, now, details)
                else:
                    await self._advance(ch, d, d.step_index + 1, actor, state, now, details)
            elif action == "promote_full":
                await self._complete(ch, d, actor, state, now, {**details, "full": True})
            return await self._load(ch.conn, deployment_id)

    async def promote(self, deployment_id: str, actor: str, reason: str = "", full: bool = False) -> Deployment:
        """Advance one step now (``full``: complete at once: 100 %, registry PRODUCTION)."""
        return await self._operate(deployment_id, actor, reason, "promote_full" if full else "promote")

    async def pause(self, deployment_id: str, actor: str, reason: str = "") -> Deployment:
        return await self._operate(deployment_id, actor, reason, "pause")

    async def resume(self, deployment_id: str, actor: str, reason: str = "") -> Deployment:
        return await self._operate(deployment_id, actor, reason, "resume")

    async def abort(self, deployment_id: str, actor: str, reason: str = "") -> Deployment:
        return await self._operate(deployment_id, actor, reason, "abort")

    async def rollback(self, deployment_id: str, actor: str, reason: str = "") -> Deployment:
        return await self._operate(deployment_id, actor, reason, "rollback")

    # ------------------------------------------------------------------ the controller

    async def reconcile(self) -> dict[str, int]:
        """One controller cycle: check every active deployment whose check is due, then
        advance, hold, pause, complete or roll back. Returns counts per action."""
        started = self.clock.monotonic()
        now = self._now_us()
        d = deployments
        plans: list[_Plan] = []
        async with self.db.read() as conn:
            rows = (
                await conn.execute(
                    sa.select(d).where(d.c.active_model.is_not(None), d.c.next_check_us <= now)
                )
            ).all()
            route_totals = await _running_totals(conn, [row.deployment_id for row in rows])
            for row in rows:
                dep = _from_row(row)
                try:
                    check = await self._measure_and_judge(conn, dep, None,
                                                          route_totals.get(dep.deployment_id, {}))
                except Exception:  # noqa: BLE001 - one broken deployment must not stop the others
                    log.exception("health check failed", deployment_id=dep.deployment_id)
                    continue
                plans.append(self._decide(dep, check, advance=True))
        counts: dict[str, int] = {}
        quiet = [p for p in plans if p.action in ("hold", "wait")]
        for p in plans:
            if p.action in ("hold", "wait"):
                continue
            try:
                if await self._apply(p, CONTROLLER) is not None:
                    counts[p.action] = counts.get(p.action, 0) + 1
            except Exception:  # noqa: BLE001
                log.exception("rollout decision failed", deployment_id=p.deployment.deployment_id)
        if quiet:
            await self._store_quiet(quiet)
            for p in quiet:
                counts[p.action] = counts.get(p.action, 0) + 1
        self.cycles += 1
        self.last_cycle_seconds = self.clock.monotonic() - started
        return counts

    async def _store_quiet(self, plans: list[_Plan]) -> None:
        """Hold/wait outcomes change no status: one unaudited transaction for all of them."""
        params = []
        for p in plans:
            d, check = p.deployment, p.check
            now = to_us(check.at)
            interval = int(d.plan.analysis_interval_seconds * 1e6)
            step_end = to_us(d.step_started_at) + int(d.plan.hold_seconds(d.step_index) * 1e6)
            params.append({
                "b_id": d.deployment_id, "b_revision": d.revision, "b_check": _dump(_check_to_dict(check)),
                "b_next": now + interval if step_end <= now else min(now + interval, step_end),
                "b_failed": 0 if check.verdict is Verdict.PASS else d.failed_checks,
            })
        t = deployments
        stmt = (
            t.update()
            .where(t.c.deployment_id == sa.bindparam("b_id"), t.c.revision == sa.bindparam("b_revision"))
            .values(last_check=sa.bindparam("b_check"), next_check_us=sa.bindparam("b_next"),
                    failed_checks=sa.bindparam("b_failed"))
        )
        async with self.db.change(audited=False) as ch:
            await ch.conn.execute(stmt, params)  # one executemany, not one round trip each
            self._committed(ch, routes=False)

    async def _next_due_seconds(self) -> float:
        async with self.db.read() as conn:
            due = (
                await conn.execute(
                    sa.select(sa.func.min(deployments.c.next_check_us)).where(deployments.c.active_model.is_not(None))
                )
            ).scalar()
        if due is None:
            return 1.0
        return max((due - self._now_us()) / 1e6, 0.0)

    async def run_controller(self, max_sleep: float = 1.0) -> None:
        """The loop: reconcile, then sleep until the next check is due (or a change)."""
        self._wake = asyncio.Event()
        while True:
            try:
                await self.reconcile()
                delay = min(max_sleep, await self._next_due_seconds())
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the controller must outlive transient errors
                log.exception("rollout controller cycle failed")
                delay = max_sleep
            self._wake.clear()
            if delay > 0:
                try:
                    await asyncio.wait_for(self._wake.wait(), delay)
                except TimeoutError:
                    pass

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.run_controller())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass
            self._task = None

    # ------------------------------------------------------------------ routes

    async def active_routes(self, conn: AsyncConnection) -> list[ModelRoute]:
        """Active rollouts, the versions pinned by completed ones, and active shadows."""
        d = deployments
        routes: dict[str, ModelRoute] = {}
        completed = await conn.execute(
            sa.select(d.c.deployment_id, d.c.model_name, d.c.model_version, d.c.config)
            .where(d.c.status == DeploymentStatus.COMPLETED.value, d.c.strategy != DeploymentStrategy.SHADOW.value)
            .order_by(d.c.completed_us)
        )
        for r in completed:
            upstream = json.loads(r.config).get("upstream", "")
            routes[r.model_name] = ModelRoute(
                model_name=r.model_name, route_id=r.deployment_id, kind="deployment",
                variants=(RouteVariant("stable", 1.0, r.model_name, r.model_version, upstream),),
                pinned=True,
            )
        for r in await conn.execute(sa.select(d).where(d.c.active_model.is_not(None))):
            dep = _from_row(r)
            config = json.loads(r.config)
            routes[dep.model_name] = _route_of(dep, config.get("upstream", ""),
                                               config.get("stable_upstream", ""))
        out = list(routes.values())
        s = shadow_deployments
        for r in await conn.execute(sa.select(s).where(s.c.status == ShadowStatus.ACTIVE.value)):
            name, version = r.shadow_model.partition(":")[::2]
            out.append(ModelRoute(
                model_name=r.model_name, route_id=r.shadow_id, kind="shadow",
                shadows=(ShadowTarget(r.shadow_id, name, version, r.upstream, r.percentage),),
            ))
        return out

    # ------------------------------------------------------------------ shadow deployments

    async def shadow_deploy(self, primary_model: str, shadow_model: str, traffic_percentage: float = 100.0,
                            created_by: str = "", upstream: str = "", *, gate: RegistryGate | None = None,
                            use_local_gate: bool = True) -> ShadowDeployment:
        """Mirror ``traffic_percentage`` % of ``primary_model``'s calls to ``shadow_model``."""
        pname, _ = parse_ref(primary_model, "primary_model")
        sname, sversion = parse_ref(shadow_model, "shadow_model")
        pct = v.percentage(traffic_percentage, "traffic_percentage")
        actor = v.actor(created_by or "anonymous", "created_by")
        upstream = v.text(upstream, "upstream", limit=300)
        gate = gate if gate is not None else (self.local_gate if use_local_gate else None)
        now = self._now_us()
        shadow_id = f"shadow-{uuid.uuid4().hex[:16]}"
        async with self.db.change() as ch:
            if gate is not None:
                for ref in (primary_model, shadow_model):
                    n, ver = ref.partition(":")[::2]
                    if ver:
                        await gate.stage(ch.conn, n, ver)
            await ch.conn.execute(
                shadow_deployments.insert().values(
                    shadow_id=shadow_id, model_name=pname, primary_model=primary_model,
                    shadow_model=f"{sname}:{sversion}" if sversion else sname, percentage=pct,
                    upstream=upstream, status=ShadowStatus.ACTIVE.value, created_by=actor,
                    created_us=now, stopped_us=None,
                )
            )
            ch.record(EventType.SHADOW_STARTED, resource_type="shadow", resource_id=shadow_id, action="start",
                      actor=actor, details={"primary_model": primary_model, "shadow_model": shadow_model,
                                            "traffic_percentage": pct, "upstream": upstream})
            self._committed(ch)
            return await self._shadow(ch.conn, shadow_id)

    async def _shadow(self, conn: AsyncConnection, shadow_id: str) -> ShadowDeployment:
        if not isinstance(shadow_id, str) or not shadow_id or len(shadow_id) > 64:
            raise InvalidArgument("shadow_id must be a non-empty string", field="shadow_id")
        r = (await conn.execute(sa.select(shadow_deployments).where(shadow_deployments.c.shadow_id == shadow_id))).first()
        if r is None:
            raise NotFound(f"shadow deployment {shadow_id!r} does not exist")
        return ShadowDeployment(
            shadow_id=r.shadow_id, primary_model=r.primary_model, shadow_model=r.shadow_model,
            traffic_percentage=r.percentage, status=ShadowStatus(r.status), created_by=r.created_by,
            created_at=from_us(r.created_us), stopped_at=from_us(r.stopped_us) if r.stopped_us else None,
            upstream=r.upstream,
        )

    async def get_shadow(self, shadow_id: str) -> ShadowDeployment:
        async with self.db.read() as conn:
            return await self._shadow(conn, shadow_id)

    async def list_shadows(self, active_only: bool = False) -> list[ShadowDeployment]:
        s = shadow_deployments
        q = sa.select(s.c.shadow_id).order_by(s.c.created_us.desc()).limit(1000)
        if active_only:
            q = q.where(s.c.status == ShadowStatus.ACTIVE.value)
        async with self.db.read() as conn:
            return [await self._shadow(conn, r.shadow_id) for r in await conn.execute(q)]

    async def record_shadow_comparison(self, shadow_id: str, primary_result: Any = None, shadow_result: Any = None,
                                       primary_latency: float | None = None, shadow_latency: float | None = None,
                                       agreement: bool | None = None, shadow_error: bool = False) -> None:
        """Add one compared pair (the seed's manual form) to the shadow's statistics, the
        same store the sidecars' mirrored comparisons feed."""
        for value, fname in ((primary_latency, "primary_latency"), (shadow_latency, "shadow_latency")):
            if value is not None:
                _nonneg(value, fname)
        try:
            p_json = json.loads(json.dumps(primary_result, allow_nan=False, default=str))
            s_json = json.loads(json.dumps(shadow_result, allow_nan=False, default=str))
        except ValueError:
            raise InvalidArgument("results must be JSON-serialisable", field="primary_result") from None
        if len(json.dumps(p_json)) + len(json.dumps(s_json)) > 64 * 1024:
            raise InvalidArgument("results are larger than 64 KiB", field="primary_result")
        agreed = (p_json == s_json) if agreement is None else bool(agreement)
        now = self._now_us()
        stats = ShadowStats()
        stats.observe(agreed=agreed, primary_latency=primary_latency, shadow_latency=shadow_latency,
                      shadow_error=bool(shadow_error),
                      sample={"at_us": now, "primary": p_json, "shadow": s_json, "source": "manual"})
        async with self.db.change(audited=False) as ch:
            await self._shadow(ch.conn, shadow_id)
            await traffic.apply_shadow(ch.conn, shadow_id, traffic.window_start(now), stats, now_us=now)

    async def compare_shadow_deployment(self, shadow_id: str, min_agreement_rate: float = 0.95,
                                        max_latency_ratio: float = 1.5) -> dict[str, Any]:
        """Agreement, latencies and error rates of primary vs shadow, with a verdict."""
        min_agree = v.fraction(min_agreement_rate, "min_agreement_rate")
        ratio_limit = _nonneg(max_latency_ratio, "max_latency_ratio")
        async with self.db.read() as conn:
            shadow = await self._shadow(conn, shadow_id)
            ss = await traffic.shadow_totals(conn, shadow_id)
            primary_window = (await traffic.totals(conn, shadow_id)).get("primary")
        mirrored = max(ss.shadow_latency.count, ss.compared + ss.shadow_errors)

        def lat(h: LatencyHistogram) -> dict[str, float | None]:
            return {"mean": h.mean, "p50": h.quantile(0.5), "p95": h.quantile(0.95), "p99": h.quantile(0.99),
                    "count": h.count}

        primary_lat, shadow_lat = lat(ss.primary_latency), lat(ss.shadow_latency)
        shadow_error_rate = ss.shadow_errors / mirrored if mirrored else None
        primary_error_rate = primary_window.error_rate if primary_window is not None else None
        ratio = (shadow_lat["p95"] / primary_lat["p95"]
                 if shadow_lat["p95"] is not None and primary_lat["p95"] else None)
        reasons: list[str] = []
        if ss.compared < SHADOW_MIN_SAMPLES:
            verdict = Verdict.INCONCLUSIVE.value
            reasons.append(f"{ss.compared} compared pairs; {SHADOW_MIN_SAMPLES} needed for a verdict")
        else:
            rate = ss.agreement_rate or 0.0
            if rate < min_agree:
                reasons.append(f"agreement rate {rate:.4f} < {min_agree:.4f}")
            if ratio is not None and ratio > ratio_limit:
                reasons.append(f"shadow p95 latency is {ratio:.2f}x the primary's (limit {ratio_limit:g}x)")
            if shadow_error_rate is not None and shadow_error_rate > (primary_error_rate or 0.0) + 0.01:
                reasons.append(f"shadow error rate {shadow_error_rate:.4f} vs primary {primary_error_rate or 0.0:.4f}")
            verdict = Verdict.FAIL.value if reasons else Verdict.PASS.value
        return {
            "shadow_id": shadow_id,
            "primary_model": shadow.primary_model,
            "shadow_model": shadow.shadow_model,
            "status": shadow.status.value,
            "n": ss.compared,
            "agreements": ss.agreements,
            "disagreements": ss.compared - ss.agreements,
            "agreement_rate": ss.agreement_rate,
            "mirrored": mirrored,
            "dropped": ss.dropped,
            "primary_latency": primary_lat,
            "shadow_latency": shadow_lat,
            "latency_ratio_p95": ratio,
            "primary_error_rate": primary_error_rate,
            "shadow_error_rate": shadow_error_rate,
            "verdict": verdict,
            "reasons": reasons,
            "disagreement_samples": list(ss.disagreements),
        }

    async def stop_shadow(self, shadow_id: str, stopped_by: str = "") -> ShadowDeployment:
        actor = v.actor(stopped_by or "anonymous", "stopped_by")
        now = self._now_us()
        async with self.db.change() as ch:
            shadow = await self._shadow(ch.conn, shadow_id)
            if shadow.status is ShadowStatus.STOPPED:
                raise FailedPrecondition(f"shadow deployment {shadow_id} is already stopped")
            await ch.conn.execute(
                shadow_deployments.update().where(shadow_deployments.c.shadow_id == shadow_id)
                .values(status=ShadowStatus.STOPPED.value, stopped_us=now)
            )
            ch.record(EventType.SHADOW_STOPPED, resource_type="shadow", resource_id=shadow_id, action="stop",
                      actor=actor, details={"primary_model": shadow.primary_model,
                                            "shadow_model": shadow.shadow_model})
            self._committed(ch)
            return await self._shadow(ch.conn, shadow_id)


# ----------------------------------------------------------------------------- rows <-> domain


async def _running_totals(conn: AsyncConnection, route_ids: list[str]) -> dict[str, dict[str, VariantStats]]:
    """The running-total rows of many routes in a few queries (the controller's batch read)."""
    from neural.mlops.server.storage.schema import traffic_windows as tw

    out: dict[str, dict[str, VariantStats]] = {}
    for i in range(0, len(route_ids), 500):
        chunk = route_ids[i:i + 500]
        rows = await conn.execute(
            sa.select(tw.c.route_id, tw.c.variant, tw.c.stats)
            .where(tw.c.route_id.in_(chunk), tw.c.window_start_us == -1)
        )
        for r in rows:
            out.setdefault(r.route_id, {})[r.variant] = VariantStats.from_dict(json.loads(r.stats))
    return out



def _dump(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


def _state(d: Deployment) -> dict[str, Any]:
    """A copy of the stored state to change (top-level keys are replaced, never mutated)."""
    return dict(getattr(d, "_raw_state", None) or {})


def _check_to_dict(c: HealthCheck) -> dict[str, Any]:
    return {"at_us": to_us(c.at), "verdict": c.verdict.value, "reasons": c.reasons, "source": c.source,
            "step_index": c.step_index, "traffic_percentage": c.traffic_percentage, "new": c.new.to_dict(),
            "stable": c.stable.to_dict() if c.stable else None, "tests": c.tests}


def _check_from_dict(d: dict[str, Any] | None) -> HealthCheck | None:
    if not d:
        return None
    return HealthCheck(at=from_us(d["at_us"]), verdict=Verdict(d["verdict"]), reasons=list(d["reasons"]),
                       source=d["source"], step_index=d["step_index"], traffic_percentage=d["traffic_percentage"],
                       new=PerformanceMetrics.from_dict(d["new"]),
                       stable=PerformanceMetrics.from_dict(d["stable"]) if d.get("stable") else None,
                       tests=d.get("tests") or {})


def _decision_details(check: HealthCheck, d: Deployment) -> dict[str, Any]:
    return {"verdict": check.verdict.value, "reasons": check.reasons, "source": check.source,
            "measured": check.new.to_dict(), "stable": check.stable.to_dict() if check.stable else None,
            "baseline": d.baseline_metrics.to_dict(), "tests": check.tests,
            "thresholds": {"error_rate_threshold": d.rollback_config.error_rate_threshold,
                           "latency_threshold_multiplier": d.rollback_config.latency_threshold_multiplier,
                           "min_requests_before_check": d.rollback_config.min_requests_before_check}}


class _Deployment(Deployment):
    """A Deployment that remembers its stored state JSON (internal)."""

    __slots__ = ("_raw_state",)


def _from_row(r: Any) -> Deployment:
    config = json.loads(r.config)
    state = json.loads(r.state)
    d = _Deployment(
        deployment_id=r.deployment_id, model_name=r.model_name, model_version=r.model_version,
        stable_version=r.stable_version, strategy=DeploymentStrategy(r.strategy),
        status=DeploymentStatus(r.status), created_by=r.created_by, created_at=from_us(r.created_us),
        updated_at=from_us(r.updated_us), baseline_metrics=PerformanceMetrics.from_dict(config["baseline"]),
        rollback_config=RollbackConfig.from_dict(config["rollback_config"]),
        plan=RolloutPlan.from_dict(config["plan"]), step_index=r.step_index,
        traffic_percentage=r.traffic_percentage, step_started_at=from_us(r.step_started_us),
        failed_checks=r.failed_checks,
        current_metrics=PerformanceMetrics.from_dict(state["current_metrics"]) if state.get("current_metrics") else None,
        last_check=_check_from_dict(json.loads(r.last_check)) if r.last_check else None,
        rollback_reasons=list(state.get("rollback_reasons") or []),
        status_reason=state.get("status_reason", ""), gate=config.get("gate", {}),
        completed_at=from_us(r.completed_us) if r.completed_us else None, revision=r.revision,
    )
    d._raw_state = state
    return d


def _route_of(d: Deployment, upstream: str, stable_upstream: str = "") -> ModelRoute:
    """The routing-table entry of an active deployment at its current step."""
    name = d.model_name
    new_w = d.traffic_percentage / 100.0
    stable = RouteVariant(d.stable_variant, round(1.0 - new_w, 12), name, d.stable_version, stable_upstream)
    new = RouteVariant(d.new_variant, new_w, name, d.model_version, upstream)
    shadows: tuple[ShadowTarget, ...] = ()
    if d.traffic_percentage == 0 and (
        d.strategy is DeploymentStrategy.SHADOW or d.plan.preview is PreviewMode.MIRROR
    ):
        shadows = (ShadowTarget(d.deployment_id, name, d.model_version, upstream, d.plan.mirror_percentage),)
    if d.strategy is DeploymentStrategy.SHADOW:
        variants: tuple[RouteVariant, ...] = (stable,)
    else:
        # The new version first: its share is the low end of the hash range, so a unit
        # that reached it stays on it while the share grows (sticky ramp-up).
        variants = (new, stable)
    return ModelRoute(model_name=name, route_id=d.deployment_id, kind="deployment",
                      variants=variants, shadows=shadows)


__all__ = ["CreateSpec", "DeploymentService", "KnownStageGate", "LocalRegistryGate", "RegistryGate"]
