"""RegistryService: the transport-free model registry, one object over its parts.

The servicer, the Python API and the composition root use this class; the work lives in
the concept modules it delegates to: :mod:`.registration` and :mod:`.versions`,
:mod:`.stages`, :mod:`.promotions`, :mod:`.aliases`, :mod:`.history`, with the SQL in
:mod:`.store` and :mod:`.promotion_store`. Other domains use :attr:`port` only.

Every state change is one :meth:`Database.change` transaction that also writes its audit
event(s) and, for stage and alias moves, an append-only history row.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import structlog

from neural.mlops.server.clock import Clock, SystemClock
from neural.mlops.server.registry import history as _history
from neural.mlops.server.registry import store
from neural.mlops.server.registry.aliases import Aliases
from neural.mlops.server.registry.artifacts import ArtifactStore, FolderArtifactStore
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
from neural.mlops.server.registry.port import RegistryPort, StoreRegistryPort
from neural.mlops.server.registry.promotions import Promotions
from neural.mlops.server.registry.registration import RegisterSpec, Registration
from neural.mlops.server.registry.search import SearchQuery
from neural.mlops.server.registry.stages import Stages
from neural.mlops.server.registry.versions import Versions
from neural.mlops.server.storage import Database

__all__ = ["RegisterSpec", "RegistryService"]

log = structlog.get_logger(__name__)


class RegistryService:
    def __init__(self, db: Database, root: Path, *, clock: Clock | None = None,
                 artifacts: ArtifactStore | None = None) -> None:
        self.db = db
        self.clock = clock or SystemClock()
        self.artifacts = artifacts if artifacts is not None else FolderArtifactStore(root)
        self._registration = Registration(db, self.clock, self.artifacts)
        self._versions = Versions(db, self.clock, self.artifacts)
        self._stages = Stages(db, self.clock)
        self._promotions = Promotions(db, self.clock, self._stages)
        self._aliases = Aliases(db, self.clock)
        self.port: RegistryPort = StoreRegistryPort(self._stages)

    async def recover(self) -> list[str]:
        """Remove uploads abandoned by a crash, and stored artifacts left by a crash
        between install and commit (they have no row); returns the latter as
        ``name/version``. Runs in a write transaction so no registration of another
        process on the same store is half-way meanwhile."""
        await self.artifacts.sweep()
        removed: list[str] = []
        async with self.db.change(audited=False) as ch:
            known = await store.all_version_keys(ch.conn)
            for name, version in sorted(await self.artifacts.version_keys() - known):
                await self.artifacts.remove_version(name, version)
                removed.append(f"{name}/{version}")
        if removed:
            log.warning("artifact folders without a row removed", folders=removed)
        return removed

    # ------------------------------------------------------------------ versions

    async def register_model(
        self,
        spec: RegisterSpec,
        *,
        chunks: AsyncIterator[bytes] | None = None,
        source_path: Path | None = None,
    ) -> ModelVersion:
        """Register ``spec`` with its artifact from ``chunks`` (remote upload), a local file
        ``source_path`` (embedded), or ``spec.artifact_uri`` (a reference recorded as is)."""
        return await self._registration.register(spec, chunks=chunks, source_path=source_path)

    async def get_model_version(self, name: str, version: str) -> ModelVersion:
        return await self._versions.get(name, version)

    async def list_models(self, name_prefix: str = "", page_size_: int = 0,
                          page_token: str = "") -> Page[RegisteredModel]:
        return await self._versions.list_models(name_prefix, page_size_, page_token)

    async def list_versions(self, name: str, stage: ModelStage | None = None,
                            page_size_: int = 0, page_token: str = "",
                            order_by: str = "") -> Page[ModelVersion]:
        return await self._versions.list_versions(name, stage, page_size_, page_token,
                                                  order_by)

    async def get_latest_versions(self, name: str,
                                  stages: Sequence[ModelStage] = ()) -> list[ModelVersion]:
        return await self._versions.latest(name, stages)

    async def search(self, query: SearchQuery, filter_text: str = "", page_size_: int = 0,
                     page_token: str = "") -> Page[ModelVersion]:
        return await self._versions.search(query, filter_text, page_size_, page_token)

    async def download(self, name: str, version: str) -> tuple[Artifact, Iterator[bytes]]:
        """The artifact and an iterator over its verified bytes (DataLoss at the end if the
        stored file no longer matches its checksum)."""
        return await self._versions.download(name, version)

    async def compare(self, name: str, version1: str, version2: str) -> dict[str, Any]:
        return await self._versions.compare(name, version1, version2)

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
        return await self._versions.update(
            name, version, updated_by, description=description, add_tags=add_tags,
            remove_tags=remove_tags, set_metrics=set_metrics, set_params=set_params,
        )

    async def delete_version(self, name: str, version: str, deleted_by: str) -> None:
        await self._versions.delete(name, version, deleted_by)

    # ------------------------------------------------------------------ stages, promotions

    async def transition_stage(self, name: str, version: str, target: ModelStage, actor: str,
                               reason: str = "") -> ModelVersion:
        """Move to DEVELOPMENT or ARCHIVED directly; STAGING/PRODUCTION need an approval."""
        return await self._stages.transition(name, version, target, actor, reason)

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
        return await self._promotions.request(name, version, target_stage, requested_by,
                                              justification, reviewers, required_approvals)

    async def approve_promotion(self, name: str, version: str, approver: str, comment: str = "",
                                request_id: str = "") -> PromotionRequest:
        return await self._promotions.approve(name, version, approver, comment, request_id)

    async def reject_promotion(self, name: str, version: str, rejector: str, comment: str = "",
                               request_id: str = "") -> PromotionRequest:
        return await self._promotions.reject(name, version, rejector, comment, request_id)

    async def cancel_promotion(self, name: str, version: str, cancelled_by: str, reason: str = "",
                               request_id: str = "") -> PromotionRequest:
        return await self._promotions.cancel(name, version, cancelled_by, reason, request_id)

    async def list_pending(self, reviewer: str = "", name: str = "") -> list[PromotionRequest]:
        return await self._promotions.pending(reviewer, name)

    # ------------------------------------------------------------------ aliases, history

    async def set_alias(self, name: str, alias: str, version: str, actor: str,
                        reason: str = "") -> AliasChange:
        return await self._aliases.set(name, alias, version, actor, reason)

    async def delete_alias(self, name: str, alias: str, actor: str,
                           reason: str = "") -> AliasChange:
        return await self._aliases.delete(name, alias, actor, reason)

    async def rollback_alias(self, name: str, alias: str, actor: str,
                             reason: str = "") -> AliasChange:
        """Point ``alias`` back at the version it had before its last move."""
        return await self._aliases.rollback(name, alias, actor, reason)

    async def history(self, name: str, version: str = "") -> list[HistoryEntry]:
        return await _history.history(self.db, name, version)
