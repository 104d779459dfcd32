"""The registry's port, as deployments and experiments use it: on a real store, inside the
caller's own read or change."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from support.databases import open_database

from neural.mlops.server.audit.events import EventType
from neural.mlops.server.clock import ManualClock
from neural.mlops.server.errors import NotFound
from neural.mlops.server.registry.model import ModelStage
from neural.mlops.server.registry.service import RegisterSpec, RegistryService
from neural.mlops.server.storage.schema import audit_events


@pytest.fixture
async def registry(tmp_path: Path) -> AsyncIterator[RegistryService]:
    clock = ManualClock()
    db = await open_database(tmp_path / "store", clock=clock)
    try:
        yield RegistryService(db, tmp_path / "store", clock=clock)
    finally:
        await db.close()


async def _register(r: RegistryService, name: str, *versions: str) -> None:
    for version in versions:
        await r.register_model(RegisterSpec(name=name, version=version, created_by="ds@x.com",
                                            artifact_uri="s3://bucket/model.pt"))


async def _approve(r: RegistryService, name: str, version: str) -> None:
    await r.request_promotion(name, version, ModelStage.PRODUCTION, "eng@x.com", "ok")
    await r.approve_promotion(name, version, "boss@x.com")


async def _stages(r: RegistryService, name: str) -> dict[str, ModelStage]:
    return {mv.version: mv.stage for mv in await r.list_versions(name)}


async def test_promotion_through_the_port_archives_the_previous_production_version(
    registry: RegistryService,
) -> None:
    await _register(registry, "fraud", "v1", "v2")
    await _approve(registry, "fraud", "v1")
    async with registry.db.change() as ch:
        done = await registry.port.promote_to_production(ch, "fraud", "v2", "deployer",
                                                         "deployment d1 completed")
        ch.record(EventType.DEPLOYMENT_PROMOTED, resource_type="deployment", resource_id="d1",
                  action="complete", actor="deployer")
    assert done.to_dict() == {"registry_stage": "production", "archived": ["v1"],
                              "previous_stage": "development"}
    assert await _stages(registry, "fraud") == {"v1": ModelStage.ARCHIVED,
                                                "v2": ModelStage.PRODUCTION}
    moves = [(h.version, h.to_value, h.reason) for h in await registry.history("fraud")][-2:]
    assert moves == [
        ("v1", "archived", "replaced in PRODUCTION by v2 (deployment d1 completed)"),
        ("v2", "production", "deployment d1 completed"),
    ]


async def test_a_port_promotion_rolls_back_with_the_callers_change(
    registry: RegistryService,
) -> None:
    await _register(registry, "fraud", "v1", "v2")
    await _approve(registry, "fraud", "v1")
    with pytest.raises(RuntimeError, match="caller failed"):
        async with registry.db.change() as ch:
            await registry.port.promote_to_production(ch, "fraud", "v2", "deployer", "x")
            raise RuntimeError("caller failed")
    assert await _stages(registry, "fraud") == {"v1": ModelStage.PRODUCTION,
                                                "v2": ModelStage.DEVELOPMENT}


async def test_restore_production_undoes_an_approval_and_history_names_the_replaced_version(
    registry: RegistryService,
) -> None:
    await _register(registry, "fraud", "v1", "v2")
    await _approve(registry, "fraud", "v1")
    await _approve(registry, "fraud", "v2")
    async with registry.db.read() as conn:
        assert await registry.port.previous_production(conn, "fraud", "v2") == "v1"
        assert await registry.port.previous_production(conn, "other", "v1") == ""
    async with registry.db.change() as ch:
        done = await registry.port.restore_production(ch, "fraud", "v1", "v2", "controller",
                                                      "rolled back")
    assert (done.previous_stage, done.archived) == (ModelStage.ARCHIVED, ["v2"])
    assert await _stages(registry, "fraud") == {"v1": ModelStage.PRODUCTION,
                                                "v2": ModelStage.ARCHIVED}
    async with registry.db.read() as conn:
        changes = (await conn.execute(
            sa.select(audit_events.c.resource_id).where(
                audit_events.c.event_type == EventType.MODEL_STAGE_CHANGED.value)
        )).scalars().all()
    assert changes[-2:] == ["fraud:v2", "fraud:v1"]


async def test_stage_and_existence_of_versions_aliases_and_models(
    registry: RegistryService,
) -> None:
    await _register(registry, "fraud", "v1")
    await registry.set_alias("fraud", "champion", "v1", "ds@x.com")
    async with registry.db.read() as conn:
        port = registry.port
        assert await port.stage_of(conn, "fraud", "v1") is ModelStage.DEVELOPMENT
        assert await port.stage_of(conn, "fraud", "@champion") is ModelStage.DEVELOPMENT
        assert await port.version_exists(conn, "fraud", "v1")
        assert await port.version_exists(conn, "fraud", "@champion")
        assert not await port.version_exists(conn, "fraud", "v9")
        assert not await port.version_exists(conn, "fraud", "@nobody")
        assert await port.model_exists(conn, "fraud")
        assert not await port.model_exists(conn, "other")
        with pytest.raises(NotFound, match="fraud:v9"):
            await port.stage_of(conn, "fraud", "v9")
        with pytest.raises(NotFound, match="'other'"):
            await port.stage_of(conn, "other", "v1")
