"""Registering a model version: the spec, its validation, and the artifact's way in.

The artifact is staged (hashed while written) before the transaction and installed in
it, so a failed registration leaves neither a row nor a file behind.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from neural.mlops.server import validation as v
from neural.mlops.server.audit.events import EventType
from neural.mlops.server.clock import Clock, from_us, to_us
from neural.mlops.server.errors import AlreadyExists, DataLoss, InvalidArgument, NotFound
from neural.mlops.server.registry import lineage as _lineage
from neural.mlops.server.registry import store
from neural.mlops.server.registry.artifacts import (
    ArtifactStore,
    StagedFile,
    relative_uri,
    validate_filename,
    validate_reference,
)
from neural.mlops.server.registry.lineage import Lineage
from neural.mlops.server.registry.model import Artifact, ModelStage, ModelVersion
from neural.mlops.server.storage import Change, Database

log = structlog.get_logger(__name__)

MAX_TAGS = 100
MAX_METRICS = 500
MAX_TAG_LENGTH = 256
MAX_PARAM_LENGTH = 4096


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
    lineage: Lineage = field(default_factory=Lineage)

    def validated(self) -> RegisterSpec:
        v.name(self.name, "name")
        v.name(self.version, "version")
        v.actor(self.created_by, "created_by")
        if self.framework:
            v.name(self.framework, "framework")
        v.text(self.description, "description")
        if not isinstance(self.metrics, dict) or len(self.metrics) > MAX_METRICS:
            raise InvalidArgument(f"metrics must be a mapping of at most {MAX_METRICS} numbers",
                                  field="metrics")
        self.metrics = {v.name(k, "metrics"): v.finite(x, f"metrics.{k}")
                        for k, x in self.metrics.items()}
        tags: object = self.tags  # a Python caller's plain string is refused, not split
        if isinstance(tags, str) or len(self.tags) > MAX_TAGS:
            raise InvalidArgument(f"tags must be a list of at most {MAX_TAGS} strings",
                                  field="tags")
        self.tags = sorted({v.text(t, "tags", limit=MAX_TAG_LENGTH) for t in self.tags if t})
        self.params = {v.name(k, "params"): v.text(str(x), f"params.{k}", limit=MAX_PARAM_LENGTH)
                       for k, x in self.params.items()}
        try:
            json.dumps(self.config, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise InvalidArgument(f"config must be JSON-serialisable: {exc}",
                                  field="config") from None
        if self.artifact_uri:
            validate_reference(self.artifact_uri)
        if self.artifact_filename:
            validate_filename(self.artifact_filename)
        self.lineage = _lineage.lineage(self.lineage).validated()
        if self.lineage.parent_version == self.version:
            raise InvalidArgument("lineage.parent_version: a version cannot be its own parent",
                                  field="lineage.parent_version")
        return self


class Registration:
    def __init__(self, db: Database, clock: Clock, artifacts: ArtifactStore) -> None:
        self.db = db
        self.clock = clock
        self.artifacts = artifacts

    async def register(
        self,
        spec: RegisterSpec,
        *,
        chunks: AsyncIterator[bytes] | None = None,
        source_path: Path | None = None,
    ) -> ModelVersion:
        """Register ``spec`` with its artifact from ``chunks`` (remote upload), a local file
        ``source_path`` (embedded), or ``spec.artifact_uri`` (a reference recorded as is)."""
        spec.validated()
        # Refuse a duplicate before reading a possibly large upload.
        async with self.db.read() as conn:
            if await store.version_id(conn, spec.name, spec.version) is not None:
                raise AlreadyExists(f"model version {spec.name}:{spec.version} already exists")
        staged = await self._stage(spec, chunks, source_path)
        installed = False
        try:
            expected = spec.expected_sha256
            if staged is not None and expected and staged.sha256 != expected:
                raise DataLoss(
                    f"upload checksum mismatch: received sha256 {staged.sha256}, "
                    f"expected {spec.expected_sha256}"
                )
            async with self.db.change() as ch:
                version = await self._insert(ch, spec, self._artifact(spec, staged))
                if staged is not None:
                    # Set first: an install cut off half-way may still have completed.
                    installed = True
                    await self.artifacts.install(staged)
        except BaseException:
            if staged is not None:
                await self.artifacts.discard(staged)
            if installed:  # the commit failed after the artifact was made visible
                await self.artifacts.remove_version(spec.name, spec.version)
            raise
        log.info("model registered", model=spec.name, version=spec.version)
        return version

    async def _stage(self, spec: RegisterSpec, chunks: AsyncIterator[bytes] | None,
                     source_path: Path | None) -> StagedFile | None:
        if spec.artifact_uri:
            if chunks is not None or source_path is not None:
                raise InvalidArgument("give either an artifact URI or artifact bytes, not both",
                                      field="model_path")
            return None
        if source_path is not None:
            spec.artifact_filename = spec.artifact_filename or source_path.name
            return await self.artifacts.stage_path(self._relative(spec), source_path)
        if chunks is not None:
            if not spec.artifact_filename:
                raise InvalidArgument("artifact_filename is required with an upload",
                                      field="artifact_filename")
            return await self.artifacts.stage(self._relative(spec), chunks)
        return None

    @staticmethod
    def _relative(spec: RegisterSpec) -> str:
        return relative_uri(spec.name, spec.version, validate_filename(spec.artifact_filename))

    def _artifact(self, spec: RegisterSpec, staged: StagedFile | None) -> Artifact:
        if staged is None:
            return Artifact(spec.artifact_uri, "", 0, "", False)
        return Artifact(staged.relative, staged.sha256, staged.size, spec.artifact_filename, True)

    async def _insert(self, ch: Change, spec: RegisterSpec, artifact: Artifact) -> ModelVersion:
        conn = ch.conn
        if await store.version_id(conn, spec.name, spec.version) is not None:
            raise AlreadyExists(f"model version {spec.name}:{spec.version} already exists")
        lineage = await self._resolve_parent(conn, spec)
        now = to_us(self.clock.now())
        await store.touch_model(conn, spec.name, now)
        vid = await store.insert_version(
            conn,
            dict(
                name=spec.name, version=spec.version, stage=ModelStage.DEVELOPMENT.value,
                framework=spec.framework, description=spec.description,
                created_by=spec.created_by, created_us=now, updated_us=now,
                params=json.dumps(spec.params, sort_keys=True),
                config_json=json.dumps(spec.config, sort_keys=True),
                artifact_uri=artifact.uri, artifact_sha256=artifact.sha256,
                artifact_size=artifact.size_bytes, artifact_filename=artifact.filename,
                artifact_stored=artifact.stored, **store.lineage_values(lineage),
            ),
            spec.metrics,
            spec.tags,
        )
        await store.insert_data(conn, vid, lineage.training_data)
        ch.record(
            EventType.MODEL_REGISTERED,
            resource_type="model",
            resource_id=f"{spec.name}:{spec.version}",
            action="register",
            actor=spec.created_by,
            details={
                "framework": spec.framework, "metrics": spec.metrics, "tags": spec.tags,
                "artifact": {"uri": artifact.uri, "sha256": artifact.sha256,
                             "size_bytes": artifact.size_bytes},
                **({} if lineage.empty else {"lineage": lineage.to_dict()}),
            },
        )
        return ModelVersion(
            name=spec.name, version=spec.version, stage=ModelStage.DEVELOPMENT,
            framework=spec.framework, description=spec.description,
            created_by=spec.created_by, created_at=from_us(now), updated_at=from_us(now),
            metrics=dict(spec.metrics), tags=list(spec.tags), params=dict(spec.params),
            config=json.loads(json.dumps(spec.config, sort_keys=True)), artifact=artifact,
            aliases=[], lineage=lineage,
        )

    @staticmethod
    async def _resolve_parent(conn: AsyncConnection, spec: RegisterSpec) -> Lineage:
        """The lineage with its parent checked to exist, an ``@alias`` resolved to the
        version it names now."""
        parent = spec.lineage.parent_version
        if not parent:
            return spec.lineage
        if not await store.model_exists(conn, spec.name):
            raise NotFound(f"lineage.parent_version: model {spec.name!r} has no versions yet",
                           field="lineage.parent_version")
        target = parent
        if parent.startswith("@"):
            target = await store.alias_target(conn, spec.name, parent[1:]) or ""
        if not target or await store.version_id(conn, spec.name, target) is None:
            raise NotFound(f"lineage.parent_version: {spec.name}:{parent} does not exist",
                           field="lineage.parent_version")
        if target == spec.version:
            raise InvalidArgument("lineage.parent_version: a version cannot be its own parent",
                                  field="lineage.parent_version")
        return replace(spec.lineage, parent_version=target)
