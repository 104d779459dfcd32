"""DeploymentService: the transport-free deployment manager and rollout controller.

State lives in ``deployments`` (one row per rollout, with a ``revision`` that every
decision compares-and-sets), ``deployment_events`` (the decision log, each entry with the
values it was based on) and ``shadow_deployments``. Every state change is one
transaction that also writes its audit event and, when routes change, wakes the routing
table on commit.

This class is the domain's one entry point (Services, the servicer and the Python API
use it); the work lives in its parts: :mod:`.planning` (validation, plans),
:mod:`.creation`, :mod:`.gate` (the registry), :mod:`.health` and :mod:`.rollout`
(judging and deciding), :mod:`.transitions` and :mod:`.operations` (state changes),
:mod:`.controller` (the loop), :mod:`.shadows`, :mod:`.routes` and :mod:`.store`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from neural.mlops.server import validation as v
from neural.mlops.server.clock import Clock, SystemClock, to_us
from neural.mlops.server.deployments import health, routes, store
from neural.mlops.server.deployments.comparison import ShadowComparison
from neural.mlops.server.deployments.controller import RolloutController
from neural.mlops.server.deployments.creation import Creation
from neural.mlops.server.deployments.gate import (
    KnownStageGate,
    LocalRegistryGate,
    RegistryGate,
    RegistryWriteBack,
)
from neural.mlops.server.deployments.model import (
    Deployment,
    DeploymentEvent,
    DeploymentStatus,
    GatePolicy,
    HealthCheck,
    PerformanceMetrics,
    ShadowDeployment,
    Verdict,
)
from neural.mlops.server.deployments.operations import Operation, Operations
from neural.mlops.server.deployments.planning import (
    CreateSpec,
    integer,
    validate_metrics,
    validate_spec,
)
from neural.mlops.server.deployments.rollout import decide
from neural.mlops.server.deployments.shadows import ShadowDeployments
from neural.mlops.server.deployments.signals import Signals
from neural.mlops.server.deployments.transitions import Transitions
from neural.mlops.server.pagination import decode_key, next_token, page_size
from neural.mlops.server.routing.model import ModelRoute
from neural.mlops.server.storage import Database
from neural.mlops.v1.upstream import UpstreamAllowList

LIST_LIMIT = store.LIST_LIMIT


class DeploymentService:
    """Deployments, shadow deployments and the rollout controller (a RouteProvider).

    ``registry``: the RegistryService of the same store; its port gates rollouts and
    follows their outcome. ``gate``/``use_local_gate`` of a call override that: a
    registry in another store is asked by the caller (:class:`KnownStageGate`).
    ``gate_policy`` and ``allowed_upstreams`` come from the process's configuration
    (ServerConfig ``deploy_gate`` and ``allowed_upstreams``); empty patterns accept any
    well-formed upstream."""

    def __init__(self, db: Database, *, clock: Clock | None = None, registry: Any = None,
                 gate_policy: GatePolicy = GatePolicy.PRODUCTION,
                 allowed_upstreams: UpstreamAllowList | None = None,
                 on_routes_changed: Callable[[], None] | None = None) -> None:
        self.db = db
        self.clock = clock or SystemClock()
        self.gate_policy = gate_policy
        self.allowed_upstreams = allowed_upstreams or UpstreamAllowList()
        port = registry.port if registry is not None else None
        self.local_gate: RegistryGate | None = LocalRegistryGate(port) if port is not None else None
        self.signals = Signals(on_routes_changed)
        self.transitions = Transitions(self.clock, self.signals, RegistryWriteBack(port))
        self.controller = RolloutController(db, self.clock, self.signals, self.transitions)
        self.shadows = ShadowDeployments(db, self.clock, self.signals, self.allowed_upstreams)
        self._creation = Creation(db, self.clock, self.signals, self.gate_policy)
        self._operations = Operations(db, self.transitions)

    def _gate(self, gate: RegistryGate | None, use_local_gate: bool) -> RegistryGate | None:
        return gate if gate is not None else (self.local_gate if use_local_gate else None)

    # ------------------------------------------------------------------ rollouts

    async def create_deployment(self, spec: CreateSpec, *, gate: RegistryGate | None = None,
                                use_local_gate: bool = True) -> Deployment:
        """Start a rollout. The registry gate applies when ``gate`` (or the local one, with
        ``use_local_gate``) is available and the strategy serves traffic."""
        return await self._creation.create(validate_spec(spec, self.allowed_upstreams),
                                           self._gate(gate, use_local_gate))

    async def get_deployment(self, deployment_id: str) -> Deployment:
        async with self.db.read() as conn:
            return (await store.load(conn, deployment_id)).deployment

    async def list_deployments(self, model_name: str = "", active_only: bool = False,
                               limit: int = 100) -> list[Deployment]:
        """Newest first, at most ``limit`` (capped at 1000)."""
        name = v.name(model_name, "model_name") if model_name else ""
        async with self.db.read() as conn:
            ids = await store.list_ids(conn, name, active_only, max(1, min(limit, LIST_LIMIT)))
            return [(await store.load(conn, i)).deployment for i in ids]

    async def deployments_page(self, model_name: str = "", active_only: bool = False,
                               page_size_: int = 0,
                               page_token: str = "") -> tuple[list[Deployment], str]:
        """One page, newest first, and the next page's token (server/pagination.py)."""
        name = v.name(model_name, "model_name") if model_name else ""
        size = page_size(page_size_)
        after = decode_key(page_token, "deployments", (int, str))
        async with self.db.read() as conn:
            keys = await store.page_keys(conn, name, active_only, size + 1,
                                         None if after is None else (int(after[0]), str(after[1])))
            items = [(await store.load(conn, k[1])).deployment for k in keys[:size]]
        return items, next_token("deployments", keys, size)

    async def events(self, deployment_id: str, after_seq: int = 0) -> list[DeploymentEvent]:
        """The deployment's decision log after ``after_seq``."""
        async with self.db.read() as conn:
            await store.load(conn, deployment_id)
            return await store.events(conn, deployment_id, after_seq)

    async def events_page(self, deployment_id: str, page_size_: int = 0,
                          page_token: str = "") -> tuple[list[DeploymentEvent], str]:
        """One page of the decision log, oldest first, and the next page's token; the key
        is the event's seq, so events appended meanwhile come on later pages."""
        size = page_size(page_size_)
        after = decode_key(page_token, "deployment-events", (int,))
        async with self.db.read() as conn:
            await store.load(conn, deployment_id)
            found = await store.events(conn, deployment_id,
                                       0 if after is None else int(after[0]), size + 1)
        return found[:size], next_token("deployment-events", [(e.seq,) for e in found], size)

    async def shadows_page(self, active_only: bool = False, page_size_: int = 0,
                           page_token: str = "") -> tuple[list[ShadowDeployment], str]:
        """One page of shadow deployments, newest first, and the next page's token."""
        size = page_size(page_size_)
        after = decode_key(page_token, "shadows", (int, str))
        async with self.db.read() as conn:
            found = await store.list_shadows(
                conn, active_only, size + 1,
                None if after is None else (int(after[0]), str(after[1])))
        keys = [(to_us(s.created_at), s.shadow_id) for s in found]
        return found[:size], next_token("shadows", keys, size)

    async def watch(self, deployment_id: str, poll_seconds: float = 1.0
                    ) -> AsyncIterator[tuple[Deployment, list[DeploymentEvent]]]:
        """The deployment and its events now, then again after every change, until it ends."""
        seq = 0
        revision = -1
        while True:
            changed = self.signals.changed()
            async with self.db.read() as conn:
                dep = (await store.load(conn, deployment_id)).deployment
                new = await store.events(conn, deployment_id, seq)
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

    # ------------------------------------------------------------------ manual metrics and checks

    async def update_metrics(self, deployment_id: str, metrics: PerformanceMetrics) -> Deployment:
        """Store the new version's current metrics (the seed's manual form)."""
        m = validate_metrics(metrics, "metrics")
        now = to_us(self.clock.now())
        async with self.db.change(audited=False) as ch:
            rec = await store.load(ch.conn, deployment_id)
            state = {**rec.new_state(), "current_metrics": m.to_dict(), "metrics_us": now}
            # A new revision: a controller decision judged on the old one is refused
            # (compare-and-set) and decided again, instead of overwriting these metrics.
            await store.bump_revision(ch.conn, deployment_id, state=store.dump(state),
                                      updated_us=now)
            self.signals.committed(ch, routes=False)
            return (await store.load(ch.conn, deployment_id)).deployment

    async def check_deployment_health(
        self, deployment_id: str, request_count: int | None = None, actor: str = ""
    ) -> tuple[bool, list[str], HealthCheck | None]:
        """Judge the deployment now and roll it back if it fails (the seed's form).

        With ``request_count`` (or after ``update_metrics``) the manually reported metrics
        are judged, else the live metrics of the current step. Returns
        ``(needs_rollback, reasons, check)``; a deployment already rolled back returns
        ``(True, its rollback reasons, None)``."""
        if request_count is not None:
            request_count = integer(request_count, "request_count")
        async with self.db.read() as conn:
            rec = await store.load(conn, deployment_id)
            d = rec.deployment
            if d.status is DeploymentStatus.ROLLED_BACK:
                return True, list(d.rollback_reasons), d.last_check
            if not d.active:
                return False, [], d.last_check
            check = await health.measure(conn, rec, to_us(self.clock.now()), request_count)
        applied = await self.controller.apply(decide(rec, check, advance=False),
                                              actor or "anonymous")
        if applied is None:  # the deployment changed meanwhile: answer from its new state
            d = await self.get_deployment(deployment_id)
            return d.status is DeploymentStatus.ROLLED_BACK, list(d.rollback_reasons), d.last_check
        failed = check.verdict is Verdict.FAIL
        needs = applied.status is DeploymentStatus.ROLLED_BACK or failed
        return needs, list(check.reasons) if failed else [], check

    # ------------------------------------------------------------------ operator actions

    async def promote(self, deployment_id: str, actor: str, reason: str = "",
                      full: bool = False) -> Deployment:
        """Advance one step now (``full``: complete at once: 100 %, registry PRODUCTION)."""
        op = Operation.PROMOTE_FULL if full else Operation.PROMOTE
        return await self._operations.run(deployment_id, actor, reason, op)

    async def pause(self, deployment_id: str, actor: str, reason: str = "") -> Deployment:
        return await self._operations.run(deployment_id, actor, reason, Operation.PAUSE)

    async def resume(self, deployment_id: str, actor: str, reason: str = "") -> Deployment:
        return await self._operations.run(deployment_id, actor, reason, Operation.RESUME)

    async def abort(self, deployment_id: str, actor: str, reason: str = "") -> Deployment:
        return await self._operations.run(deployment_id, actor, reason, Operation.ABORT)

    async def rollback(self, deployment_id: str, actor: str, reason: str = "") -> Deployment:
        return await self._operations.run(deployment_id, actor, reason, Operation.ROLLBACK)

    # ------------------------------------------------------------------ the controller

    async def reconcile(self) -> dict[str, int]:
        """One controller cycle: check every active deployment whose check is due, then
        advance, hold, pause, complete or roll back. Returns counts per action."""
        return await self.controller.reconcile()

    async def run_controller(self, max_sleep: float = 1.0) -> None:
        """The loop: reconcile, then sleep until the next check is due (or a change)."""
        await self.controller.run(max_sleep)

    def start(self) -> None:
        self.controller.start()

    async def stop(self) -> None:
        await self.controller.stop()

    @property
    def cycles(self) -> int:
        return self.controller.cycles

    @property
    def last_cycle_seconds(self) -> float:
        return self.controller.last_cycle_seconds

    # ------------------------------------------------------------------ routes

    async def active_routes(self, conn: AsyncConnection) -> list[ModelRoute]:
        """Active rollouts, the versions pinned by completed ones, and active shadows."""
        return await routes.active_routes(conn)

    # ------------------------------------------------------------------ shadow deployments

    async def shadow_deploy(self, primary_model: str, shadow_model: str,
                            traffic_percentage: float = 100.0, created_by: str = "",
                            upstream: str = "", *, gate: RegistryGate | None = None,
                            use_local_gate: bool = True) -> ShadowDeployment:
        """Mirror ``traffic_percentage`` % of ``primary_model``'s calls to ``shadow_model``."""
        return await self.shadows.deploy(primary_model, shadow_model, traffic_percentage,
                                         created_by, upstream, self._gate(gate, use_local_gate))

    async def get_shadow(self, shadow_id: str) -> ShadowDeployment:
        return await self.shadows.get(shadow_id)

    async def list_shadows(self, active_only: bool = False) -> list[ShadowDeployment]:
        return await self.shadows.list(active_only)

    async def record_shadow_comparison(self, shadow_id: str, primary_result: Any = None,
                                       shadow_result: Any = None,
                                       primary_latency: float | None = None,
                                       shadow_latency: float | None = None,
                                       agreement: bool | None = None,
                                       shadow_error: bool = False) -> None:
        """Add one compared pair (the seed's manual form) to the shadow's statistics, the
        same store the sidecars' mirrored comparisons feed."""
        await self.shadows.record_comparison(shadow_id, primary_result, shadow_result,
                                             primary_latency, shadow_latency, agreement,
                                             shadow_error)

    async def compare_shadow_deployment(self, shadow_id: str, min_agreement_rate: float = 0.95,
                                        max_latency_ratio: float = 1.5) -> ShadowComparison:
        """Agreement, latencies and error rates of primary vs shadow, with a verdict."""
        return await self.shadows.compare(shadow_id, min_agreement_rate, max_latency_ratio)

    async def stop_shadow(self, shadow_id: str, stopped_by: str = "") -> ShadowDeployment:
        return await self.shadows.stop(shadow_id, stopped_by)


__all__ = ["CreateSpec", "DeploymentService", "KnownStageGate", "LocalRegistryGate",
           "RegistryGate", "ShadowComparison"]
