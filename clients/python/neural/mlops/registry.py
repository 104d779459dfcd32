"""Model registry: versions with metrics and artifacts, approval-gated stages, aliases.

``ModelRegistry("./models")`` opens the embedded store in that folder (SQLite file plus
artifacts under ``models/<name>/<version>/``); ``ModelRegistry("grpc://HOST:PORT")``
talks to a control plane. Both behave identically and raise the same exceptions
(:mod:`neural.mlops.errors`).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from neural.mlops._runtime import ServiceClient
from neural.mlops.server.errors import DataLoss, InvalidArgument
from neural.mlops.server.registry import convert as c
from neural.mlops.server.registry.artifacts import CHUNK, REFERENCE_SCHEMES
from neural.mlops.server.registry.model import (
    AliasChange,
    Artifact,
    HistoryEntry,
    ModelMetadata,
    ModelStage,
    ModelVersion,
    Page,
    PromotionRequest,
    PromotionStatus,
    RegisteredModel,
)
from neural.mlops.server.registry.search import (
    MetricCondition,
    SearchQuery,
    parse_condition,
    parse_stage,
)
from neural.mlops.server.registry.service import RegisterSpec
from neural.mlops.v1 import registry_pb2 as pb
from neural.mlops.v1.registry_pb2_grpc import RegistryServiceStub

__all__ = [
    "AliasChange",
    "Artifact",
    "HistoryEntry",
    "ModelMetadata",
    "ModelRegistry",
    "ModelStage",
    "ModelVersion",
    "Page",
    "PromotionRequest",
    "PromotionStatus",
    "RegisteredModel",
]

StageLike = ModelStage | str


def _stage(value: StageLike | None, field: str) -> ModelStage | None:
    return None if value is None else parse_stage(value, field)


def _conditions(values: Sequence[str | MetricCondition] | None) -> list[MetricCondition]:
    return [v if isinstance(v, MetricCondition) else parse_condition(v) for v in values or ()]


class ModelRegistry(ServiceClient):
    """The seed's registry API, embedded or remote."""

    service = "registry"
    stub_class = RegistryServiceStub

    def __init__(self, location: str | os.PathLike[str] = "./models", *, token: str | None = None,
                 timeout: float = 60.0) -> None:
        super().__init__(location, token=token, timeout=timeout)

    # -- registration ---------------------------------------------------------

    def register_model(
        self,
        name: str,
        version: str,
        model_path: str | os.PathLike[str] | None = None,
        framework: str = "",
        created_by: str = "",
        metrics: dict[str, float] | None = None,
        tags: Sequence[str] | None = None,
        description: str = "",
        params: dict[str, Any] | None = None,
        config: dict[str, Any] | None = None,
        artifact_uri: str | None = None,
    ) -> ModelVersion:
        """Register ``name``/``version``. ``model_path`` is a local file (uploaded and stored
        with its SHA-256) or a URI (s3://, gs://, file://...) recorded as is."""
        path_str = os.fspath(model_path) if model_path is not None else None
        if path_str and path_str.startswith(REFERENCE_SCHEMES) and not artifact_uri:
            artifact_uri, path_str = path_str, None
        spec = RegisterSpec(
            name=name, version=version, framework=framework, created_by=created_by,
            metrics=dict(metrics or {}), tags=list(tags or []), description=description or "",
            params={k: str(v) for k, v in (params or {}).items()}, config=dict(config or {}),
            artifact_uri=artifact_uri or "",
            artifact_filename=Path(path_str).name if path_str else "",
        )
        source = Path(path_str) if path_str else None
        if self._embedded is not None:
            return self._local(lambda r: r.register_model(spec, source_path=source), created_by)  # type: ignore[no-any-return]
        spec.validated()
        if source is not None and not source.is_file():
            raise InvalidArgument(f"model_path is not a readable file: {source}", field="model_path")
        meta = pb.RegisterModelMetadata(
            name=spec.name, version=spec.version, framework=spec.framework,
            created_by=spec.created_by, metrics=spec.metrics, tags=spec.tags,
            description=spec.description, params=spec.params,
            config_json=json.dumps(spec.config), artifact_filename=spec.artifact_filename,
            artifact_uri=spec.artifact_uri,
        )

        def messages() -> Iterator[pb.RegisterModelRequest]:
            yield pb.RegisterModelRequest(metadata=meta)
            if source is not None:
                with open(source, "rb") as fh:
                    while chunk := fh.read(CHUNK):
                        yield pb.RegisterModelRequest(chunk=chunk)

        return c.version_from_pb(self._rpc("RegisterModel", messages(), created_by))

    # -- reads ----------------------------------------------------------------

    def get_model_version(self, name: str, version: str) -> ModelVersion:
        """A version by number, or by alias as ``"@champion"``."""
        if self._embedded is not None:
            return self._local(lambda r: r.get_model_version(name, version))  # type: ignore[no-any-return]
        return c.version_from_pb(self._rpc("GetModelVersion", pb.GetModelVersionRequest(name=name, version=version)))

    get_model = get_model_version

    def get_model_by_alias(self, name: str, alias: str) -> ModelVersion:
        return self.get_model_version(name, "@" + alias)

    def list_models(self, name_prefix: str = "", page_size: int = 0, page_token: str = "") -> Page[RegisteredModel]:
        if self._embedded is not None:
            return self._local(lambda r: r.list_models(name_prefix, page_size, page_token))  # type: ignore[no-any-return]
        resp = self._rpc("ListModels", pb.ListModelsRequest(name_prefix=name_prefix, page_size=page_size, page_token=page_token))
        return Page([c.model_from_pb(m) for m in resp.models], resp.next_page_token)

    def list_versions(self, name: str, stage: StageLike | None = None, page_size: int = 0,
                      page_token: str = "") -> Page[ModelVersion]:
        st = _stage(stage, "stage")
        if self._embedded is not None:
            return self._local(lambda r: r.list_versions(name, st, page_size, page_token))  # type: ignore[no-any-return]
        resp = self._rpc("ListVersions", pb.ListVersionsRequest(
            name=name, stage=c.STAGE_TO_PB[st] if st else 0, page_size=page_size, page_token=page_token))
        return Page([c.version_from_pb(v) for v in resp.versions], resp.next_page_token)

    def get_latest_versions(self, name: str, stages: Sequence[StageLike] | None = None) -> list[ModelVersion]:
        sts = [parse_stage(s, "stages") for s in stages or ()]
        if self._embedded is not None:
            return self._local(lambda r: r.get_latest_versions(name, sts))  # type: ignore[no-any-return]
        resp = self._rpc("GetLatestVersions", pb.GetLatestVersionsRequest(
            name=name, stages=[c.STAGE_TO_PB[s] for s in sts]))
        return [c.version_from_pb(v) for v in resp.versions]

    def get_production_version(self, name: str) -> ModelVersion | None:
        found = self.get_latest_versions(name, [ModelStage.PRODUCTION])
        return found[0] if found else None

    def search_models(
        self,
        name_prefix: str = "",
        tags: Sequence[str] | None = None,
        stage: StageLike | None = None,
        framework: str = "",
        metric_conditions: Sequence[str | MetricCondition] | None = None,
        filter: str = "",
        page_size: int = 0,
        page_token: str = "",
    ) -> Page[ModelVersion]:
        """Versions matching every condition, e.g. ``metric_conditions=["accuracy >= 0.9"]``
        or ``filter="accuracy >= 0.9 and tag = fraud"``."""
        query = SearchQuery(name_prefix=name_prefix, tags=list(tags or []), stage=_stage(stage, "stage"),
                            framework=framework, metric_conditions=_conditions(metric_conditions))
        if self._embedded is not None:
            return self._local(lambda r: r.search(query, filter, page_size, page_token))  # type: ignore[no-any-return]
        resp = self._rpc("SearchModelVersions", pb.SearchModelVersionsRequest(
            name_prefix=query.name_prefix, tags=query.tags,
            stage=c.STAGE_TO_PB[query.stage] if query.stage else 0, framework=query.framework,
            metric_conditions=[pb.MetricCondition(metric=m.metric, op=m.op, value=m.value)
                               for m in query.metric_conditions],
            filter=filter, page_size=page_size, page_token=page_token))
        return Page([c.version_from_pb(v) for v in resp.versions], resp.next_page_token)

    search = search_models

    def compare_models(self, name: str, version1: str, version2: str) -> dict[str, Any]:
        """``result['metrics_comparison'][metric]`` holds ``version1``, ``version2``,
        ``difference`` (v2 - v1) and ``relative_change``; a metric on one side only has
        None for what cannot be computed."""
        if self._embedded is not None:
            return self._local(lambda r: r.compare(name, version1, version2))  # type: ignore[no-any-return]
        return c.comparison_from_pb(self._rpc("CompareModels", pb.CompareModelsRequest(
            name=name, version1=version1, version2=version2)))

    def download_artifact(self, name: str, version: str, destination: str | os.PathLike[str]) -> Path:
        """Write the artifact to ``destination`` (a file, or a folder to put it in), verify
        its SHA-256 and return the path; DataLoss and no file if it does not match."""
        dest = Path(destination)
        tmp: Path | None = None
        try:
            if self._embedded is not None:
                artifact, chunks = self._local(lambda r: r.download(name, version))
                chunk_iter: Iterator[bytes] = chunks
            else:
                stream = self._stream("DownloadArtifact",
                                      pb.DownloadArtifactRequest(name=name, version=version))
                first = next(stream)
                artifact = c.artifact_from_pb(first.artifact)
                chunk_iter = (m.chunk for m in stream)
            if dest.is_dir():
                dest = dest / artifact.filename
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(f".{dest.name}.partial")
            digest = hashlib.sha256()
            with open(tmp, "wb") as fh:
                for chunk in chunk_iter:
                    digest.update(chunk)
                    fh.write(chunk)
            if digest.hexdigest() != artifact.sha256:
                raise DataLoss(f"downloaded artifact sha256 {digest.hexdigest()} != recorded {artifact.sha256}")
            os.replace(tmp, dest)
            tmp = None
            return dest
        finally:
            if tmp is not None:
                tmp.unlink(missing_ok=True)

    # -- changes --------------------------------------------------------------

    def update_model_version(self, name: str, version: str, updated_by: str, *,
                             description: str | None = None, add_tags: Sequence[str] = (),
                             remove_tags: Sequence[str] = (), metrics: dict[str, float] | None = None,
                             params: dict[str, Any] | None = None) -> ModelVersion:
        params_s = {k: str(v) for k, v in (params or {}).items()}
        if self._embedded is not None:
            return self._local(lambda r: r.update_version(  # type: ignore[no-any-return]
                name, version, updated_by, description=description, add_tags=add_tags,
                remove_tags=remove_tags, set_metrics=metrics, set_params=params_s), updated_by)
        req = pb.UpdateModelVersionRequest(name=name, version=version, updated_by=updated_by,
                                           add_tags=list(add_tags), remove_tags=list(remove_tags),
                                           set_metrics=metrics or {}, set_params=params_s)
        if description is not None:
            req.description = description
        return c.version_from_pb(self._rpc("UpdateModelVersion", req, updated_by))

    def delete_model_version(self, name: str, version: str, deleted_by: str) -> None:
        if self._embedded is not None:
            self._local(lambda r: r.delete_version(name, version, deleted_by), deleted_by)
            return
        self._rpc("DeleteModelVersion", pb.DeleteModelVersionRequest(
            name=name, version=version, deleted_by=deleted_by), deleted_by)

    def transition_stage(self, name: str, version: str, target_stage: StageLike, actor: str,
                         reason: str = "") -> ModelVersion:
        """Move to DEVELOPMENT or ARCHIVED; STAGING and PRODUCTION need an approval."""
        st = parse_stage(target_stage, "target_stage")
        if self._embedded is not None:
            return self._local(lambda r: r.transition_stage(name, version, st, actor, reason), actor)  # type: ignore[no-any-return]
        return c.version_from_pb(self._rpc("TransitionStage", pb.TransitionStageRequest(
            name=name, version=version, target_stage=c.STAGE_TO_PB[st], actor=actor, reason=reason), actor))

    def archive_model(self, name: str, version: str, actor: str, reason: str = "") -> ModelVersion:
        return self.transition_stage(name, version, ModelStage.ARCHIVED, actor, reason)

    # -- approvals ------------------------------------------------------------

    def request_promotion(self, name: str, version: str, target_stage: StageLike, requested_by: str,
                          justification: str = "", reviewers: Sequence[str] | None = None,
                          required_approvals: int = 1) -> PromotionRequest:
        st = parse_stage(target_stage, "target_stage")
        revs = [reviewers] if isinstance(reviewers, str) else list(reviewers or [])
        if self._embedded is not None:
            return self._local(lambda r: r.request_promotion(  # type: ignore[no-any-return]
                name, version, st, requested_by, justification, revs, required_approvals), requested_by)
        return c.request_from_pb(self._rpc("RequestPromotion", pb.RequestPromotionRequest(
            name=name, version=version, target_stage=c.STAGE_TO_PB[st], requested_by=requested_by,
            justification=justification, reviewers=revs, required_approvals=required_approvals), requested_by))

    def approve_promotion(self, name: str, version: str, approver: str, comment: str = "",
                          request_id: str = "") -> PromotionRequest:
        if self._embedded is not None:
            return self._local(lambda r: r.approve_promotion(name, version, approver, comment, request_id), approver)  # type: ignore[no-any-return]
        return c.request_from_pb(self._rpc("ApprovePromotion", pb.ApprovePromotionRequest(
            name=name, version=version, approver=approver, comment=comment, request_id=request_id), approver))

    def reject_promotion(self, name: str, version: str, rejector: str, comment: str = "",
                         request_id: str = "") -> PromotionRequest:
        if self._embedded is not None:
            return self._local(lambda r: r.reject_promotion(name, version, rejector, comment, request_id), rejector)  # type: ignore[no-any-return]
        return c.request_from_pb(self._rpc("RejectPromotion", pb.RejectPromotionRequest(
            name=name, version=version, rejector=rejector, comment=comment, request_id=request_id), rejector))

    def cancel_promotion(self, name: str, version: str, cancelled_by: str, reason: str = "",
                         request_id: str = "") -> PromotionRequest:
        if self._embedded is not None:
            return self._local(lambda r: r.cancel_promotion(name, version, cancelled_by, reason, request_id), cancelled_by)  # type: ignore[no-any-return]
        return c.request_from_pb(self._rpc("CancelPromotion", pb.CancelPromotionRequest(
            name=name, version=version, cancelled_by=cancelled_by, reason=reason, request_id=request_id), cancelled_by))

    def list_pending_approvals(self, reviewer: str = "", name: str = "") -> list[PromotionRequest]:
        """Pending requests; with ``reviewer``, only those that person may still approve."""
        if self._embedded is not None:
            return self._local(lambda r: r.list_pending(reviewer, name))  # type: ignore[no-any-return]
        resp = self._rpc("ListPendingApprovals", pb.ListPendingApprovalsRequest(reviewer=reviewer, name=name))
        return [c.request_from_pb(r) for r in resp.requests]

    # -- aliases and history --------------------------------------------------

    def set_alias(self, name: str, alias: str, version: str, actor: str, reason: str = "") -> AliasChange:
        if self._embedded is not None:
            return self._local(lambda r: r.set_alias(name, alias, version, actor, reason), actor)  # type: ignore[no-any-return]
        return c.alias_from_pb(self._rpc("SetAlias", pb.SetAliasRequest(
            name=name, alias=alias, version=version, actor=actor, reason=reason), actor))

    def delete_alias(self, name: str, alias: str, actor: str, reason: str = "") -> AliasChange:
        if self._embedded is not None:
            return self._local(lambda r: r.delete_alias(name, alias, actor, reason), actor)  # type: ignore[no-any-return]
        return c.alias_from_pb(self._rpc("DeleteAlias", pb.DeleteAliasRequest(
            name=name, alias=alias, actor=actor, reason=reason), actor))

    def rollback_alias(self, name: str, alias: str, actor: str, reason: str = "") -> AliasChange:
        """Point ``alias`` back at the version it had before its last move."""
        if self._embedded is not None:
            return self._local(lambda r: r.rollback_alias(name, alias, actor, reason), actor)  # type: ignore[no-any-return]
        return c.alias_from_pb(self._rpc("RollbackAlias", pb.RollbackAliasRequest(
            name=name, alias=alias, actor=actor, reason=reason), actor))

    def get_history(self, name: str, version: str = "") -> list[HistoryEntry]:
        """Every stage change and alias move of a model (or one version), oldest first."""
        if self._embedded is not None:
            return self._local(lambda r: r.history(name, version))  # type: ignore[no-any-return]
        resp = self._rpc("GetHistory", pb.GetHistoryRequest(name=name, version=version))
        return [c.history_from_pb(h) for h in resp.entries]
