"""Alias moves on a real store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from support.databases import open_database

from neural.mlops.server.clock import ManualClock
from neural.mlops.server.registry.service import RegisterSpec, RegistryService


@pytest.fixture
async def registry(tmp_path: Path) -> AsyncIterator[RegistryService]:
    clock = ManualClock()
    db = await open_database(tmp_path / "store", clock=clock)
    try:
        yield RegistryService(db, tmp_path / "store", clock=clock)
    finally:
        await db.close()


async def test_setting_an_alias_where_it_points_changes_nothing(
    registry: RegistryService,
) -> None:
    await registry.register_model(RegisterSpec(name="fraud", version="v1", created_by="ds@x.com",
                                               artifact_uri="s3://bucket/model.pt"))
    await registry.set_alias("fraud", "champion", "v1", "ds@x.com")
    again = await registry.set_alias("fraud", "champion", "v1", "ds@x.com")
    assert (again.version, again.previous_version) == ("v1", "v1")
    assert [h.kind for h in await registry.history("fraud")] == ["alias"]
