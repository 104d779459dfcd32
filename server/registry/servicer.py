"""RegistryService over gRPC: converts messages and calls the domain, nothing else."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any, TypeAlias

import grpc

from neural.mlops.server.clock import to_us
from neural.mlops.server.errors import InvalidArgument
from neural.mlops.server.pagination import keyset
from neural.mlops.server.registry import convert as c
from neural.mlops.server.registry.search import MetricCondition, SearchQuery
from neural.mlops.server.registry.service import RegisterSpec
from neural.mlops.server.services import Services
from neural.mlops.v1 import registry_pb2 as pb
from neural.mlops.v1 import registry_pb2_grpc

Ctx: TypeAlias = grpc.aio.ServicerContext[Any, Any]


def _stages(values: Any) -> list[Any]:
    return [s for s in (c.stage_from_pb(x) for x in values) if s is not None]


class RegistryServicer(registry_pb2_grpc.RegistryServiceServicer):
    def __init__(self, services: Services) -> None:
        self.registry = services.registry

    async def RegisterModel(self, request_iterator: AsyncIterator[pb.RegisterModelRequest],
                            context: Ctx) -> pb.ModelVersion:
        first = await anext(aiter(request_iterator), None)
        if first is None or not first.HasField("metadata"):
            raise InvalidArgument("the first RegisterModel message must carry metadata",
                                  field="metadata")
        md = first.metadata
        try:
            config = json.loads(md.config_json) if md.config_json else {}
        except ValueError:
            raise InvalidArgument("config_json is not valid JSON", field="config") from None
        spec = RegisterSpec(
            name=md.name, version=md.version, framework=md.framework, created_by=md.created_by,
            metrics=dict(md.metrics), tags=list(md.tags), description=md.description,
            params=dict(md.params), config=config, artifact_filename=md.artifact_filename,
            artifact_uri=md.artifact_uri, expected_sha256=md.expected_sha256,
            lineage=c.lineage_from_pb(md.lineage),
        )

        async def chunks() -> AsyncIterator[bytes]:
            async for msg in request_iterator:
                if not msg.HasField("chunk"):
                    raise InvalidArgument("only the first message may carry metadata",
                                          field="metadata")
                yield msg.chunk

        upload = None
        if md.artifact_filename and not md.artifact_uri:
            upload = chunks()
        elif await anext(aiter(request_iterator), None) is not None:
            raise InvalidArgument("artifact_filename is required with an upload",
                                  field="artifact_filename")
        result = await self.registry.register_model(spec, chunks=upload)
        return c.version_to_pb(result)

    async def GetModelVersion(self, request: pb.GetModelVersionRequest,
                              context: Ctx) -> pb.ModelVersion:
        return c.version_to_pb(await self.registry.get_model_version(request.name, request.version))

    async def ListModels(self, request: pb.ListModelsRequest,
                         context: Ctx) -> pb.ListModelsResponse:
        page = await self.registry.list_models(request.name_prefix, request.page_size,
                                               request.page_token)
        return pb.ListModelsResponse(models=[c.model_to_pb(m) for m in page.items],
                                     next_page_token=page.next_page_token)

    async def ListVersions(self, request: pb.ListVersionsRequest,
                           context: Ctx) -> pb.ModelVersionPage:
        page = await self.registry.list_versions(request.name, c.stage_from_pb(request.stage),
                                                 request.page_size, request.page_token,
                                                 request.order_by)
        return pb.ModelVersionPage(versions=[c.version_to_pb(v) for v in page.items],
                                   next_page_token=page.next_page_token)

    async def GetLatestVersions(self, request: pb.GetLatestVersionsRequest,
                                context: Ctx) -> pb.GetLatestVersionsResponse:
        versions = await self.registry.get_latest_versions(request.name, _stages(request.stages))
        return pb.GetLatestVersionsResponse(versions=[c.version_to_pb(v) for v in versions])

    async def SearchModelVersions(self, request: pb.SearchModelVersionsRequest,
                                  context: Ctx) -> pb.ModelVersionPage:
        query = SearchQuery(
            name_prefix=request.name_prefix, tags=list(request.tags),
            stage=c.stage_from_pb(request.stage), framework=request.framework,
            metric_conditions=[
                MetricCondition(m.metric, c.op_from_pb(m.op, f"metric_conditions[{i}].op"),
                                m.value)
                for i, m in enumerate(request.metric_conditions)
            ],
            source_run_id=request.source_run_id, code_revision=request.code_revision,
            parent_version=request.parent_version, training_data_uri=request.training_data_uri,
            training_data_digest=request.training_data_digest, order_by=request.order_by,
        )
        page = await self.registry.search(query, request.filter, request.page_size,
                                          request.page_token)
        return pb.ModelVersionPage(versions=[c.version_to_pb(v) for v in page.items],
                                   next_page_token=page.next_page_token)

    async def UpdateModelVersion(self, request: pb.UpdateModelVersionRequest,
                                 context: Ctx) -> pb.ModelVersion:
        result = await self.registry.update_version(
            request.name, request.version, request.updated_by,
            description=request.description if request.HasField("description") else None,
            add_tags=list(request.add_tags), remove_tags=list(request.remove_tags),
            set_metrics=dict(request.set_metrics), set_params=dict(request.set_params),
        )
        return c.version_to_pb(result)

    async def DeleteModelVersion(self, request: pb.DeleteModelVersionRequest,
                                 context: Ctx) -> pb.DeleteModelVersionResponse:
        await self.registry.delete_version(request.name, request.version, request.deleted_by)
        return pb.DeleteModelVersionResponse()

    async def TransitionStage(self, request: pb.TransitionStageRequest,
                              context: Ctx) -> pb.ModelVersion:
        target = c.stage_from_pb(request.target_stage)
        if target is None:
            raise InvalidArgument("target_stage is required", field="target_stage")
        return c.version_to_pb(await self.registry.transition_stage(
            request.name, request.version, target, request.actor, request.reason))

    async def RequestPromotion(self, request: pb.RequestPromotionRequest,
                               context: Ctx) -> pb.PromotionRequest:
        target = c.stage_from_pb(request.target_stage)
        if target is None:
            raise InvalidArgument("target_stage is required", field="target_stage")
        return c.request_to_pb(await self.registry.request_promotion(
            request.name, request.version, target, request.requested_by, request.justification,
            list(request.reviewers), request.required_approvals or 1))

    async def ApprovePromotion(self, request: pb.ApprovePromotionRequest,
                               context: Ctx) -> pb.PromotionRequest:
        return c.request_to_pb(await self.registry.approve_promotion(
            request.name, request.version, request.approver, request.comment, request.request_id))

    async def RejectPromotion(self, request: pb.RejectPromotionRequest,
                              context: Ctx) -> pb.PromotionRequest:
        return c.request_to_pb(await self.registry.reject_promotion(
            request.name, request.version, request.rejector, request.comment, request.request_id))

    async def CancelPromotion(self, request: pb.CancelPromotionRequest,
                              context: Ctx) -> pb.PromotionRequest:
        return c.request_to_pb(await self.registry.cancel_promotion(
            request.name, request.version, request.cancelled_by, request.reason,
            request.request_id))

    async def ListPendingApprovals(self, request: pb.ListPendingApprovalsRequest,
                                   context: Ctx) -> pb.ListPendingApprovalsResponse:
        reqs = await self.registry.list_pending(request.reviewer, request.name)
        page, token = keyset(reqs, request.page_size, request.page_token, listing="pending",
                             key=lambda r: (to_us(r.created_at), r.request_id), kinds=(int, str))
        return pb.ListPendingApprovalsResponse(requests=[c.request_to_pb(r) for r in page],
                                               next_page_token=token)

    async def SetAlias(self, request: pb.SetAliasRequest, context: Ctx) -> pb.AliasResponse:
        return c.alias_to_pb(await self.registry.set_alias(
            request.name, request.alias, request.version, request.actor, request.reason))

    async def DeleteAlias(self, request: pb.DeleteAliasRequest, context: Ctx) -> pb.AliasResponse:
        return c.alias_to_pb(await self.registry.delete_alias(
            request.name, request.alias, request.actor, request.reason))

    async def RollbackAlias(self, request: pb.RollbackAliasRequest,
                            context: Ctx) -> pb.AliasResponse:
        return c.alias_to_pb(await self.registry.rollback_alias(
            request.name, request.alias, request.actor, request.reason))

    async def GetHistory(self, request: pb.GetHistoryRequest,
                         context: Ctx) -> pb.GetHistoryResponse:
        entries = await self.registry.history(request.name, request.version)
        page, token = keyset(entries, request.page_size, request.page_token, listing="history",
                             key=lambda h: (h.seq,), kinds=(int,))
        return pb.GetHistoryResponse(entries=[c.history_to_pb(h) for h in page],
                                     next_page_token=token)

    async def CompareModels(self, request: pb.CompareModelsRequest,
                            context: Ctx) -> pb.CompareModelsResponse:
        return c.comparison_to_pb(await self.registry.compare(request.name, request.version1,
                                                              request.version2))

    async def DownloadArtifact(self, request: pb.DownloadArtifactRequest,
                               context: Ctx) -> AsyncIterator[pb.DownloadArtifactResponse]:
        artifact, chunks = await self.registry.download(request.name, request.version)
        yield pb.DownloadArtifactResponse(artifact=c.artifact_to_pb(artifact))
        # Each chunk is a file or object-store read: off the event loop, so one download
        # does not stall every other call while it waits on the disk or the network.
        while (chunk := await asyncio.to_thread(next, chunks, None)) is not None:
            yield pb.DownloadArtifactResponse(chunk=chunk)
