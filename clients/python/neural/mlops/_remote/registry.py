"""RegistryService's public methods over gRPC (the mirror of the registry servicer)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import aclosing
from pathlib import Path
from typing import Any

from neural.mlops._remote.connection import RemoteConnection
from neural.mlops.server.errors import DataLoss, InvalidArgument
from neural.mlops.server.pagination import MAX_PAGE_SIZE
from neural.mlops.server.registry import convert as c
from neural.mlops.server.registry.artifacts import CHUNK
from neural.mlops.server.registry.model import (
    AliasChange,
    Artifact,
    HistoryEntry,
    ModelStage,
    ModelVersion,
    Page,
    PromotionRequest,
    RegisteredModel,
)
from neural.mlops.server.registry.registration import RegisterSpec
from neural.mlops.server.registry.search import SearchQuery
from neural.mlops.v1 import registry_pb2 as pb
from neural.mlops.v1.registry_pb2_grpc import RegistryServiceStub


def _readable(path: Path) -> Path:
    """The checks the store makes before reading a local file, made before sending it."""
    if not path.exists():
        raise InvalidArgument(f"model_path does not exist: {path}", field="model_path")
    if not path.is_file():
        raise InvalidArgument(f"model_path is not a file: {path}", field="model_path")
    return path


def _stage_pb(stage: ModelStage | None) -> pb.ModelStage:
    return c.STAGE_TO_PB[stage] if stage else pb.MODEL_STAGE_UNSPECIFIED


async def _file_chunks(path: Path) -> AsyncIterator[bytes]:
    with open(path, "rb") as fh:
        while chunk := await asyncio.to_thread(fh.read, CHUNK):
            yield chunk


class RemoteRegistry:
    def __init__(self, conn: RemoteConnection) -> None:
        self._conn = conn
        self._stub = conn.stub(RegistryServiceStub)

    async def register_model(
        self,
        spec: RegisterSpec,
        *,
        chunks: AsyncIterator[bytes] | None = None,
        source_path: Path | None = None,
    ) -> ModelVersion:
        spec.validated()  # the same errors as embedded, before a byte is sent
        if spec.artifact_uri and (chunks is not None or source_path is not None):
            raise InvalidArgument("give either an artifact URI or artifact bytes, not both",
                                  field="model_path")
        if source_path is not None:
            chunks = _file_chunks(_readable(source_path))
            spec.artifact_filename = spec.artifact_filename or source_path.name
        meta = pb.RegisterModelMetadata(
            name=spec.name, version=spec.version, framework=spec.framework,
            created_by=spec.created_by, metrics=spec.metrics, tags=spec.tags,
            description=spec.description, params=spec.params,
            config_json=json.dumps(spec.config), artifact_filename=spec.artifact_filename,
            artifact_uri=spec.artifact_uri, expected_sha256=spec.expected_sha256,
            lineage=c.lineage_to_pb(spec.lineage),
        )

        async def messages() -> AsyncIterator[pb.RegisterModelRequest]:
            yield pb.RegisterModelRequest(metadata=meta)
            if chunks is not None:
                async for chunk in chunks:
                    yield pb.RegisterModelRequest(chunk=chunk)

        return c.version_from_pb(await self._conn.unary(self._stub.RegisterModel, messages()))

    async def get_model_version(self, name: str, version: str) -> ModelVersion:
        req = pb.GetModelVersionRequest(name=name, version=version)
        return c.version_from_pb(await self._conn.unary(self._stub.GetModelVersion, req))

    async def list_models(self, name_prefix: str = "", page_size_: int = 0,
                          page_token: str = "") -> Page[RegisteredModel]:
        req = pb.ListModelsRequest(name_prefix=name_prefix, page_size=page_size_,
                                   page_token=page_token)
        resp = await self._conn.unary(self._stub.ListModels, req)
        return Page([c.model_from_pb(m) for m in resp.models], resp.next_page_token)

    async def list_versions(self, name: str, stage: ModelStage | None = None, page_size_: int = 0,
                            page_token: str = "", order_by: str = "") -> Page[ModelVersion]:
        req = pb.ListVersionsRequest(name=name, stage=_stage_pb(stage),
                                     page_size=page_size_, page_token=page_token,
                                     order_by=order_by)
        return self._versions(await self._conn.unary(self._stub.ListVersions, req))

    async def get_latest_versions(self, name: str,
                                  stages: Sequence[ModelStage] | None = None) -> list[ModelVersion]:
        req = pb.GetLatestVersionsRequest(
            name=name, stages=[c.STAGE_TO_PB[s] for s in stages or ()]
        )
        resp = await self._conn.unary(self._stub.GetLatestVersions, req)
        return [c.version_from_pb(v) for v in resp.versions]

    async def search(self, query: SearchQuery, filter_text: str = "", page_size_: int = 0,
                     page_token: str = "") -> Page[ModelVersion]:
        req = pb.SearchModelVersionsRequest(
            name_prefix=query.name_prefix,
            tags=query.tags,
            stage=_stage_pb(query.stage),
            framework=query.framework,
            metric_conditions=[
                pb.MetricCondition(metric=m.metric, op=c.op_to_pb(m.op), value=m.value)
                for m in query.metric_conditions
            ],
            filter=filter_text,
            page_size=page_size_,
            page_token=page_token,
            source_run_id=query.source_run_id,
            code_revision=query.code_revision,
            parent_version=query.parent_version,
            training_data_uri=query.training_data_uri,
            training_data_digest=query.training_data_digest,
            order_by=query.order_by,
        )
        return self._versions(await self._conn.unary(self._stub.SearchModelVersions, req))

    @staticmethod
    def _versions(resp: pb.ModelVersionPage) -> Page[ModelVersion]:
        return Page([c.version_from_pb(v) for v in resp.versions], resp.next_page_token)

    async def download(self, name: str, version: str) -> tuple[Artifact, Iterator[bytes]]:
        """The artifact and its bytes as they arrive, for a reader on another thread."""
        stream = self._conn.stream(self._stub.DownloadArtifact,
                                   pb.DownloadArtifactRequest(name=name, version=version))
        first = await anext(stream, None)
        if first is None or not first.HasField("artifact"):
            await stream.aclose()
            raise DataLoss(f"the server sent no artifact description for {name}:{version}")

        async def chunks() -> AsyncIterator[bytes]:
            async with aclosing(stream):
                async for message in stream:
                    yield message.chunk

        return c.artifact_from_pb(first.artifact), self._conn.blocking(chunks())

    async def compare(self, name: str, version1: str, version2: str) -> dict[str, Any]:
        req = pb.CompareModelsRequest(name=name, version1=version1, version2=version2)
        return c.comparison_from_pb(await self._conn.unary(self._stub.CompareModels, req))

    async def update_version(
        self,
        name: str,
        version: str,
        updated_by: str,
        *,
        description: str | None = None,
        add_tags: Sequence[str] = (),
        remove_tags: Sequence[str] = (),
        set_metrics: dict[str, float] | None = None,
        set_params: dict[str, str] | None = None,
    ) -> ModelVersion:
        req = pb.UpdateModelVersionRequest(
            name=name, version=version, updated_by=updated_by, add_tags=list(add_tags),
            remove_tags=list(remove_tags), set_metrics=set_metrics or {},
            set_params=set_params or {},
        )
        if description is not None:
            req.description = description
        return c.version_from_pb(await self._conn.unary(self._stub.UpdateModelVersion, req))

    async def delete_version(self, name: str, version: str, deleted_by: str) -> None:
        req = pb.DeleteModelVersionRequest(name=name, version=version, deleted_by=deleted_by)
        await self._conn.unary(self._stub.DeleteModelVersion, req)

    async def transition_stage(self, name: str, version: str, target: ModelStage, actor: str,
                               reason: str = "") -> ModelVersion:
        req = pb.TransitionStageRequest(name=name, version=version,
                                        target_stage=c.STAGE_TO_PB[target], actor=actor,
                                        reason=reason)
        return c.version_from_pb(await self._conn.unary(self._stub.TransitionStage, req))

    async def request_promotion(
        self,
        name: str,
        version: str,
        target: ModelStage,
        requested_by: str,
        justification: str = "",
        reviewers: Sequence[str] | None = None,
        required_approvals: int = 1,
    ) -> PromotionRequest:
        req = pb.RequestPromotionRequest(
            name=name, version=version, target_stage=c.STAGE_TO_PB[target],
            requested_by=requested_by, justification=justification,
            reviewers=list(reviewers or ()), required_approvals=required_approvals,
        )
        return c.request_from_pb(await self._conn.unary(self._stub.RequestPromotion, req))

    async def approve_promotion(self, name: str, version: str, approver: str, comment: str = "",
                                request_id: str = "") -> PromotionRequest:
        req = pb.ApprovePromotionRequest(name=name, version=version, approver=approver,
                                         comment=comment, request_id=request_id)
        return c.request_from_pb(await self._conn.unary(self._stub.ApprovePromotion, req))

    async def reject_promotion(self, name: str, version: str, rejector: str, comment: str = "",
                               request_id: str = "") -> PromotionRequest:
        req = pb.RejectPromotionRequest(name=name, version=version, rejector=rejector,
                                        comment=comment, request_id=request_id)
        return c.request_from_pb(await self._conn.unary(self._stub.RejectPromotion, req))

    async def cancel_promotion(self, name: str, version: str, cancelled_by: str, reason: str = "",
                               request_id: str = "") -> PromotionRequest:
        req = pb.CancelPromotionRequest(name=name, version=version, cancelled_by=cancelled_by,
                                        reason=reason, request_id=request_id)
        return c.request_from_pb(await self._conn.unary(self._stub.CancelPromotion, req))

    async def list_pending(self, reviewer: str = "", name: str = "") -> list[PromotionRequest]:
        found: list[PromotionRequest] = []
        token = ""
        while True:  # every page: the method's documented result is the whole list
            req = pb.ListPendingApprovalsRequest(reviewer=reviewer, name=name,
                                                 page_size=MAX_PAGE_SIZE, page_token=token)
            resp = await self._conn.unary(self._stub.ListPendingApprovals, req)
            found += [c.request_from_pb(r) for r in resp.requests]
            if not (token := resp.next_page_token):
                return found

    async def set_alias(self, name: str, alias: str, version: str, actor: str,
                        reason: str = "") -> AliasChange:
        req = pb.SetAliasRequest(name=name, alias=alias, version=version, actor=actor,
                                 reason=reason)
        return c.alias_from_pb(await self._conn.unary(self._stub.SetAlias, req))

    async def delete_alias(
        self, name: str, alias: str, actor: str, reason: str = ""
    ) -> AliasChange:
        req = pb.DeleteAliasRequest(name=name, alias=alias, actor=actor, reason=reason)
        return c.alias_from_pb(await self._conn.unary(self._stub.DeleteAlias, req))

    async def rollback_alias(self, name: str, alias: str, actor: str,
                             reason: str = "") -> AliasChange:
        req = pb.RollbackAliasRequest(name=name, alias=alias, actor=actor, reason=reason)
        return c.alias_from_pb(await self._conn.unary(self._stub.RollbackAlias, req))

    async def history(self, name: str, version: str = "") -> list[HistoryEntry]:
        found: list[HistoryEntry] = []
        token = ""
        while True:  # every page: the method's documented result is the whole history
            req = pb.GetHistoryRequest(name=name, version=version, page_size=MAX_PAGE_SIZE,
                                       page_token=token)
            resp = await self._conn.unary(self._stub.GetHistory, req)
            found += [c.history_from_pb(h) for h in resp.entries]
            if not (token := resp.next_page_token):
                return found
