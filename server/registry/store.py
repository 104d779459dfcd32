"""The registry's SQL over models, versions, stages, aliases and history.

Plain functions over a connection: the caller owns the transaction (a ``db.read()``
snapshot or a ``db.change()`` that also records the audit event), so several of these
compose into one atomic step. Promotion requests live in :mod:`.promotion_store`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from neural.mlops.server import validation as v
from neural.mlops.server.clock import from_us
from neural.mlops.server.errors import NotFound
from neural.mlops.server.registry.lineage import DataReference, Lineage, signature
from neural.mlops.server.registry.model import (
    Artifact,
    HistoryEntry,
    ModelStage,
    ModelVersion,
    RegisteredModel,
)
from neural.mlops.server.storage.schema import (
    model_aliases,
    model_history,
    model_version_data,
    model_version_metrics,
    model_version_tags,
    model_versions,
    registered_models,
)


@dataclass(frozen=True, slots=True)
class VersionRow:
    """id, name, version and stage: what stage moves need, without loading the version."""

    id: int
    name: str
    version: str
    stage: ModelStage

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"


# ----------------------------------------------------------------------------- lookups


async def model_exists(conn: AsyncConnection, name: str) -> bool:
    rm = registered_models
    return (await conn.execute(sa.select(rm.c.name).where(rm.c.name == name))).first() is not None


async def require_model(conn: AsyncConnection, name: str) -> None:
    if not await model_exists(conn, name):
        raise NotFound(f"model {name!r} does not exist")


async def all_version_keys(conn: AsyncConnection) -> set[tuple[str, str]]:
    """Every (name, version) the registry holds (the start-up artifact sweep)."""
    rows = await conn.execute(sa.select(model_versions.c.name, model_versions.c.version))
    return {(r.name, r.version) for r in rows}


async def version_id(conn: AsyncConnection, name: str, version: str) -> int | None:
    mv = model_versions
    row = (
        await conn.execute(sa.select(mv.c.id).where(mv.c.name == name, mv.c.version == version))
    ).first()
    return row.id if row else None


async def alias_target(conn: AsyncConnection, name: str, alias: str) -> str | None:
    """The version ``alias`` points at, None if the model has no such alias."""
    a = model_aliases
    row = (
        await conn.execute(sa.select(a.c.version).where(a.c.name == name, a.c.alias == alias))
    ).first()
    return row.version if row else None


async def resolve(conn: AsyncConnection, name: str, version: str) -> VersionRow:
    """The row of ``version`` or ``@alias`` (two queries for an alias); NotFound naming
    what is missing: the alias, the version or the model."""
    v.name(name, "name")
    if isinstance(version, str) and version.startswith("@"):
        alias = version[1:]
        target = await alias_target(conn, name, alias)
        if target is None:
            raise NotFound(f"alias {alias!r} of model {name!r} does not exist")
        version = target
    v.name(version, "version")
    mv = model_versions
    row = (
        await conn.execute(
            sa.select(mv.c.id, mv.c.stage).where(mv.c.name == name, mv.c.version == version)
        )
    ).first()
    if row is None:
        await require_model(conn, name)
        raise NotFound(f"model version {name}:{version} does not exist")
    return VersionRow(row.id, name, version, ModelStage(row.stage))


async def rows_in_stage(
    conn: AsyncConnection, name: str, stage: ModelStage, *, except_id: int | None = None
) -> list[VersionRow]:
    mv = model_versions
    q = sa.select(mv.c.id, mv.c.version).where(mv.c.name == name, mv.c.stage == stage.value)
    if except_id is not None:
        q = q.where(mv.c.id != except_id)
    return [VersionRow(r.id, name, r.version, stage) for r in (await conn.execute(q)).all()]


async def latest_ids(
    conn: AsyncConnection, name: str, stages: Sequence[ModelStage] = ()
) -> list[int]:
    """Ids of the newest version of ``name`` in each stage (of ``stages``, if given)."""
    mv = model_versions
    q = sa.select(sa.func.max(mv.c.id)).where(mv.c.name == name).group_by(mv.c.stage)
    if stages:
        q = q.where(mv.c.stage.in_([s.value for s in stages]))
    return sorted(r[0] for r in (await conn.execute(q)).all())


# ----------------------------------------------------------------------------- loading


async def load(conn: AsyncConnection, vid: int) -> ModelVersion:
    return (await load_many(conn, [vid]))[0]


async def load_many(conn: AsyncConnection, ids: Sequence[int]) -> list[ModelVersion]:
    """The versions with ``ids``, in that order, with metrics, tags and aliases."""
    if not ids:
        return []
    mv, m, t, a = model_versions, model_version_metrics, model_version_tags, model_aliases
    rows = {r.id: r for r in (await conn.execute(sa.select(mv).where(mv.c.id.in_(ids)))).all()}
    metrics: dict[int, dict[str, float]] = {i: {} for i in ids}
    for r in (await conn.execute(sa.select(m).where(m.c.version_id.in_(ids)))).all():
        metrics[r.version_id][r.metric] = r.value
    tags: dict[int, list[str]] = {i: [] for i in ids}
    tag_q = sa.select(t).where(t.c.version_id.in_(ids)).order_by(t.c.tag)
    for r in (await conn.execute(tag_q)).all():
        tags[r.version_id].append(r.tag)
    data: dict[int, list[DataReference]] = {i: [] for i in ids}
    d = model_version_data
    data_q = sa.select(d).where(d.c.version_id.in_(ids)).order_by(d.c.version_id, d.c.position)
    for r in (await conn.execute(data_q)).all():
        data[r.version_id].append(DataReference(r.uri, r.digest))
    names = {r.name for r in rows.values()}
    aliases: dict[tuple[str, str], list[str]] = {}
    alias_q = sa.select(a).where(a.c.name.in_(names)).order_by(a.c.alias)
    for r in (await conn.execute(alias_q)).all():
        aliases.setdefault((r.name, r.version), []).append(r.alias)
    return [
        _version(rows[i], metrics[i], tags[i], aliases.get((rows[i].name, rows[i].version), []),
                 data[i])
        for i in ids
    ]


def _version(r: Any, metrics: dict[str, float], tags: list[str], aliases: list[str],
             data: list[DataReference]) -> ModelVersion:
    return ModelVersion(
        name=r.name, version=r.version, stage=ModelStage(r.stage), framework=r.framework,
        description=r.description, created_by=r.created_by,
        created_at=from_us(r.created_us), updated_at=from_us(r.updated_us),
        metrics=metrics, tags=tags, params=json.loads(r.params),
        config=json.loads(r.config_json),
        artifact=Artifact(r.artifact_uri, r.artifact_sha256, r.artifact_size,
                          r.artifact_filename, bool(r.artifact_stored)),
        aliases=aliases,
        lineage=Lineage(
            source_run_id=r.source_run_id, source_uri=r.source_uri,
            code_revision=r.code_revision, training_data=data,
            parent_version=r.parent_version,
            signature=signature(json.loads(r.signature) if r.signature else {}),
        ),
    )


def lineage_values(lineage: Lineage) -> dict[str, Any]:
    """The ``model_versions`` columns of a (validated) lineage."""
    sig = lineage.signature
    return {
        "source_run_id": lineage.source_run_id, "source_uri": lineage.source_uri,
        "code_revision": lineage.code_revision, "parent_version": lineage.parent_version,
        "signature": "" if sig.empty else json.dumps(sig.to_dict(), sort_keys=True,
                                                     separators=(",", ":")),
    }


async def model_rows(conn: AsyncConnection, name_prefix: str, after: str | None,
                     limit: int) -> list[Any]:
    """Up to ``limit`` registered-model rows by name, after ``after``."""
    rm = registered_models
    q = sa.select(rm).order_by(rm.c.name).limit(limit)
    if name_prefix:
        q = q.where(rm.c.name.startswith(name_prefix, autoescape=True))
    if after is not None:
        q = q.where(rm.c.name > after)
    return list((await conn.execute(q)).all())


async def model_page(conn: AsyncConnection, rows: Sequence[Any]) -> list[RegisteredModel]:
    """The registered models of ``rows`` (in that order) with their version counts,
    aliases and newest version per stage: a fixed number of queries for the whole page,
    not a few per model (a console page lists up to 100 models)."""
    names = [r.name for r in rows]
    if not names:
        return []
    mv, a = model_versions, model_aliases
    counts: dict[str, int] = {name: n for name, n in (await conn.execute(
        sa.select(mv.c.name, sa.func.count()).where(mv.c.name.in_(names))
        .group_by(mv.c.name))).all()}
    aliases: dict[str, dict[str, str]] = {name: {} for name in names}
    for r in (await conn.execute(sa.select(a).where(a.c.name.in_(names)))).all():
        aliases[r.name][r.alias] = r.version
    latest: dict[str, list[int]] = {name: [] for name in names}
    for name, vid in (await conn.execute(
            sa.select(mv.c.name, sa.func.max(mv.c.id)).where(mv.c.name.in_(names))
            .group_by(mv.c.name, mv.c.stage))).all():
        latest[name].append(vid)
    ordered = [sorted(latest[name]) for name in names]
    loaded = iter(await load_many(conn, [vid for ids in ordered for vid in ids]))
    return [
        RegisteredModel(r.name, from_us(r.created_us), from_us(r.updated_us),
                        counts.get(r.name, 0), aliases[r.name],
                        [next(loaded) for _ in ids])
        for r, ids in zip(rows, ordered, strict=True)
    ]


async def version_ids(conn: AsyncConnection, where: Sequence[sa.ColumnElement[bool]],
                      after: int | None, limit: int) -> list[int]:
    """Up to ``limit`` version ids matching ``where``, in id order, after ``after``."""
    mv = model_versions
    q = sa.select(mv.c.id).where(*where).order_by(mv.c.id).limit(limit)
    if after is not None:
        q = q.where(mv.c.id > after)
    return [r[0] for r in (await conn.execute(q)).all()]


# ----------------------------------------------------------------------------- writes


async def touch_model(conn: AsyncConnection, name: str, now_us: int) -> None:
    """Create the registered model, or mark it updated."""
    rm = registered_models
    if await model_exists(conn, name):
        await conn.execute(rm.update().where(rm.c.name == name).values(updated_us=now_us))
    else:
        await conn.execute(rm.insert().values(name=name, created_us=now_us, updated_us=now_us))


async def insert_version(conn: AsyncConnection, values: dict[str, Any],
                         metrics: dict[str, float], tags: Sequence[str]) -> int:
    result = await conn.execute(model_versions.insert().values(**values))
    vid: int = result.inserted_primary_key[0]  # type: ignore[index]  # set by every insert
    if metrics:
        await conn.execute(
            model_version_metrics.insert(),
            [{"version_id": vid, "metric": k, "value": x} for k, x in metrics.items()],
        )
    await add_tags(conn, vid, tags)
    return vid


async def insert_data(conn: AsyncConnection, vid: int, refs: Sequence[DataReference]) -> None:
    if refs:
        await conn.execute(model_version_data.insert(), [
            {"version_id": vid, "position": n, "uri": d.uri, "digest": d.digest}
            for n, d in enumerate(refs)
        ])


async def update_version(conn: AsyncConnection, vid: int, values: dict[str, Any]) -> None:
    await conn.execute(model_versions.update().where(model_versions.c.id == vid).values(**values))


async def upsert_metric(conn: AsyncConnection, vid: int, key: str, value: float) -> None:
    m = model_version_metrics
    updated = await conn.execute(
        m.update().where(m.c.version_id == vid, m.c.metric == key).values(value=value)
    )
    if updated.rowcount == 0:
        await conn.execute(m.insert().values(version_id=vid, metric=key, value=value))


async def add_tags(conn: AsyncConnection, vid: int, tags: Sequence[str]) -> None:
    if tags:
        await conn.execute(model_version_tags.insert(),
                           [{"version_id": vid, "tag": t} for t in tags])


async def remove_tags(conn: AsyncConnection, vid: int, tags: Sequence[str]) -> None:
    t = model_version_tags
    if tags:
        await conn.execute(t.delete().where(t.c.version_id == vid, t.c.tag.in_(list(tags))))


async def delete_version(conn: AsyncConnection, vid: int) -> None:
    m, t, d = model_version_metrics, model_version_tags, model_version_data
    await conn.execute(d.delete().where(d.c.version_id == vid))
    await conn.execute(m.delete().where(m.c.version_id == vid))
    await conn.execute(t.delete().where(t.c.version_id == vid))
    await conn.execute(model_versions.delete().where(model_versions.c.id == vid))


async def write_stage(conn: AsyncConnection, row: VersionRow, target: ModelStage, actor: str,
                      reason: str, request_id: str, now_us: int) -> None:
    """Set the stage and append its history row."""
    mv = model_versions
    await conn.execute(
        mv.update()
        .where(mv.c.name == row.name, mv.c.version == row.version)
        .values(stage=target.value, updated_us=now_us)
    )
    await conn.execute(
        model_history.insert().values(
            kind="stage", name=row.name, version=row.version, alias="",
            from_value=row.stage.value, to_value=target.value, actor=actor, reason=reason,
            promotion_request_id=request_id, at_us=now_us,
        )
    )


async def write_alias(conn: AsyncConnection, name: str, alias: str, version: str,
                      previous: str, actor: str, reason: str, now_us: int) -> None:
    """Point ``alias`` at ``version`` ("" deletes it) and append its history row."""
    a = model_aliases
    if previous:
        await conn.execute(a.delete().where(a.c.name == name, a.c.alias == alias))
    if version:
        await conn.execute(a.insert().values(name=name, alias=alias, version=version))
    await conn.execute(
        model_history.insert().values(
            kind="alias", name=name, version=version, alias=alias, from_value=previous,
            to_value=version, actor=actor, reason=reason, promotion_request_id="", at_us=now_us,
        )
    )


# ----------------------------------------------------------------------------- history


async def previous_alias_target(conn: AsyncConnection, name: str, alias: str) -> str | None:
    """What ``alias`` pointed at before its last move ("" if it was new); None if the
    alias never moved."""
    h = model_history
    row = (
        await conn.execute(
            sa.select(h.c.from_value)
            .where(h.c.name == name, h.c.alias == alias, h.c.kind == "alias")
            .order_by(h.c.id.desc())
            .limit(1)
        )
    ).first()
    return row.from_value if row else None


async def previous_production(conn: AsyncConnection, name: str, version: str) -> str:
    """The version that last entered PRODUCTION other than ``version`` ("" if none)."""
    h = model_history
    row = (
        await conn.execute(
            sa.select(h.c.version)
            .where(h.c.name == name, h.c.kind == "stage",
                   h.c.to_value == ModelStage.PRODUCTION.value, h.c.version != version)
            .order_by(h.c.id.desc())
            .limit(1)
        )
    ).first()
    return row.version if row else ""


async def history(conn: AsyncConnection, name: str, version: str = "") -> list[HistoryEntry]:
    """Stage and alias moves of ``name``, oldest first; with ``version``, the moves of that
    version and the alias moves away from it."""
    h = model_history
    q = sa.select(h).where(h.c.name == name)
    if version:
        q = q.where(sa.or_(h.c.version == version,
                           sa.and_(h.c.kind == "alias", h.c.from_value == version)))
    rows = (await conn.execute(q.order_by(h.c.id))).all()
    return [
        HistoryEntry(r.kind, r.name, r.version, r.from_value, r.to_value, r.alias, r.actor,
                     r.reason, r.promotion_request_id, from_us(r.at_us), r.id)
        for r in rows
    ]
