"""RegistryService: the transport-free model registry.

Every state change is one :meth:`Database.change` transaction that also writes its audit
event(s) and, for stage and alias moves, an append-only history row.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from neural.mlops.server import validation as v
from neural.mlops.server.audit.events import EventType
from neural.mlops.server.clock import Clock, SystemClock, from_us, to_us
from neural.mlops.server.errors import (
    AlreadyExists,
    DataLoss,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from neural.mlops.server.registry.artifacts import (
    ArtifactStore,
    StagedFile,
    validate_filename,
    validate_reference,
)
from neural.mlops.server.registry.model import (
    GATED_STAGES,
    AliasChange,
    Artifact,
    HistoryEntry,
    ModelStage,
    ModelVersion,
    Page,
    PromotionRequest,
    PromotionStatus,
    PromotionVote,
    RegisteredModel,
)
from neural.mlops.server.registry import store
from neural.mlops.server.registry.port import RegistryPort, StoreRegistryPort
from neural.mlops.server.registry.stages import Stages
from neural.mlops.server.registry.search import SearchQuery, apply_filter, where_clauses
from neural.mlops.server.storage import Change, Database
from neural.mlops.server.storage.schema import (
    model_aliases,
    model_history,
    model_version_metrics,
    model_version_tags,
    model_versions,
    promotion_requests,
    promotion_votes,
    registered_models,
)

log = structlog.get_logger(__name__)

DEFAULT_PAGE = 100
MAX_PAGE = 1000
MAX_TAGS = 100
MAX_METRICS = 500


@dataclass(slots=True)
class RegisterSpec:
    """Everything register_model accepts, validated by :meth:`validated`."""

    name: str
    version: str
    framework: str = ""
    created_by: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    description: str = ""
    params: dict[str, str] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    artifact_filename: str = ""
    artifact_uri: str = ""
    expected_sha256: str = ""

    def validated(self) -> RegisterSpec:
        v.name(self.name, "name")
        v.name(self.version, "version")
        v.actor(self.created_by, "created_by")
        if self.framework:
            v.name(self.framework, "framework")
        v.text(self.description, "description")
        if not isinstance(self.metrics, dict) or len(self.metrics) > MAX_METRICS:
            raise InvalidArgument("metrics must be a mapping of at most 500 numbers", field="metrics")
        self.metrics = {v.name(k, "metrics"): v.finite(x, f"metrics.{k}") for k, x in self.metrics.items()}
        if isinstance(self.tags, str) or len(self.tags) > MAX_TAGS:
            raise InvalidArgument("tags must be a list of at most 100 strings", field="tags")
        self.tags = sorted({v.text(t, "tags", limit=256) for t in self.tags if t})
        self.params = {v.name(k, "params"): v.text(str(x), f"params.{k}", limit=4096) for k, x in self.params.items()}
        try:
            json.dumps(self.config, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise InvalidArgument(f"config must be JSON-serialisable: {exc}", field="config") from None
        if self.artifact_uri:
            validate_reference(self.artifact_uri)
        if self.artifact_filename:
            validate_filename(self.artifact_filename)
        return self


@dataclass(frozen=True, slots=True)
class _VersionRow:
    id: int
    name: str
    version: str
    stage: ModelStage

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"


def encode_token(last_key: str | int) -> str:
    return base64.urlsafe_b64encode(json.dumps(last_key).encode()).decode()


def decode_token(token: str) -> Any:
    if not token:
        return None
    try:
        return json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, TypeError):
        raise InvalidArgument("page_token is not valid", field="page_token") from None


def page_size(value: int) -> int:
    if value < 0:
        raise InvalidArgument("page_size must not be negative", field="page_size")
    return min(value or DEFAULT_PAGE, MAX_PAGE)


class RegistryService:
    def __init__(self, db: Database, root: Path, *, clock: Clock | None = None) -> None:
        self.db = db
        self.clock = clock or SystemClock()
        self.artifacts = ArtifactStore(root)
        self.artifacts.sweep()
        self.stages = Stages(db, self.clock)
        self.port: RegistryPort = StoreRegistryPort(self.stages)

    # ------------------------------------------------------------------ register

    async def register_model(
        self,
        spec: RegisterSpec,
        *,
        chunks: AsyncIterator[bytes] | None = None,
        source_path: Path | None = None,
    ) -> ModelVersion:
        """Register ``spec`` with its artifact from ``chunks`` (remote upload), a local file
        ``source_path`` (embedded), or ``spec.artifact_uri`` (a reference recorded as is)."""
        spec.validated()
        if await self._exists(spec.name, spec.version):
            raise AlreadyExists(f"model version {spec.name}:{spec.version} already exists")
        staged: StagedFile | None = None
        if spec.artifact_uri:
            if chunks is not None or source_path is not None:
                raise InvalidArgument("give either an artifact URI or artifact bytes, not both",
                                      field="model_path")
        elif source_path is not None:
            staged = await self.artifacts.stage_path(source_path)
            spec.artifact_filename = spec.artifact_filename or source_path.name
        elif chunks is not None:
            staged = await self.artifacts.stage_chunks(chunks)
            if not spec.artifact_filename:
                raise InvalidArgument("artifact_filename is required with an upload",
                                      field="artifact_filename")
        installed: Path | None = None
        try:
            if staged is not None and spec.expected_sha256 and staged.sha256 != spec.expected_sha256:
                raise DataLoss(
                    f"upload checksum mismatch: received sha256 {staged.sha256}, "
                    f"expected {spec.expected_sha256}"
                )
            now = to_us(self.clock.now())
            async with self.db.change() as ch:
                conn = ch.conn
                if await self._version_id(conn, spec.name, spec.version) is not None:
                    raise AlreadyExists(f"model version {spec.name}:{spec.version} already exists")
                model_row = (
                    await conn.execute(
                        sa.select(registered_models.c.name).where(registered_models.c.name == spec.name)
                    )
                ).first()
                if model_row is None:
                    await conn.execute(
                        registered_models.insert().values(name=spec.name, created_us=now, updated_us=now)
                    )
                else:
                    await conn.execute(
                        registered_models.update()
                        .where(registered_models.c.name == spec.name)
                        .values(updated_us=now)
                    )
                if staged is not None:
                    uri = self.artifacts.relative(spec.name, spec.version, spec.artifact_filename)
                    artifact = Artifact(uri, staged.sha256, staged.size, spec.artifact_filename, True)
                else:
                    artifact = Artifact(spec.artifact_uri, "", 0, "", False)
                result = await conn.execute(
                    model_versions.insert().values(
                        name=spec.name,
                        version=spec.version,
                        stage=ModelStage.DEVELOPMENT.value,
                        framework=spec.framework,
                        description=spec.description,
                        created_by=spec.created_by,
                        created_us=now,
                        updated_us=now,
                        params=json.dumps(spec.params, sort_keys=True),
                        config_json=json.dumps(spec.config, sort_keys=True),
                        artifact_uri=artifact.uri,
                        artifact_sha256=artifact.sha256,
                        artifact_size=artifact.size_bytes,
                        artifact_filename=artifact.filename,
                        artifact_stored=artifact.stored,
                    )
                )
                vid = result.inserted_primary_key[0]
                if spec.metrics:
                    await conn.execute(
                        model_version_metrics.insert(),
                        [{"version_id": vid, "metric": k, "value": x} for k, x in spec.metrics.items()],
                    )
                if spec.tags:
                    await conn.execute(
                        model_version_tags.insert(), [{"version_id": vid, "tag": t} for t in spec.tags]
                    )
                ch.record(
                    EventType.MODEL_REGISTERED,
                    resource_type="model",
                    resource_id=f"{spec.name}:{spec.version}",
                    action="register",
                    actor=spec.created_by,
                    details={
                        "framework": spec.framework,
                        "metrics": spec.metrics,
                        "tags": spec.tags,
                        "artifact": {"uri": artifact.uri, "sha256": artifact.sha256,
                                     "size_bytes": artifact.size_bytes},
                    },
                )
                if staged is not None:
                    installed = self.artifacts.install(staged, spec.name, spec.version,
                                                       spec.artifact_filename)
                version = ModelVersion(
                    name=spec.name, version=spec.version, stage=ModelStage.DEVELOPMENT,
                    framework=spec.framework, description=spec.description,
                    created_by=spec.created_by, created_at=from_us(now), updated_at=from_us(now),
                    metrics=dict(spec.metrics), tags=list(spec.tags), params=dict(spec.params),
                    config=json.loads(json.dumps(spec.config, sort_keys=True)), artifact=artifact,
                    aliases=[],
                )
        except BaseException:
            if staged is not None:
                self.artifacts.discard(staged)
            if installed is not None:
                self.artifacts.remove_version(spec.name, spec.version)
            raise
        log.info("model registered", model=spec.name, version=spec.version)
        return version

    # ------------------------------------------------------------------ reads

    async def get_model_version(self, name: str, version: str) -> ModelVersion:
        v.name(name, "name")
        async with self.db.read() as conn:
            vid = await self._resolve(conn, name, version)
            return await self._load(conn, vid)

    async def list_models(self, name_prefix: str = "", page_size_: int = 0,
                          page_token: str = "") -> Page[RegisteredModel]:
        size = page_size(page_size_)
        after = decode_token(page_token)
        rm = registered_models
        q = sa.select(rm).order_by(rm.c.name).limit(size + 1)
        if name_prefix:
            q = q.where(rm.c.name.startswith(name_prefix, autoescape=True))
        if after is not None:
            q = q.where(rm.c.name > str(after))
        async with self.db.read() as conn:
            rows = (await conn.execute(q)).all()
            models = [await self._registered_model(conn, r) for r in rows[:size]]
        token = encode_token(rows[size - 1].name) if len(rows) > size else ""
        return Page(models, token)

    async def list_versions(self, name: str, stage: ModelStage | None = None,
                            page_size_: int = 0, page_token: str = "") -> Page[ModelVersion]:
        v.name(name, "name")
        async with self.db.read() as conn:
            await self._require_model(conn, name)
        query = SearchQuery(stage=stage)
        return await self._page(query, page_size_, page_token, extra=[model_versions.c.name == name])

    async def get_latest_versions(self, name: str,
                                  stages: Sequence[ModelStage] = ()) -> list[ModelVersion]:
        v.name(name, "name")
        mv = model_versions
        async with self.db.read() as conn:
            await self._require_model(conn, name)
            q = (
                sa.select(sa.func.max(mv.c.id))
                .where(mv.c.name == name)
                .group_by(mv.c.stage)
            )
            if stages:
                q = q.where(mv.c.stage.in_([s.value for s in stages]))
            ids = sorted(r[0] for r in (await conn.execute(q)).all())
            return [await self._load(conn, i) for i in ids]

    async def search(self, query: SearchQuery, filter_text: str = "", page_size_: int = 0,
                     page_token: str = "") -> Page[ModelVersion]:
        if filter_text:
            apply_filter(query, filter_text)
        return await self._page(query, page_size_, page_token)

    async def _page(self, query: SearchQuery, page_size_: int, page_token: str,
                    extra: Sequence[sa.ColumnElement[bool]] = ()) -> Page[ModelVersion]:
        size = page_size(page_size_)
        after = decode_token(page_token)
        mv = model_versions
        q = sa.select(mv.c.id).where(*where_clauses(query), *extra).order_by(mv.c.id).limit(size + 1)
        if after is not None:
            if not isinstance(after, int):
                raise InvalidArgument("page_token is not valid", field="page_token")
            q = q.where(mv.c.id > after)
        async with self.db.read() as conn:
            ids = [r[0] for r in (await conn.execute(q)).all()]
            versions = await self._load_many(conn, ids[:size])
        token = encode_token(ids[size - 1]) if len(ids) > size else ""
        return Page(versions, token)

    async def download(self, name: str, version: str) -> tuple[Artifact, Iterator[bytes]]:
        """The artifact and an iterator over its verified bytes (DataLoss at the end if the
        stored file no longer matches its checksum)."""
        mvers = await self.get_model_version(name, version)
        art = mvers.artifact
        if not art.stored:
            raise FailedPrecondition(
                f"{name}:{version} references an external artifact ({art.uri}); fetch it from there"
            )
        return art, self.artifacts.open_verified(art.uri, art.sha256)

    async def compare(self, name: str, version1: str, version2: str) -> dict[str, Any]:
        a = await self.get_model_version(name, version1)
        b = await self.get_model_version(name, version2)
        metrics: dict[str, dict[str, float | None]] = {}
        for key in sorted(set(a.metrics) | set(b.metrics)):
            x, y = a.metrics.get(key), b.metrics.get(key)
            diff = y - x if x is not None and y is not None else None
            rel = diff / abs(x) if diff is not None and x else None
            metrics[key] = {"version1": x, "version2": y, "difference": diff, "relative_change": rel}
        params = {
            k: {"version1": a.params.get(k), "version2": b.params.get(k)}
            for k in sorted(set(a.params) | set(b.params))
            if a.params.get(k) != b.params.get(k)
        }
        return {
            "name": name,
            "version1": a.version,
            "version2": b.version,
            "metrics_comparison": metrics,
            "tags_only_in_version1": sorted(set(a.tags) - set(b.tags)),
            "tags_only_in_version2": sorted(set(b.tags) - set(a.tags)),
            "params_diff": params,
            "framework": {"version1": a.framework, "version2": b.framework},
            "stage": {"version1": a.stage.value, "version2": b.stage.value},
            "size_bytes": {"version1": a.artifact.size_bytes, "version2": b.artifact.size_bytes},
        }

    # ------------------------------------------------------------------ updates

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
        v.actor(updated_by, "updated_by")
        if description is not None:
            v.text(description, "description")
        metrics = {v.name(k, "set_metrics"): v.finite(x, f"set_metrics.{k}")
                   for k, x in (set_metrics or {}).items()}
        params = {v.name(k, "set_params"): v.text(str(x), f"set_params.{k}", limit=4096)
                  for k, x in (set_params or {}).items()}
        add = sorted({v.text(t, "add_tags", limit=256) for t in add_tags if t})
        async with self.db.change() as ch:
            conn = ch.conn
            vid = await self._resolve(conn, name, version)
            before = await self._load(conn, vid)
            values: dict[str, Any] = {"updated_us": to_us(self.clock.now())}
            if description is not None:
                values["description"] = description
            if params:
                values["params"] = json.dumps({**before.params, **params}, sort_keys=True)
            await conn.execute(model_versions.update().where(model_versions.c.id == vid).values(**values))
            for key, val in metrics.items():
                await _upsert_metric(conn, vid, key, val)
            tags = model_version_tags
            if remove_tags:
                await conn.execute(tags.delete().where(tags.c.version_id == vid, tags.c.tag.in_(list(remove_tags))))
            new = [t for t in add if t not in before.tags]
            if new:
                await conn.execute(tags.insert(), [{"version_id": vid, "tag": t} for t in new])
            after = await self._load(conn, vid)
            ch.record(
                EventType.MODEL_UPDATED,
                resource_type="model",
                resource_id=f"{name}:{after.version}",
                action="update",
                actor=updated_by,
                details=_diff(before, after),
            )
        return after

    async def delete_version(self, name: str, version: str, deleted_by: str) -> None:
        v.actor(deleted_by, "deleted_by")
        async with self.db.change() as ch:
            conn = ch.conn
            vid = await self._resolve(conn, name, version)
            mvers = await self._load(conn, vid)
            if mvers.stage is ModelStage.PRODUCTION:
                raise FailedPrecondition(
                    f"{name}:{mvers.version} is in PRODUCTION and cannot be deleted; archive it first"
                )
            if mvers.aliases:
                raise FailedPrecondition(
                    f"{name}:{mvers.version} is the target of alias(es) {', '.join(mvers.aliases)}; "
                    "move or delete them first"
                )
            pr = promotion_requests
            await conn.execute(
                pr.update()
                .where(pr.c.name == name, pr.c.version == mvers.version,
                       pr.c.status == PromotionStatus.PENDING.value)
                .values(status=PromotionStatus.CANCELLED.value, decided_by=deleted_by,
                        decision_comment="version deleted", decided_us=to_us(self.clock.now()))
            )
            await conn.execute(model_version_metrics.delete().where(model_version_metrics.c.version_id == vid))
            await conn.execute(model_version_tags.delete().where(model_version_tags.c.version_id == vid))
            await conn.execute(model_versions.delete().where(model_versions.c.id == vid))
            ch.record(
                EventType.MODEL_DELETED,
                resource_type="model",
                resource_id=f"{name}:{mvers.version}",
                action="delete",
                actor=deleted_by,
                details={"stage": mvers.stage.value, "artifact": mvers.artifact.uri},
            )
            if mvers.artifact.stored:
                ch.on_commit(lambda: self.artifacts.remove_version(name, mvers.version))

    async def transition_stage(self, name: str, version: str, target: ModelStage, actor: str,
                               reason: str = "") -> ModelVersion:
        """Move to DEVELOPMENT or ARCHIVED directly; STAGING/PRODUCTION need an approval."""
        v.actor(actor, "actor")
        v.text(reason, "reason")
        if target in GATED_STAGES:
            raise FailedPrecondition(
                f"entering {target.value.upper()} needs an approved promotion request "
                "(request_promotion, then approve_promotion by someone else)"
            )
        async with self.db.change() as ch:
            mvers = await self._row(ch.conn, name, version)
            if mvers.stage is target:
                raise FailedPrecondition(f"{name}:{mvers.version} is already {target.value.upper()}")
            await self._set_stage(ch, mvers, target, actor, reason, "")
            return await self._load(ch.conn, mvers.id)

    # ------------------------------------------------------------------ promotions

    async def request_promotion(
        self,
        name: str,
        version: str,
        target_stage: ModelStage,
        requested_by: str,
        justification: str = "",
        reviewers: Sequence[str] = (),
        required_approvals: int = 1,
    ) -> PromotionRequest:
        v.actor(requested_by, "requested_by")
        v.text(justification, "justification")
        if target_stage not in GATED_STAGES:
            raise InvalidArgument(
                f"target_stage must be STAGING or PRODUCTION, got {target_stage.value.upper()} "
                "(use transition_stage for other stages)",
                field="target_stage",
            )
        if isinstance(reviewers, str):
            reviewers = [reviewers]
        revs = sorted({v.actor(r, "reviewers") for r in reviewers})
        if isinstance(required_approvals, bool) or not isinstance(required_approvals, int) or required_approvals < 1:
            raise InvalidArgument("required_approvals must be an integer >= 1", field="required_approvals")
        eligible = [r for r in revs if r != requested_by]
        if revs and required_approvals > len(eligible):
            raise InvalidArgument(
                f"required_approvals={required_approvals} but only {len(eligible)} named reviewer(s) "
                "other than the requester can approve",
                field="required_approvals",
            )
        async with self.db.change() as ch:
            conn = ch.conn
            mvers = await self._row(conn, name, version)
            if mvers.stage is target_stage:
                raise FailedPrecondition(f"{name}:{mvers.version} is already {target_stage.value.upper()}")
            pending = await self._pending(conn, name, mvers.version)
            if pending is not None:
                raise FailedPrecondition(
                    f"{name}:{mvers.version} already has a pending promotion request {pending}"
                )
            rid = uuid.uuid4().hex
            now = to_us(self.clock.now())
            await conn.execute(
                promotion_requests.insert().values(
                    request_id=rid, name=name, version=mvers.version,
                    target_stage=target_stage.value, from_stage=mvers.stage.value,
                    requested_by=requested_by, justification=justification,
                    reviewers=json.dumps(revs), required_approvals=required_approvals,
                    status=PromotionStatus.PENDING.value, decided_by="", decision_comment="",
                    created_us=now, decided_us=None,
                )
            )
            ch.record(
                EventType.PROMOTION_REQUESTED,
                resource_type="model",
                resource_id=f"{name}:{mvers.version}",
                action="request_promotion",
                actor=requested_by,
                details={"request_id": rid, "target_stage": target_stage.value,
                         "from_stage": mvers.stage.value, "reviewers": revs,
                         "required_approvals": required_approvals, "justification": justification},
            )
            return PromotionRequest(
                request_id=rid, name=name, version=mvers.version, target_stage=target_stage,
                from_stage=mvers.stage, requested_by=requested_by, justification=justification,
                reviewers=revs, required_approvals=required_approvals,
                status=PromotionStatus.PENDING, approvals=[], decided_by="", decision_comment="",
                created_at=from_us(now), decided_at=None,
            )

    async def approve_promotion(self, name: str, version: str, approver: str, comment: str = "",
                                request_id: str = "") -> PromotionRequest:
        v.actor(approver, "approver")
        v.text(comment, "comment")
        async with self.db.change() as ch:
            conn = ch.conn
            req = await self._decidable(conn, name, version, request_id)
            if approver == req.requested_by:
                raise PermissionDenied(
                    f"{approver} requested this promotion and may not approve it (separation of duties)"
                )
            if req.reviewers and approver not in req.reviewers:
                raise PermissionDenied(
                    f"{approver} is not a named reviewer of this request ({', '.join(req.reviewers)})"
                )
            if any(vote.approver == approver for vote in req.approvals):
                raise FailedPrecondition(f"{approver} has already approved this request")
            now = to_us(self.clock.now())
            await conn.execute(
                promotion_votes.insert().values(request_id=req.request_id, approver=approver,
                                                comment=comment, at_us=now)
            )
            votes = len(req.approvals) + 1
            ref = f"{req.name}:{req.version}"
            approvals = [*req.approvals, PromotionVote(approver, comment, from_us(now))]
            if votes < req.required_approvals:
                ch.record(
                    EventType.APPROVAL_GRANTED,
                    resource_type="model",
                    resource_id=ref,
                    action="approve_vote",
                    actor=approver,
                    details={"request_id": req.request_id, "approvals": votes,
                             "required_approvals": req.required_approvals, "comment": comment},
                )
                return replace(req, approvals=approvals)
            await conn.execute(
                promotion_requests.update()
                .where(promotion_requests.c.request_id == req.request_id)
                .values(status=PromotionStatus.APPROVED.value, decided_by=approver,
                        decision_comment=comment, decided_us=now)
            )
            ch.record(
                EventType.PROMOTION_APPROVED,
                resource_type="model",
                resource_id=ref,
                action="approve_promotion",
                actor=approver,
                details={"request_id": req.request_id, "target_stage": req.target_stage.value,
                         "requested_by": req.requested_by, "approvers": [
                             *(vote.approver for vote in req.approvals), approver],
                         "comment": comment,
                         "seconds_to_decision": (now - to_us(req.created_at)) / 1e6},
            )
            row = await store.resolve(conn, req.name, req.version)
            if req.target_stage is ModelStage.PRODUCTION:
                await self.stages.enter_production(ch, row, approver, req.justification,
                                                   req.request_id)
            else:
                await self.stages.set(ch, row, req.target_stage, approver, req.justification,
                                      req.request_id)
            return replace(req, approvals=approvals, status=PromotionStatus.APPROVED,
                           decided_by=approver, decision_comment=comment, decided_at=from_us(now))

    async def reject_promotion(self, name: str, version: str, rejector: str, comment: str = "",
                               request_id: str = "") -> PromotionRequest:
        v.actor(rejector, "rejector")
        v.text(comment, "comment")
        async with self.db.change() as ch:
            req = await self._decidable(ch.conn, name, version, request_id)
            if rejector == req.requested_by:
                raise PermissionDenied(
                    f"{rejector} requested this promotion; the requester cancels rather than rejects"
                )
            if req.reviewers and rejector not in req.reviewers:
                raise PermissionDenied(
                    f"{rejector} is not a named reviewer of this request ({', '.join(req.reviewers)})"
                )
            return await self._close_request(ch, req, PromotionStatus.REJECTED, rejector, comment,
                                             EventType.PROMOTION_REJECTED)

    async def cancel_promotion(self, name: str, version: str, cancelled_by: str, reason: str = "",
                               request_id: str = "") -> PromotionRequest:
        v.actor(cancelled_by, "cancelled_by")
        v.text(reason, "reason")
        async with self.db.change() as ch:
            req = await self._decidable(ch.conn, name, version, request_id)
            if cancelled_by != req.requested_by:
                raise PermissionDenied(
                    f"only the requester ({req.requested_by}) may cancel this request"
                )
            return await self._close_request(ch, req, PromotionStatus.CANCELLED, cancelled_by,
                                             reason, EventType.PROMOTION_CANCELLED)

    async def list_pending(self, reviewer: str = "", name: str = "") -> list[PromotionRequest]:
        pr = promotion_requests
        q = sa.select(pr.c.request_id).where(pr.c.status == PromotionStatus.PENDING.value)
        if name:
            q = q.where(pr.c.name == name)
        q = q.order_by(pr.c.created_us)
        async with self.db.read() as conn:
            reqs = [await self._load_request(conn, r[0]) for r in (await conn.execute(q)).all()]
        if reviewer:
            reqs = [
                r for r in reqs
                if r.requested_by != reviewer
                and (not r.reviewers or reviewer in r.reviewers)
                and all(vote.approver != reviewer for vote in r.approvals)
            ]
        return reqs

    async def get_request(self, request_id: str) -> PromotionRequest:
        async with self.db.read() as conn:
            return await self._load_request(conn, request_id)

    # ------------------------------------------------------------------ aliases

    async def set_alias(self, name: str, alias: str, version: str, actor: str,
                        reason: str = "") -> AliasChange:
        v.name(alias, "alias")
        v.actor(actor, "actor")
        v.text(reason, "reason")
        if alias.startswith("@") or alias.lower() == "latest":
            raise InvalidArgument(f"alias {alias!r} is reserved", field="alias")
        async with self.db.change() as ch:
            target = await self._row(ch.conn, name, version)
            return await self._move_alias(ch, name, alias, target.version, actor, reason)

    async def delete_alias(self, name: str, alias: str, actor: str, reason: str = "") -> AliasChange:
        v.name(alias, "alias")
        v.actor(actor, "actor")
        async with self.db.change() as ch:
            await self._require_model(ch.conn, name)
            return await self._move_alias(ch, name, alias, "", actor, reason)

    async def rollback_alias(self, name: str, alias: str, actor: str, reason: str = "") -> AliasChange:
        """Point ``alias`` back at the version it had before its last move."""
        v.name(alias, "alias")
        v.actor(actor, "actor")
        async with self.db.change() as ch:
            h = model_history
            last = (
                await ch.conn.execute(
                    sa.select(h.c.from_value)
                    .where(h.c.name == name, h.c.alias == alias, h.c.kind == "alias")
                    .order_by(h.c.id.desc())
                    .limit(1)
                )
            ).first()
            if last is None:
                raise NotFound(f"alias {alias!r} of model {name!r} has no history")
            if not last.from_value:
                raise FailedPrecondition(f"alias {alias!r} of model {name!r} has no previous version")
            if await self._version_id(ch.conn, name, last.from_value) is None:
                raise FailedPrecondition(
                    f"the previous version {last.from_value} of alias {alias!r} no longer exists"
                )
            return await self._move_alias(ch, name, alias, last.from_value, actor,
                                          reason or "rollback")

    async def history(self, name: str, version: str = "") -> list[HistoryEntry]:
        v.name(name, "name")
        h = model_history
        q = sa.select(h).where(h.c.name == name)
        async with self.db.read() as conn:
            await self._require_model(conn, name)
            if version:
                vid = await self._resolve(conn, name, version)
                resolved = (await self._load(conn, vid)).version
                q = q.where(sa.or_(h.c.version == resolved,
                                   sa.and_(h.c.kind == "alias", h.c.from_value == resolved)))
            rows = (await conn.execute(q.order_by(h.c.id))).all()
        return [
            HistoryEntry(r.kind, r.name, r.version, r.from_value, r.to_value, r.alias, r.actor,
                         r.reason, r.promotion_request_id, from_us(r.at_us))
            for r in rows
        ]

    # ------------------------------------------------------------------ internals

    async def _move_alias(self, ch: Change, name: str, alias: str, version: str, actor: str,
                          reason: str) -> AliasChange:
        conn = ch.conn
        a = model_aliases
        prev_row = (
            await conn.execute(sa.select(a.c.version).where(a.c.name == name, a.c.alias == alias))
        ).first()
        previous = prev_row.version if prev_row else ""
        if not version and not previous:
            raise NotFound(f"alias {alias!r} of model {name!r} does not exist")
        if previous == version:
            return AliasChange(name, alias, version, previous)
        if prev_row is not None:
            await conn.execute(a.delete().where(a.c.name == name, a.c.alias == alias))
        if version:
            await conn.execute(a.insert().values(name=name, alias=alias, version=version))
        await conn.execute(
            model_history.insert().values(
                kind="alias", name=name, version=version, alias=alias, from_value=previous,
                to_value=version, actor=actor, reason=reason, promotion_request_id="",
                at_us=to_us(self.clock.now()),
            )
        )
        ch.record(
            EventType.MODEL_ALIAS_MOVED,
            resource_type="model",
            resource_id=f"{name}@{alias}",
            action="delete_alias" if not version else "set_alias",
            actor=actor,
            details={"alias": alias, "from_version": previous, "to_version": version, "reason": reason},
        )
        return AliasChange(name, alias, version, previous)

    async def _set_stage(self, ch: Change, mvers: _VersionRow | ModelVersion, target: ModelStage, actor: str,
                         reason: str, request_id: str) -> None:
        now = to_us(self.clock.now())
        await ch.conn.execute(
            model_versions.update()
            .where(model_versions.c.name == mvers.name, model_versions.c.version == mvers.version)
            .values(stage=target.value, updated_us=now)
        )
        await ch.conn.execute(
            model_history.insert().values(
                kind="stage", name=mvers.name, version=mvers.version, alias="",
                from_value=mvers.stage.value, to_value=target.value, actor=actor, reason=reason,
                promotion_request_id=request_id, at_us=now,
            )
        )
        ch.record(
            EventType.MODEL_STAGE_CHANGED,
            resource_type="model",
            resource_id=mvers.ref,
            action="stage_change",
            actor=actor,
            details={"from_stage": mvers.stage.value, "to_stage": target.value, "reason": reason,
                     "promotion_request_id": request_id},
        )

    async def _close_request(self, ch: Change, req: PromotionRequest, status: PromotionStatus,
                             actor: str, comment: str, event: EventType) -> PromotionRequest:
        now = to_us(self.clock.now())
        await ch.conn.execute(
            promotion_requests.update()
            .where(promotion_requests.c.request_id == req.request_id)
            .values(status=status.value, decided_by=actor, decision_comment=comment, decided_us=now)
        )
        ch.record(
            event,
            resource_type="model",
            resource_id=f"{req.name}:{req.version}",
            action=f"{status.value}_promotion",
            actor=actor,
            details={"request_id": req.request_id, "target_stage": req.target_stage.value,
                     "requested_by": req.requested_by, "comment": comment,
                     "seconds_to_decision": (now - to_us(req.created_at)) / 1e6},
        )
        return replace(req, status=status, decided_by=actor, decision_comment=comment,
                       decided_at=from_us(now))

    async def _decidable(self, conn: AsyncConnection, name: str, version: str,
                         request_id: str) -> PromotionRequest:
        """The request a decision applies to: the given id, or the version's latest."""
        pr = promotion_requests
        if request_id:
            req = await self._load_request(conn, request_id)
            if (req.name, req.version) != (name, version) and name:
                raise InvalidArgument(
                    f"request {request_id} is for {req.name}:{req.version}, not {name}:{version}",
                    field="request_id",
                )
        else:
            resolved = (await self._row(conn, name, version)).version
            row = (
                await conn.execute(
                    sa.select(pr)
                    .where(pr.c.name == name, pr.c.version == resolved)
                    .order_by(pr.c.created_us.desc(), pr.c.request_id.desc())
                    .limit(1)
                )
            ).first()
            if row is None:
                raise NotFound(f"{name}:{resolved} has no promotion request")
            req = await self._request_from_row(conn, row)
        if req.status is not PromotionStatus.PENDING:
            raise FailedPrecondition(
                f"promotion request {req.request_id} for {req.name}:{req.version} is "
                f"{req.status.value}, not pending"
            )
        return req

    async def _pending(self, conn: AsyncConnection, name: str, version: str) -> str | None:
        pr = promotion_requests
        row = (
            await conn.execute(
                sa.select(pr.c.request_id).where(
                    pr.c.name == name, pr.c.version == version,
                    pr.c.status == PromotionStatus.PENDING.value,
                )
            )
        ).first()
        return row.request_id if row else None

    async def _load_request(self, conn: AsyncConnection, request_id: str) -> PromotionRequest:
        pr = promotion_requests
        r = (await conn.execute(sa.select(pr).where(pr.c.request_id == request_id))).first()
        if r is None:
            raise NotFound(f"promotion request {request_id!r} does not exist")
        return await self._request_from_row(conn, r)

    async def _request_from_row(self, conn: AsyncConnection, r: Any) -> PromotionRequest:
        pv = promotion_votes
        votes = (
            await conn.execute(sa.select(pv).where(pv.c.request_id == r.request_id).order_by(pv.c.at_us))
        ).all()
        return PromotionRequest(
            request_id=r.request_id, name=r.name, version=r.version,
            target_stage=ModelStage(r.target_stage), from_stage=ModelStage(r.from_stage),
            requested_by=r.requested_by, justification=r.justification,
            reviewers=json.loads(r.reviewers), required_approvals=r.required_approvals,
            status=PromotionStatus(r.status),
            approvals=[PromotionVote(x.approver, x.comment, from_us(x.at_us)) for x in votes],
            decided_by=r.decided_by, decision_comment=r.decision_comment,
            created_at=from_us(r.created_us),
            decided_at=from_us(r.decided_us) if r.decided_us is not None else None,
        )

    async def _exists(self, name: str, version: str) -> bool:
        v.name(name, "name")
        v.name(version, "version")
        async with self.db.read() as conn:
            return await self._version_id(conn, name, version) is not None

    async def _version_id(self, conn: AsyncConnection, name: str, version: str) -> int | None:
        mv = model_versions
        row = (
            await conn.execute(sa.select(mv.c.id).where(mv.c.name == name, mv.c.version == version))
        ).first()
        return row.id if row else None

    async def _require_model(self, conn: AsyncConnection, name: str) -> None:
        row = (
            await conn.execute(sa.select(registered_models.c.name).where(registered_models.c.name == name))
        ).first()
        if row is None:
            raise NotFound(f"model {name!r} does not exist")

    async def _resolve(self, conn: AsyncConnection, name: str, version: str) -> int:
        """Version id for ``version`` or ``@alias``; NotFound naming what is missing."""
        return (await self._row(conn, name, version)).id

    async def _row(self, conn: AsyncConnection, name: str, version: str) -> _VersionRow:
        """id, name, version and stage of ``version`` or ``@alias`` in one query (two for
        an alias): what stage changes and approvals need, without loading the version."""
        v.name(name, "name")
        if isinstance(version, str) and version.startswith("@"):
            alias = version[1:]
            a = model_aliases
            row = (
                await conn.execute(sa.select(a.c.version).where(a.c.name == name, a.c.alias == alias))
            ).first()
            if row is None:
                raise NotFound(f"alias {alias!r} of model {name!r} does not exist")
            version = row.version
        v.name(version, "version")
        mv = model_versions
        row = (
            await conn.execute(
                sa.select(mv.c.id, mv.c.stage).where(mv.c.name == name, mv.c.version == version)
            )
        ).first()
        if row is None:
            await self._require_model(conn, name)
            raise NotFound(f"model version {name}:{version} does not exist")
        return _VersionRow(row.id, name, version, ModelStage(row.stage))

    async def _registered_model(self, conn: AsyncConnection, row: Any) -> RegisteredModel:
        mv = model_versions
        count = (
            await conn.execute(sa.select(sa.func.count()).select_from(mv).where(mv.c.name == row.name))
        ).scalar_one()
        a = model_aliases
        aliases = {r.alias: r.version for r in
                   (await conn.execute(sa.select(a).where(a.c.name == row.name))).all()}
        ids = sorted(
            r[0] for r in (
                await conn.execute(
                    sa.select(sa.func.max(mv.c.id)).where(mv.c.name == row.name).group_by(mv.c.stage)
                )
            ).all()
        )
        return RegisteredModel(row.name, from_us(row.created_us), from_us(row.updated_us), count,
                               aliases, await self._load_many(conn, ids))

    async def _load(self, conn: AsyncConnection, vid: int) -> ModelVersion:
        return (await self._load_many(conn, [vid]))[0]

    async def _load_many(self, conn: AsyncConnection, ids: Sequence[int]) -> list[ModelVersion]:
        if not ids:
            return []
        mv, m, t, a = model_versions, model_version_metrics, model_version_tags, model_aliases
        rows = {r.id: r for r in (await conn.execute(sa.select(mv).where(mv.c.id.in_(ids)))).all()}
        metrics: dict[int, dict[str, float]] = {i: {} for i in ids}
        for r in (await conn.execute(sa.select(m).where(m.c.version_id.in_(ids)))).all():
            metrics[r.version_id][r.metric] = r.value
        tags: dict[int, list[str]] = {i: [] for i in ids}
        for r in (await conn.execute(sa.select(t).where(t.c.version_id.in_(ids)).order_by(t.c.tag))).all():
            tags[r.version_id].append(r.tag)
        names = {r.name for r in rows.values()}
        aliases: dict[tuple[str, str], list[str]] = {}
        for r in (await conn.execute(sa.select(a).where(a.c.name.in_(names)).order_by(a.c.alias))).all():
            aliases.setdefault((r.name, r.version), []).append(r.alias)
        out = []
        for i in ids:
            r = rows[i]
            out.append(
                ModelVersion(
                    name=r.name, version=r.version, stage=ModelStage(r.stage), framework=r.framework,
                    description=r.description, created_by=r.created_by,
                    created_at=from_us(r.created_us), updated_at=from_us(r.updated_us),
                    metrics=metrics[i], tags=tags[i], params=json.loads(r.params),
                    config=json.loads(r.config_json),
                    artifact=Artifact(r.artifact_uri, r.artifact_sha256, r.artifact_size,
                                      r.artifact_filename, bool(r.artifact_stored)),
                    aliases=aliases.get((r.name, r.version), []),
                )
            )
        return out


async def _upsert_metric(conn: AsyncConnection, vid: int, key: str, value: float) -> None:
    m = model_version_metrics
    updated = await conn.execute(
        m.update().where(m.c.version_id == vid, m.c.metric == key).values(value=value)
    )
    if updated.rowcount == 0:
        await conn.execute(m.insert().values(version_id=vid, metric=key, value=value))


def _diff(before: ModelVersion, after: ModelVersion) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for f in ("description", "metrics", "tags", "params"):
        old, new = getattr(before, f), getattr(after, f)
        if old != new:
            changes[f] = {"before": old, "after": new}
    return changes
