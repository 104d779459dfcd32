"""Model versions once registered: reading, listing, searching, comparing, updating and
deleting them. Registration is :mod:`.registration`, stage moves :mod:`.stages`."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa

from neural.mlops.server import validation as v
from neural.mlops.server.audit.events import EventType
from neural.mlops.server.clock import Clock, to_us
from neural.mlops.server.errors import FailedPrecondition
from neural.mlops.server.pagination import decode_key, next_token, page_size
from neural.mlops.server.registry import ordering, promotion_store, store
from neural.mlops.server.registry.artifacts import ArtifactStore
from neural.mlops.server.registry.model import (
    Artifact,
    ModelStage,
    ModelVersion,
    Page,
    RegisteredModel,
)
from neural.mlops.server.registry.registration import MAX_PARAM_LENGTH, MAX_TAG_LENGTH
from neural.mlops.server.registry.search import SearchQuery, apply_filter, where_clauses
from neural.mlops.server.storage import Database
from neural.mlops.server.storage.schema import model_versions


class Versions:
    def __init__(self, db: Database, clock: Clock, artifacts: ArtifactStore) -> None:
        self.db = db
        self.clock = clock
        self.artifacts = artifacts

    # ------------------------------------------------------------------ reads

    async def get(self, name: str, version: str) -> ModelVersion:
        v.name(name, "name")
        async with self.db.read() as conn:
            row = await store.resolve(conn, name, version)
            return await store.load(conn, row.id)

    async def list_models(self, name_prefix: str = "", page_size_: int = 0,
                          page_token: str = "") -> Page[RegisteredModel]:
        size = page_size(page_size_)
        after = decode_key(page_token, "models", (str,))
        async with self.db.read() as conn:
            rows = await store.model_rows(conn, name_prefix,
                                          None if after is None else str(after[0]), size + 1)
            models = await store.model_page(conn, rows[:size])
        return Page(models, next_token("models", [(r.name,) for r in rows], size))

    async def list_versions(self, name: str, stage: ModelStage | None = None,
                            page_size_: int = 0, page_token: str = "",
                            order_by: str = "") -> Page[ModelVersion]:
        v.name(name, "name")
        ordering.parse(order_by)
        async with self.db.read() as conn:
            await store.require_model(conn, name)
        return await self._page(SearchQuery(stage=stage, order_by=order_by), page_size_,
                                page_token,
                                extra=[model_versions.c.name == name])

    async def latest(self, name: str, stages: Sequence[ModelStage] = ()) -> list[ModelVersion]:
        v.name(name, "name")
        async with self.db.read() as conn:
            await store.require_model(conn, name)
            return await store.load_many(conn, await store.latest_ids(conn, name, stages))

    async def search(self, query: SearchQuery, filter_text: str = "", page_size_: int = 0,
                     page_token: str = "") -> Page[ModelVersion]:
        if filter_text:
            apply_filter(query, filter_text)
        return await self._page(query, page_size_, page_token)

    async def _page(self, query: SearchQuery, page_size_: int, page_token: str,
                    extra: Sequence[sa.ColumnElement[bool]] = ()) -> Page[ModelVersion]:
        size = page_size(page_size_)
        order = ordering.parse(query.order_by)
        if order is not None:
            return await self._ordered_page(order, query, size, page_token, extra)
        after = decode_key(page_token, "versions", (int,))
        async with self.db.read() as conn:
            ids = await store.version_ids(conn, [*where_clauses(query), *extra],
                                          None if after is None else int(after[0]), size + 1)
            versions = await store.load_many(conn, ids[:size])
        return Page(versions, next_token("versions", [(i,) for i in ids], size))

    async def _ordered_page(self, order: ordering.Order, query: SearchQuery, size: int,
                            page_token: str,
                            extra: Sequence[sa.ColumnElement[bool]]) -> Page[ModelVersion]:
        after = ordering.decode(order, page_token)
        async with self.db.read() as conn:
            rows = await ordering.ordered_ids(conn, order, [*where_clauses(query), *extra],
                                              after, size + 1)
            versions = await store.load_many(conn, [vid for vid, _ in rows[:size]])
        token = ordering.encode(order, rows[size - 1][1]) if len(rows) > size else ""
        return Page(versions, token)

    async def download(self, name: str, version: str) -> tuple[Artifact, Iterator[bytes]]:
        """The artifact and an iterator over its verified bytes (DataLoss at the end if the
        stored file no longer matches its checksum)."""
        art = (await self.get(name, version)).artifact
        if not art.stored:
            raise FailedPrecondition(
                f"{name}:{version} references an external artifact ({art.uri}); "
                "fetch it from there"
            )
        return art, self.artifacts.open_verified(art.uri, art.sha256)

    async def compare(self, name: str, version1: str, version2: str) -> dict[str, Any]:
        """Metrics side by side (``difference`` is v2 - v1), tags and params that differ,
        both lineages and the names of the lineage fields that differ."""
        a = await self.get(name, version1)
        b = await self.get(name, version2)
        params = {
            k: {"version1": a.params.get(k), "version2": b.params.get(k)}
            for k in sorted(set(a.params) | set(b.params))
            if a.params.get(k) != b.params.get(k)
        }
        return {
            "name": name,
            "version1": a.version,
            "version2": b.version,
            "metrics_comparison": _compare_metrics(a.metrics, b.metrics),
            "tags_only_in_version1": sorted(set(a.tags) - set(b.tags)),
            "tags_only_in_version2": sorted(set(b.tags) - set(a.tags)),
            "params_diff": params,
            "framework": {"version1": a.framework, "version2": b.framework},
            "stage": {"version1": a.stage.value, "version2": b.stage.value},
            "size_bytes": {"version1": a.artifact.size_bytes, "version2": b.artifact.size_bytes},
            "lineage": {"version1": a.lineage.to_dict(), "version2": b.lineage.to_dict(),
                        "changed": a.lineage.changed_fields(b.lineage)},
        }

    # ------------------------------------------------------------------ changes

    async def update(
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
        params = {v.name(k, "set_params"): v.text(str(x), f"set_params.{k}",
                                                   limit=MAX_PARAM_LENGTH)
                  for k, x in (set_params or {}).items()}
        add = sorted({v.text(t, "add_tags", limit=MAX_TAG_LENGTH) for t in add_tags if t})
        async with self.db.change() as ch:
            conn = ch.conn
            vid = (await store.resolve(conn, name, version)).id
            before = await store.load(conn, vid)
            values: dict[str, Any] = {"updated_us": to_us(self.clock.now())}
            if description is not None:
                values["description"] = description
            if params:
                values["params"] = json.dumps({**before.params, **params}, sort_keys=True)
            await store.update_version(conn, vid, values)
            for key, val in metrics.items():
                await store.upsert_metric(conn, vid, key, val)
            await store.remove_tags(conn, vid, remove_tags)
            await store.add_tags(conn, vid, [t for t in add if t not in before.tags])
            after = await store.load(conn, vid)
            ch.record(
                EventType.MODEL_UPDATED,
                resource_type="model",
                resource_id=after.ref,
                action="update",
                actor=updated_by,
                details=_diff(before, after),
            )
        return after

    async def delete(self, name: str, version: str, deleted_by: str) -> None:
        """Delete a version that is neither in PRODUCTION nor aliased; its pending
        promotion requests are cancelled, its stored artifact removed after the commit."""
        v.actor(deleted_by, "deleted_by")
        async with self.db.change() as ch:
            conn = ch.conn
            vid = (await store.resolve(conn, name, version)).id
            mvers = await store.load(conn, vid)
            if mvers.stage is ModelStage.PRODUCTION:
                raise FailedPrecondition(
                    f"{mvers.ref} is in PRODUCTION and cannot be deleted; archive it first"
                )
            if mvers.aliases:
                raise FailedPrecondition(
                    f"{mvers.ref} is the target of alias(es) {', '.join(mvers.aliases)}; "
                    "move or delete them first"
                )
            await promotion_store.cancel_pending(conn, name, mvers.version, deleted_by,
                                                 "version deleted", to_us(self.clock.now()))
            await store.delete_version(conn, vid)
            ch.record(
                EventType.MODEL_DELETED,
                resource_type="model",
                resource_id=mvers.ref,
                action="delete",
                actor=deleted_by,
                details={"stage": mvers.stage.value, "artifact": mvers.artifact.uri},
            )
        if mvers.artifact.stored:  # after the commit; a crash in between: start-up recovery
            await self.artifacts.remove_version(name, mvers.version)


def _compare_metrics(a: dict[str, float],
                     b: dict[str, float]) -> dict[str, dict[str, float | None]]:
    out: dict[str, dict[str, float | None]] = {}
    for key in sorted(set(a) | set(b)):
        x, y = a.get(key), b.get(key)
        diff = y - x if x is not None and y is not None else None
        rel = diff / abs(x) if diff is not None and x else None
        out[key] = {"version1": x, "version2": y, "difference": diff, "relative_change": rel}
    return out


def _diff(before: ModelVersion, after: ModelVersion) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for f in ("description", "metrics", "tags", "params"):
        old, new = getattr(before, f), getattr(after, f)
        if old != new:
            changes[f] = {"before": old, "after": new}
    return changes
