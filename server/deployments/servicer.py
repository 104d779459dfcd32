"""DeploymentService over gRPC: converts messages and calls the domain, nothing else."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from neural.mlops.server.deployments import convert as c
from neural.mlops.server.deployments.model import PerformanceMetrics, RollbackConfig
from neural.mlops.server.deployments.planning import CreateSpec
from neural.mlops.server.identity import current_call
from neural.mlops.server.services import Services
from neural.mlops.v1 import deployments_pb2 as pb
from neural.mlops.v1 import deployments_pb2_grpc

Ctx = grpc.aio.ServicerContext[Any, Any]


def _actor(given: str) -> str:
    return given or current_call().actor


class DeploymentServicer(deployments_pb2_grpc.DeploymentServiceServicer):
    def __init__(self, services: Services) -> None:
        self.deployments = services.deployments

    async def CreateDeployment(  # noqa: N802
        self, request: pb.CreateDeploymentRequest, context: Ctx
    ) -> pb.Deployment:
        r = request
        spec = CreateSpec(
            model_name=r.model_name, model_version=r.model_version,
            strategy=c.strategy_from_pb(r.strategy),
            created_by=_actor(r.created_by),
            baseline_metrics=c.metrics_from_pb(r.baseline_metrics) if r.HasField("baseline_metrics")
            else PerformanceMetrics(),
            rollback_config=c.rollback_from_pb(r.rollback_config) if r.HasField("rollback_config")
            else RollbackConfig(),
            steps=list(r.steps) or None,
            preview=c.preview_from_pb(r.preview),
            stable_version=r.stable_version or None, upstream=r.upstream,
            override_reason=r.override_reason, targeting=list(r.targeting),
            header_routes=c.header_routes_from_pb(r.header_routes),
        )
        if r.HasField("step_duration_seconds"):
            spec.step_duration_seconds = r.step_duration_seconds
        if r.HasField("analysis_interval_seconds"):
            spec.analysis_interval_seconds = r.analysis_interval_seconds
        if r.HasField("mirror_percentage"):
            spec.mirror_percentage = r.mirror_percentage
        if r.HasField("switch_back_seconds"):
            spec.switch_back_seconds = r.switch_back_seconds
        return c.deployment_to_pb(await self.deployments.create_deployment(spec))

    async def GetDeployment(  # noqa: N802
        self, request: pb.GetDeploymentRequest, context: Ctx
    ) -> pb.Deployment:
        return c.deployment_to_pb(await self.deployments.get_deployment(request.deployment_id))

    async def ListDeployments(  # noqa: N802
        self, request: pb.ListDeploymentsRequest, context: Ctx
    ) -> pb.ListDeploymentsResponse:
        items, token = await self.deployments.deployments_page(
            request.model_name, request.active_only, request.page_size, request.page_token)
        return pb.ListDeploymentsResponse(deployments=[c.deployment_to_pb(d) for d in items],
                                          next_page_token=token)

    async def ListDeploymentEvents(self, request: pb.ListDeploymentEventsRequest,  # noqa: N802
                                   context: Ctx) -> pb.ListDeploymentEventsResponse:
        events, token = await self.deployments.events_page(
            request.deployment_id, request.page_size, request.page_token)
        return pb.ListDeploymentEventsResponse(events=[c.event_to_pb(e) for e in events],
                                               next_page_token=token)

    async def WatchDeployment(self, request: pb.WatchDeploymentRequest,  # noqa: N802
                              context: Ctx) -> AsyncIterator[pb.DeploymentUpdate]:
        async for dep, events in self.deployments.watch(request.deployment_id):
            yield pb.DeploymentUpdate(deployment=c.deployment_to_pb(dep),
                                      events=[c.event_to_pb(e) for e in events])

    async def UpdateMetrics(  # noqa: N802
        self, request: pb.UpdateMetricsRequest, context: Ctx
    ) -> pb.Deployment:
        d = await self.deployments.update_metrics(request.deployment_id,
                                                  c.metrics_from_pb(request.metrics))
        return c.deployment_to_pb(d)

    async def CheckHealth(  # noqa: N802
        self, request: pb.CheckHealthRequest, context: Ctx
    ) -> pb.CheckHealthResponse:
        count = request.request_count if request.HasField("request_count") else None
        needs, reasons, check = await self.deployments.check_deployment_health(
            request.deployment_id, count, _actor(request.actor)
        )
        out = pb.CheckHealthResponse(needs_rollback=needs, reasons=reasons)
        if check is not None:
            out.check.CopyFrom(c.check_to_pb(check))
        return out

    async def Promote(  # noqa: N802
        self, request: pb.DeploymentActionRequest, context: Ctx
    ) -> pb.Deployment:
        return c.deployment_to_pb(await self.deployments.promote(
            request.deployment_id, _actor(request.actor), request.reason, request.full))

    async def Pause(  # noqa: N802
        self, request: pb.DeploymentActionRequest, context: Ctx
    ) -> pb.Deployment:
        return c.deployment_to_pb(await self.deployments.pause(
            request.deployment_id, _actor(request.actor), request.reason))

    async def Resume(  # noqa: N802
        self, request: pb.DeploymentActionRequest, context: Ctx
    ) -> pb.Deployment:
        return c.deployment_to_pb(await self.deployments.resume(
            request.deployment_id, _actor(request.actor), request.reason))

    async def Abort(  # noqa: N802
        self, request: pb.DeploymentActionRequest, context: Ctx
    ) -> pb.Deployment:
        return c.deployment_to_pb(await self.deployments.abort(
            request.deployment_id, _actor(request.actor), request.reason))

    async def Rollback(  # noqa: N802
        self, request: pb.DeploymentActionRequest, context: Ctx
    ) -> pb.Deployment:
        return c.deployment_to_pb(await self.deployments.rollback(
            request.deployment_id, _actor(request.actor), request.reason))

    async def ShadowDeploy(  # noqa: N802
        self, request: pb.ShadowDeployRequest, context: Ctx
    ) -> pb.ShadowDeployment:
        r = request
        s = await self.deployments.shadow_deploy(r.primary_model, r.shadow_model,
                                                 r.traffic_percentage, _actor(r.created_by),
                                                 r.upstream)
        return c.shadow_to_pb(s)

    async def GetShadow(  # noqa: N802
        self, request: pb.GetShadowRequest, context: Ctx
    ) -> pb.ShadowDeployment:
        return c.shadow_to_pb(await self.deployments.get_shadow(request.shadow_id))

    async def ListShadows(  # noqa: N802
        self, request: pb.ListShadowsRequest, context: Ctx
    ) -> pb.ListShadowsResponse:
        items, token = await self.deployments.shadows_page(
            request.active_only, request.page_size, request.page_token)
        return pb.ListShadowsResponse(shadows=[c.shadow_to_pb(s) for s in items],
                                      next_page_token=token)

    async def RecordShadowComparison(self, request: pb.RecordShadowComparisonRequest,  # noqa: N802
                                     context: Ctx) -> pb.RecordShadowComparisonResponse:
        r = request
        await self.deployments.record_shadow_comparison(
            r.shadow_id,
            c.json_arg(r.primary_result_json, "primary_result"),
            c.json_arg(r.shadow_result_json, "shadow_result"),
            r.primary_latency if r.HasField("primary_latency") else None,
            r.shadow_latency if r.HasField("shadow_latency") else None,
            r.agreement if r.HasField("agreement") else None,
            r.shadow_error,
        )
        return pb.RecordShadowComparisonResponse()

    async def CompareShadow(  # noqa: N802
        self, request: pb.CompareShadowRequest, context: Ctx
    ) -> pb.ShadowComparison:
        kwargs = {}
        if request.HasField("min_agreement_rate"):
            kwargs["min_agreement_rate"] = request.min_agreement_rate
        if request.HasField("max_latency_ratio"):
            kwargs["max_latency_ratio"] = request.max_latency_ratio
        result = await self.deployments.compare_shadow_deployment(request.shadow_id, **kwargs)
        return c.comparison_to_pb(result)

    async def StopShadow(  # noqa: N802
        self, request: pb.StopShadowRequest, context: Ctx
    ) -> pb.ShadowDeployment:
        s = await self.deployments.stop_shadow(request.shadow_id, _actor(request.stopped_by))
        return c.shadow_to_pb(s)
