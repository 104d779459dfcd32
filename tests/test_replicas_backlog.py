"""A replica (re)started after a shadow deployment stopped takes the sidecars' backlog of
that shadow's windows, as it takes the canary backlog of a completed rollout
(test_routing_service.py): the store remembers what was served. A shadow no replica
ever served is still refused, naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_routing_service import Routes, _service

from neural.mlops.server import traffic
from neural.mlops.server.errors import InvalidArgument
from neural.mlops.server.routing.model import ModelRoute, ShadowTarget
from neural.mlops.server.routing.service import MetricsBatch, ShadowWindow
from neural.mlops.v1.traffic import ShadowStats

pytestmark = pytest.mark.storage

START_US = 1_800_000_000_000_000


def _shadow_route(*shadow_ids: str) -> ModelRoute:
    return ModelRoute("m", "dep-s", "shadow",
                      shadows=tuple(ShadowTarget(s, "m", "9") for s in shadow_ids))


def _shadow_window(shadow_id: str, n: int) -> ShadowWindow:
    stats = ShadowStats()
    for _ in range(n):
        stats.observe(agreed=True, primary_latency=0.001, shadow_latency=0.002)
    return ShadowWindow("dep-s", shadow_id, START_US, stats)


async def test_a_replica_started_after_a_shadow_stopped_takes_its_backlog(
    tmp_path: Path,
) -> None:
    svc = await _service(tmp_path)
    svc.add_provider(Routes([_shadow_route("s1")]))
    assert await svc.ingest(MetricsBatch("sc-1", 1, shadows=(_shadow_window("s1", 2),))) is False
    await svc.db.close()

    later = await _service(tmp_path)  # the shadow stopped: no route names it any more
    later.add_provider(Routes([_shadow_route()]))
    backlog = MetricsBatch("sc-1", 2, shadows=(_shadow_window("s1", 3),))
    assert await later.ingest(backlog) is False
    with pytest.raises(InvalidArgument) as err:  # a shadow no replica ever served
        await later.ingest(MetricsBatch("sc-1", 3, shadows=(_shadow_window("s9", 1),)))
    assert err.value.field == "shadow_id"
    async with later.db.read() as conn:
        assert (await traffic.shadow_totals(conn, "s1")).compared == 5
        assert (await traffic.shadow_totals(conn, "s9")).compared == 0
    await later.db.close()
