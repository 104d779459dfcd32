"""DeploymentService's public methods over gRPC (the mirror of the deployments servicer)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

from neural.mlops._remote.connection import RemoteConnection
from neural.mlops.server.deployments import convert as c
from neural.mlops.server.deployments.comparison import ShadowComparison
from neural.mlops.server.deployments.custom_metrics import validate_rules
from neural.mlops.server.deployments.gate import RegistryGate
from neural.mlops.server.deployments.model import (
    Deployment,
    DeploymentEvent,
    DeploymentStrategy,
    HealthCheck,
    PerformanceMetrics,
    RollbackConfig,
    ShadowDeployment,
)
from neural.mlops.server.deployments.planning import CreateSpec, header_routes_of, targeting_of
from neural.mlops.server.errors import InvalidArgument
from neural.mlops.server.pagination import MAX_PAGE_SIZE
from neural.mlops.v1 import deployments_pb2 as pb
from neural.mlops.v1.deployments_pb2_grpc import DeploymentServiceStub


def _own_gate(gate: RegistryGate | None, use_local_gate: bool) -> None:
    """The control plane always applies its own registry gate; another cannot be sent."""
    if gate is not None or not use_local_gate:
        raise InvalidArgument("a control plane gates deployments on its own registry",
                              field="registry")


def _typed(value: object, cls: type, field: str) -> None:
    if not isinstance(value, cls):
        raise InvalidArgument(f"{field} must be {cls.__name__}", field=field)


def _create_request(spec: CreateSpec) -> pb.CreateDeploymentRequest:
    _typed(spec.baseline_metrics, PerformanceMetrics, "baseline_metrics")
    _typed(spec.rollback_config, RollbackConfig, "rollback_config")
    req = pb.CreateDeploymentRequest(
        model_name=spec.model_name, model_version=spec.model_version,
        strategy=c.STRATEGY_TO_PB[DeploymentStrategy(spec.strategy)], created_by=spec.created_by,
        baseline_metrics=c.metrics_to_pb(spec.baseline_metrics),
        rollback_config=c.rollback_to_pb(spec.rollback_config), steps=spec.steps or [],
        step_duration_seconds=spec.step_duration_seconds,
        analysis_interval_seconds=spec.analysis_interval_seconds,
        preview=c.preview_to_pb(spec.preview),
        mirror_percentage=spec.mirror_percentage, stable_version=spec.stable_version or "",
        upstream=spec.upstream, override_reason=spec.override_reason,
    )
    if spec.switch_back_seconds is not None:
        req.switch_back_seconds = spec.switch_back_seconds
    # Checked here too: a text that does not parse has no wire form to send.
    strategy = DeploymentStrategy(spec.strategy)
    req.targeting.extend(c.conditions_to_pb(targeting_of(spec.targeting, strategy)))
    req.header_routes.extend(c.header_routes_to_pb(header_routes_of(spec.header_routes,
                                                                    strategy)))
    validate_rules(spec.rollback_config.metric_rules, "rollback_config.metric_rules")
    return req


def _json(value: Any) -> str:
    try:
        return json.dumps(value, allow_nan=False, default=str)
    except ValueError:
        raise InvalidArgument("results must be JSON-serialisable", field="primary_result") from None


class RemoteDeployments:
    def __init__(self, conn: RemoteConnection) -> None:
        self._conn = conn
        self._stub = conn.stub(DeploymentServiceStub)

    async def _deployment(self, method: Any, request: Any) -> Deployment:
        return c.deployment_from_pb(await self._conn.unary(method, request))

    async def _shadow(self, method: Any, request: Any) -> ShadowDeployment:
        return c.shadow_from_pb(await self._conn.unary(method, request))

    async def create_deployment(self, spec: CreateSpec, *, gate: RegistryGate | None = None,
                                use_local_gate: bool = True) -> Deployment:
        _own_gate(gate, use_local_gate)
        return await self._deployment(self._stub.CreateDeployment, _create_request(spec))

    async def get_deployment(self, deployment_id: str) -> Deployment:
        req = pb.GetDeploymentRequest(deployment_id=deployment_id)
        return await self._deployment(self._stub.GetDeployment, req)

    async def list_deployments(self, model_name: str = "", active_only: bool = False,
                               limit: int = 100) -> list[Deployment]:
        wanted = max(1, min(limit, MAX_PAGE_SIZE))  # the documented cap, as embedded
        found: list[Deployment] = []
        token = ""
        while len(found) < wanted:
            req = pb.ListDeploymentsRequest(model_name=model_name, active_only=active_only,
                                            page_size=wanted - len(found), page_token=token)
            resp = await self._conn.unary(self._stub.ListDeployments, req)
            found += [c.deployment_from_pb(d) for d in resp.deployments]
            if not (token := resp.next_page_token):
                break
        return found

    async def events(self, deployment_id: str, after_seq: int = 0) -> list[DeploymentEvent]:
        found: list[DeploymentEvent] = []
        token = ""
        while True:  # every page: the method's documented result is the whole log
            req = pb.ListDeploymentEventsRequest(deployment_id=deployment_id,
                                                 page_size=MAX_PAGE_SIZE, page_token=token)
            resp = await self._conn.unary(self._stub.ListDeploymentEvents, req)
            found += [e for e in map(c.event_from_pb, resp.events) if e.seq > after_seq]
            if not (token := resp.next_page_token):
                return found

    async def watch(self, deployment_id: str, poll_seconds: float = 1.0
                    ) -> AsyncIterator[tuple[Deployment, list[DeploymentEvent]]]:
        """The server pushes every change (``poll_seconds`` is the server's business)."""
        req = pb.WatchDeploymentRequest(deployment_id=deployment_id)
        async with aclosing(self._conn.stream(self._stub.WatchDeployment, req)) as updates:
            async for update in updates:
                yield (c.deployment_from_pb(update.deployment),
                       [c.event_from_pb(e) for e in update.events])

    async def update_metrics(self, deployment_id: str, metrics: PerformanceMetrics) -> Deployment:
        _typed(metrics, PerformanceMetrics, "metrics")
        req = pb.UpdateMetricsRequest(deployment_id=deployment_id, metrics=c.metrics_to_pb(metrics))
        return await self._deployment(self._stub.UpdateMetrics, req)

    async def check_deployment_health(
        self, deployment_id: str, request_count: int | None = None, actor: str = ""
    ) -> tuple[bool, list[str], HealthCheck | None]:
        req = pb.CheckHealthRequest(deployment_id=deployment_id, actor=actor)
        if request_count is not None:
            if isinstance(request_count, bool) or not isinstance(request_count, int):
                raise InvalidArgument("request_count must be an integer", field="request_count")
            if request_count < 0:
                raise InvalidArgument("request_count must be >= 0", field="request_count")
            req.request_count = request_count
        resp = await self._conn.unary(self._stub.CheckHealth, req)
        check = c.check_from_pb(resp.check) if resp.HasField("check") else None
        return resp.needs_rollback, list(resp.reasons), check

    def _action(self, deployment_id: str, actor: str, reason: str,
                full: bool = False) -> pb.DeploymentActionRequest:
        return pb.DeploymentActionRequest(deployment_id=deployment_id, actor=actor, reason=reason,
                                          full=full)

    async def promote(self, deployment_id: str, actor: str, reason: str = "",
                      full: bool = False) -> Deployment:
        req = self._action(deployment_id, actor, reason, full)
        return await self._deployment(self._stub.Promote, req)

    async def pause(self, deployment_id: str, actor: str, reason: str = "") -> Deployment:
        return await self._deployment(self._stub.Pause, self._action(deployment_id, actor, reason))

    async def resume(self, deployment_id: str, actor: str, reason: str = "") -> Deployment:
        return await self._deployment(self._stub.Resume, self._action(deployment_id, actor, reason))

    async def abort(self, deployment_id: str, actor: str, reason: str = "") -> Deployment:
        return await self._deployment(self._stub.Abort, self._action(deployment_id, actor, reason))

    async def rollback(self, deployment_id: str, actor: str, reason: str = "") -> Deployment:
        req = self._action(deployment_id, actor, reason)
        return await self._deployment(self._stub.Rollback, req)

    async def reconcile(self) -> dict[str, int]:
        raise InvalidArgument("the control plane runs its own controller", field="location")

    async def shadow_deploy(self, primary_model: str, shadow_model: str,
                            traffic_percentage: float = 100.0, created_by: str = "",
                            upstream: str = "", *, gate: RegistryGate | None = None,
                            use_local_gate: bool = True) -> ShadowDeployment:
        _own_gate(gate, use_local_gate)
        req = pb.ShadowDeployRequest(primary_model=primary_model, shadow_model=shadow_model,
                                     traffic_percentage=traffic_percentage,
                                     created_by=created_by, upstream=upstream)
        return await self._shadow(self._stub.ShadowDeploy, req)

    async def get_shadow(self, shadow_id: str) -> ShadowDeployment:
        return await self._shadow(self._stub.GetShadow, pb.GetShadowRequest(shadow_id=shadow_id))

    async def list_shadows(self, active_only: bool = False) -> list[ShadowDeployment]:
        found: list[ShadowDeployment] = []
        token = ""
        while True:  # every page: the method's documented result is the whole list
            req = pb.ListShadowsRequest(active_only=active_only, page_size=MAX_PAGE_SIZE,
                                        page_token=token)
            resp = await self._conn.unary(self._stub.ListShadows, req)
            found += [c.shadow_from_pb(s) for s in resp.shadows]
            if not (token := resp.next_page_token):
                return found

    async def record_shadow_comparison(self, shadow_id: str, primary_result: Any = None,
                                       shadow_result: Any = None,
                                       primary_latency: float | None = None,
                                       shadow_latency: float | None = None,
                                       agreement: bool | None = None,
                                       shadow_error: bool = False) -> None:
        req = pb.RecordShadowComparisonRequest(
            shadow_id=shadow_id, primary_result_json=_json(primary_result),
            shadow_result_json=_json(shadow_result), shadow_error=shadow_error,
        )
        if primary_latency is not None:
            req.primary_latency = primary_latency
        if shadow_latency is not None:
            req.shadow_latency = shadow_latency
        if agreement is not None:
            req.agreement = agreement
        await self._conn.unary(self._stub.RecordShadowComparison, req)

    async def compare_shadow_deployment(self, shadow_id: str, min_agreement_rate: float = 0.95,
                                        max_latency_ratio: float = 1.5) -> ShadowComparison:
        req = pb.CompareShadowRequest(shadow_id=shadow_id, min_agreement_rate=min_agreement_rate,
                                      max_latency_ratio=max_latency_ratio)
        return c.comparison_from_pb(await self._conn.unary(self._stub.CompareShadow, req))

    async def stop_shadow(self, shadow_id: str, stopped_by: str = "") -> ShadowDeployment:
        req = pb.StopShadowRequest(shadow_id=shadow_id, stopped_by=stopped_by)
        return await self._shadow(self._stub.StopShadow, req)
