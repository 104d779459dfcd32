"""Model registry: versions with metrics and artifacts, approval-gated stages, aliases.

``ModelRegistry("./models")`` opens the embedded store in that folder (SQLite file plus
artifacts under ``models/<name>/<version>/``); ``ModelRegistry("grpc://HOST:PORT")``
talks to a control plane. Both behave identically and raise the same exceptions
(:mod:`neural.mlops.errors`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeAlias

from neural.mlops._remote.registry import RemoteRegistry
from neural.mlops._runtime import ServiceClient
from neural.mlops.server.errors import DataLoss, InvalidArgument
from neural.mlops.server.registry.artifacts import REFERENCE_SCHEMES
from neural.mlops.server.registry.lineage import (
    DataLike,
    DataReference,
    Lineage,
    Signature,
    SignatureLike,
    TensorDatatype,
    TensorSpec,
    data_reference,
)
from neural.mlops.server.registry.lineage import signature as _signature
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
from neural.mlops.server.registry.registration import RegisterSpec
from neural.mlops.server.registry.search import (
    MetricCondition,
    SearchQuery,
    parse_condition,
    parse_stage,
)
from neural.mlops.server.registry.service import RegistryService

__all__ = [
    "AliasChange",
    "Artifact",
    "DataReference",
    "HistoryEntry",
    "Lineage",
    "ModelMetadata",
    "ModelRegistry",
    "ModelStage",
    "ModelVersion",
    "Page",
    "PromotionRequest",
    "PromotionStatus",
    "RegisteredModel",
    "Signature",
    "TensorDatatype",
    "TensorSpec",
]

StageLike: TypeAlias = ModelStage | str


def _stage(value: StageLike | None, field: str) -> ModelStage | None:
    return None if value is None else parse_stage(value, field)


def _lineage(lineage: Lineage | dict[str, Any] | None, **fields: Any) -> Lineage:
    """``lineage`` with the keyword fields given (not None) set; a field given both ways is
    refused rather than silently picked."""
    base = lineage if isinstance(lineage, Lineage) else Lineage.from_dict(lineage or {})
    given = {k: x for k, x in fields.items() if x is not None}
    for key in given:
        if base.to_dict()[key] != Lineage().to_dict()[key]:
            raise InvalidArgument(f"{key} is given both in lineage= and as a keyword",
                                  field=f"lineage.{key}")
    if "training_data" in given:
        given["training_data"] = [data_reference(d) for d in given["training_data"]]
    if "signature" in given:
        given["signature"] = _signature(given["signature"])
    return replace(base, **given)


def _conditions(values: Sequence[str | MetricCondition] | None) -> list[MetricCondition]:
    return [v if isinstance(v, MetricCondition) else parse_condition(v) for v in values or ()]


class ModelRegistry(ServiceClient[RegistryService | RemoteRegistry]):
    """The seed's registry API, embedded or remote."""

    service = "registry"
    remote = RemoteRegistry

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
        lineage: Lineage | dict[str, Any] | None = None,
        *,
        source_run_id: str | None = None,
        source_uri: str | None = None,
        code_revision: str | None = None,
        training_data: Sequence[DataLike] | None = None,
        parent_version: str | None = None,
        signature: SignatureLike | None = None,
    ) -> ModelVersion:
        """Register ``name``/``version``. ``model_path`` is a local file (uploaded and stored
        with its SHA-256) or a URI (s3://, gs://, file://...) recorded as is.

        Where the version came from goes in ``lineage=Lineage(...)`` or in the keywords
        of the same names: the training run, the git commit, the training data
        (``"s3://..."`` or ``("s3://...", "sha256:...")``), the parent version (``"1.0.0"``
        or ``"@champion"``) and the input/output signature. It cannot be changed later."""
        path_str = os.fspath(model_path) if model_path is not None else None
        if path_str and path_str.startswith(REFERENCE_SCHEMES) and not artifact_uri:
            artifact_uri, path_str = path_str, None
        spec = RegisterSpec(
            name=name, version=version, framework=framework, created_by=created_by,
            metrics=dict(metrics or {}), tags=list(tags or []), description=description or "",
            params={k: str(v) for k, v in (params or {}).items()}, config=dict(config or {}),
            artifact_uri=artifact_uri or "",
            artifact_filename=Path(path_str).name if path_str else "",
            lineage=_lineage(lineage, source_run_id=source_run_id, source_uri=source_uri,
                             code_revision=code_revision, training_data=training_data,
                             parent_version=parent_version, signature=signature),
        )
        source = Path(path_str) if path_str else None
        return self._call(lambda r: r.register_model(spec, source_path=source), created_by)

    # -- reads ----------------------------------------------------------------

    def get_model_version(self, name: str, version: str) -> ModelVersion:
        """A version by number, or by alias as ``"@champion"``."""
        return self._call(lambda r: r.get_model_version(name, version))

    get_model = get_model_version

    def get_model_by_alias(self, name: str, alias: str) -> ModelVersion:
        return self.get_model_version(name, "@" + alias)

    def list_models(self, name_prefix: str = "", page_size: int = 0,
                    page_token: str = "") -> Page[RegisteredModel]:
        return self._call(lambda r: r.list_models(name_prefix, page_size, page_token))

    def list_versions(self, name: str, stage: StageLike | None = None, page_size: int = 0,
                      page_token: str = "", order_by: str = "") -> Page[ModelVersion]:
        """A page of the model's versions in registration order, or in ``order_by``
        (``"metrics.accuracy desc"``, ``"created desc"``, ``"version asc"``; versions
        without the metric last); pass the page's ``next_page_token`` with the same order."""
        st = _stage(stage, "stage")
        return self._call(lambda r: r.list_versions(name, st, page_size, page_token, order_by))

    def get_latest_versions(self, name: str,
                            stages: Sequence[StageLike] | None = None) -> list[ModelVersion]:
        sts = [parse_stage(s, "stages") for s in stages or ()]
        return self._call(lambda r: r.get_latest_versions(name, sts))

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
        filter: str = "",  # noqa: A002 (the documented keyword)
        page_size: int = 0,
        page_token: str = "",
        *,
        source_run_id: str = "",
        code_revision: str = "",
        parent_version: str = "",
        training_data_uri: str = "",
        training_data_digest: str = "",
        order_by: str = "",
    ) -> Page[ModelVersion]:
        """Versions matching every condition, e.g. ``metric_conditions=["accuracy >= 0.9"]``
        or ``filter="accuracy >= 0.9 and tag = fraud"``; by lineage with the keywords or
        ``filter="run_id = X and code_revision = 9fceb02 and parent = 1.0.0 and data =
        s3://..."`` (``code_revision`` matches a prefix of the commit)."""
        query = SearchQuery(name_prefix=name_prefix, tags=list(tags or []),
                            stage=_stage(stage, "stage"), framework=framework,
                            metric_conditions=_conditions(metric_conditions),
                            source_run_id=source_run_id, code_revision=code_revision,
                            parent_version=parent_version, training_data_uri=training_data_uri,
                            training_data_digest=training_data_digest, order_by=order_by)
        return self._call(lambda r: r.search(query, filter, page_size, page_token))

    search = search_models

    def compare_models(self, name: str, version1: str, version2: str) -> dict[str, Any]:
        """``result['metrics_comparison'][metric]`` holds ``version1``, ``version2``,
        ``difference`` (v2 - v1) and ``relative_change``; a metric on one side only has
        None for what cannot be computed. ``result['lineage']`` holds both versions'
        lineages (``version1``, ``version2``, as dicts) and the names of the fields that
        differ (``changed``)."""
        return self._call(lambda r: r.compare(name, version1, version2))

    def download_artifact(self, name: str, version: str,
                          destination: str | os.PathLike[str]) -> Path:
        """Write the artifact to ``destination`` (a file, or a folder to put it in), verify
        its SHA-256 and return the path; DataLoss and no file if it does not match."""
        dest = Path(destination)
        artifact, chunks = self._call(lambda r: r.download(name, version))
        if dest.is_dir():
            dest = dest / artifact.filename
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.partial")
        try:
            digest = hashlib.sha256()
            with open(tmp, "wb") as fh:
                for chunk in chunks:
                    digest.update(chunk)
                    fh.write(chunk)
            if digest.hexdigest() != artifact.sha256:
                raise DataLoss(f"downloaded artifact sha256 {digest.hexdigest()} "
                               f"!= recorded {artifact.sha256}")
            os.replace(tmp, dest)
            return dest
        finally:
            tmp.unlink(missing_ok=True)

    # -- changes --------------------------------------------------------------

    def update_model_version(self, name: str, version: str, updated_by: str, *,
                             description: str | None = None, add_tags: Sequence[str] = (),
                             remove_tags: Sequence[str] = (),
                             metrics: dict[str, float] | None = None,
                             params: dict[str, Any] | None = None) -> ModelVersion:
        params_s = {k: str(v) for k, v in (params or {}).items()}
        return self._call(lambda r: r.update_version(
            name, version, updated_by, description=description, add_tags=add_tags,
            remove_tags=remove_tags, set_metrics=metrics, set_params=params_s), updated_by)

    def delete_model_version(self, name: str, version: str, deleted_by: str) -> None:
        self._call(lambda r: r.delete_version(name, version, deleted_by), deleted_by)

    def transition_stage(self, name: str, version: str, target_stage: StageLike, actor: str,
                         reason: str = "") -> ModelVersion:
        """Move to DEVELOPMENT or ARCHIVED; STAGING and PRODUCTION need an approval."""
        st = parse_stage(target_stage, "target_stage")
        return self._call(lambda r: r.transition_stage(name, version, st, actor, reason), actor)

    def archive_model(self, name: str, version: str, actor: str, reason: str = "") -> ModelVersion:
        return self.transition_stage(name, version, ModelStage.ARCHIVED, actor, reason)

    # -- approvals ------------------------------------------------------------

    def request_promotion(self, name: str, version: str, target_stage: StageLike,
                          requested_by: str, justification: str = "",
                          reviewers: Sequence[str] | None = None,
                          required_approvals: int = 1) -> PromotionRequest:
        st = parse_stage(target_stage, "target_stage")
        revs = [reviewers] if isinstance(reviewers, str) else list(reviewers or [])
        return self._call(lambda r: r.request_promotion(
            name, version, st, requested_by, justification, revs, required_approvals),
            requested_by)

    def approve_promotion(self, name: str, version: str, approver: str, comment: str = "",
                          request_id: str = "") -> PromotionRequest:
        return self._call(
            lambda r: r.approve_promotion(name, version, approver, comment, request_id), approver)

    def reject_promotion(self, name: str, version: str, rejector: str, comment: str = "",
                         request_id: str = "") -> PromotionRequest:
        return self._call(
            lambda r: r.reject_promotion(name, version, rejector, comment, request_id), rejector)

    def cancel_promotion(self, name: str, version: str, cancelled_by: str, reason: str = "",
                         request_id: str = "") -> PromotionRequest:
        return self._call(
            lambda r: r.cancel_promotion(name, version, cancelled_by, reason, request_id),
            cancelled_by)

    def list_pending_approvals(self, reviewer: str = "", name: str = "") -> list[PromotionRequest]:
        """Pending requests; with ``reviewer``, only those that person may still approve."""
        return self._call(lambda r: r.list_pending(reviewer, name))

    # -- aliases and history --------------------------------------------------

    def set_alias(self, name: str, alias: str, version: str, actor: str,
                  reason: str = "") -> AliasChange:
        return self._call(lambda r: r.set_alias(name, alias, version, actor, reason), actor)

    def delete_alias(self, name: str, alias: str, actor: str, reason: str = "") -> AliasChange:
        return self._call(lambda r: r.delete_alias(name, alias, actor, reason), actor)

    def rollback_alias(self, name: str, alias: str, actor: str, reason: str = "") -> AliasChange:
        """Point ``alias`` back at the version it had before its last move."""
        return self._call(lambda r: r.rollback_alias(name, alias, actor, reason), actor)

    def get_history(self, name: str, version: str = "") -> list[HistoryEntry]:
        """Every stage change and alias move of a model (or one version), oldest first."""
        return self._call(lambda r: r.history(name, version))
