"""The routing service: versioned tables, push to watchers, exactly-once metric batches."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import grpc
import pytest
from support.databases import open_database

from neural.mlops.server import traffic
from neural.mlops.server.errors import InvalidArgument
from neural.mlops.server.routing import convert
from neural.mlops.server.routing.model import ModelRoute, RouteVariant, ShadowTarget
from neural.mlops.server.routing.service import MetricsBatch, RoutingService, VariantWindow
from neural.mlops.v1 import routing_pb2, routing_pb2_grpc
from neural.mlops.v1.traffic import LatencyHistogram, VariantStats


class Routes:
    def __init__(self, routes: list[ModelRoute]) -> None:
        self.routes = routes

    async def active_routes(self, conn: Any) -> list[ModelRoute]:
        return list(self.routes)


def _route(split: float = 0.5, model: str = "m", route_id: str = "exp-1") -> ModelRoute:
    return ModelRoute(
        model_name=model,
        route_id=route_id,
        kind="experiment",
        variants=(
            RouteVariant("treatment", split, model, "2"),
            RouteVariant("control", 1 - split, model, "1"),
        ),
    )


async def _service(tmp_path: Path) -> RoutingService:
    return RoutingService(await open_database(tmp_path))


async def test_versions_grow_only_when_content_changes_and_survive_restart(tmp_path: Path) -> None:
    svc = await _service(tmp_path)
    routes = Routes([_route(0.1)])
    svc.add_provider(routes)
    t1 = await svc.current()
    assert t1.version == 1 and t1.routes == (_route(0.1),)
    svc.invalidate()
    assert (await svc.current()).version == 1  # same content, same version
    routes.routes = [_route(0.2)]
    svc.invalidate()
    assert (await svc.current()).version == 2
    await svc.db.close()
    again = await _service(tmp_path)
    again.add_provider(Routes([_route(0.2)]))
    assert (await again.current()).version == 2  # persisted
    again.add_provider(Routes([_route(0.5, model="other", route_id="exp-2")]))
    assert (await again.current()).version == 3
    await again.db.close()


async def test_invalid_routes_are_left_out_and_shadow_only_routes_ride_along(
    tmp_path: Path,
) -> None:
    svc = await _service(tmp_path)
    bad = ModelRoute("bad", "exp-bad", "experiment", variants=(RouteVariant("a", 0.7, "bad"),))
    shadow = ModelRoute("m", "dep-s", "shadow", shadows=(ShadowTarget("s1", "m", "9"),))
    svc.add_provider(Routes([bad, _route(), shadow]))
    table = await svc.current()
    # The shadow deployment mirrors every call of the model: it stays the model's default
    # route (one "primary" variant), beside the test, which takes the units in its range.
    assert [(r.model_name, r.route_id) for r in table.routes] == [("m", "dep-s"), ("m", "exp-1")]
    assert table.routes[0].shadows == (ShadowTarget("s1", "m", "9"),)
    # A shadow route alone gets one primary variant for the model the caller asked for.
    svc2 = await _service(tmp_path / "two")
    svc2.add_provider(Routes([shadow]))
    (only,) = (await svc2.current()).routes
    assert [(v.name, v.weight, v.model_name) for v in only.variants] == [("primary", 1.0, "m")]
    await svc.db.close()
    await svc2.db.close()


async def test_a_rollout_beats_a_pinned_version_and_tests_stay_beside_either(
    tmp_path: Path,
) -> None:
    """One deployment route per model (a rollout in progress wins over the version a
    completed deployment pinned); running tests are never dropped: the sidecar routes
    them inside the deployment's stable share (ASSIGNMENT.md "Layers")."""
    svc = await _service(tmp_path)
    pin = ModelRoute(
        "m",
        "dep-done",
        "deployment",
        variants=(RouteVariant("stable", 1.0, "m", "1"),),
        pinned=True,
    )
    rollout = ModelRoute(
        "m",
        "dep-live",
        "deployment",
        variants=(RouteVariant("canary", 0.1, "m", "3"), RouteVariant("stable", 0.9, "m", "1")),
    )
    deployments, experiments = Routes([pin]), Routes([_route()])
    svc.add_provider(deployments)
    svc.add_provider(experiments)
    assert [r.route_id for r in (await svc.current()).routes] == ["dep-done", "exp-1"]
    deployments.routes = [pin, rollout]
    svc.invalidate()
    assert [r.route_id for r in (await svc.current()).routes] == ["dep-live", "exp-1"]
    experiments.routes = []
    deployments.routes = [pin]
    svc.invalidate()
    assert [r.route_id for r in (await svc.current()).routes] == ["dep-done"]
    await svc.db.close()


def _batch(seq: int, n: int, sidecar: str = "sc-1") -> MetricsBatch:
    stats = VariantStats()
    for i in range(n):
        stats.observe(success=True, latency=0.001 * (i + 1), status_code="OK")
    return MetricsBatch(
        sidecar, seq, windows=(VariantWindow("exp-1", "control", 1_800_000_000_000_000, stats),)
    )


async def test_a_batch_is_applied_exactly_once(tmp_path: Path) -> None:
    svc = await _service(tmp_path)
    svc.add_provider(Routes([_route()]))
    assert await svc.ingest(_batch(1, 5)) is False
    assert await svc.ingest(_batch(1, 5)) is True  # resent after a lost ack
    assert await svc.ingest(_batch(2, 3)) is False
    assert await svc.ingest(_batch(1, 5, sidecar="sc-2")) is False  # another sidecar
    async with svc.db.read() as conn:
        totals = await traffic.totals(conn, "exp-1")
    assert totals["control"].count == 13
    assert totals["control"].latency.count == 13
    await svc.db.close()


def _rollout(*variants: str) -> ModelRoute:
    return ModelRoute(model_name="m", route_id="dep-1", kind="deployment",
                      variants=tuple(RouteVariant(v, 1 / len(variants), "m") for v in variants))


def _window(variant: str, n: int) -> VariantWindow:
    stats = VariantStats()
    for _ in range(n):
        stats.observe(success=True, latency=0.001, status_code="OK")
    return VariantWindow("dep-1", variant, 1_800_000_000_000_000, stats)


async def test_a_replica_started_after_a_rollout_completed_takes_the_canary_backlog(
    tmp_path: Path,
) -> None:
    """A sidecar resends canary windows cut before the rollout completed to a replica that
    only ever compiled the completed route (stable only): the store remembers the canary."""
    svc = await _service(tmp_path)
    svc.add_provider(Routes([_rollout("canary", "stable")]))
    assert await svc.ingest(MetricsBatch("sc-1", 1, windows=(_window("canary", 2),))) is False
    await svc.db.close()
    later = await _service(tmp_path)
    later.add_provider(Routes([_rollout("stable")]))
    backlog = MetricsBatch("sc-1", 2, windows=(_window("canary", 3), _window("stable", 4)))
    assert await later.ingest(backlog) is False
    with pytest.raises(InvalidArgument) as err:  # a variant no replica ever served
        await later.ingest(MetricsBatch("sc-1", 3, windows=(_window("green", 1),)))
    assert err.value.field == "variant"
    async with later.db.read() as conn:
        totals = await traffic.totals(conn, "dep-1")
    assert {v: s.count for v, s in totals.items()} == {"canary": 5, "stable": 4}
    await later.db.close()


@pytest.mark.parametrize(
    ("batch", "field"),
    [
        (MetricsBatch("", 1), "sidecar_id"),
        (MetricsBatch("sc", 0), "sequence"),
        (
            MetricsBatch("sc", 1, windows=(VariantWindow("r", "v", -5, VariantStats()),)),
            "window_start_us",
        ),
    ],
)
async def test_bad_batches_are_rejected_with_the_field_and_change_nothing(
    tmp_path: Path, batch: MetricsBatch, field: str
) -> None:
    svc = await _service(tmp_path)
    with pytest.raises(InvalidArgument) as err:
        await svc.ingest(batch)
    assert err.value.field == field
    async with svc.db.read() as conn:
        assert (await conn.exec_driver_sql("SELECT count(*) FROM metric_batches")).scalar() == 0
    await svc.db.close()


def test_window_conversion_keeps_every_statistic() -> None:
    msg = routing_pb2.VariantWindow(
        route_id="r",
        variant="v",
        window_start_us=10,
        count=4,
        errors=1,
        successes=3,
        status_codes={"OK": 3, "UNAVAILABLE": 1},
        latency_seconds=routing_pb2.Moments(n=4, sum=0.01, sum_squares=0.0001),
        latency_buckets=[0, 2, 0, 2],
        latency_min_seconds=0.001,
        latency_max_seconds=0.004,
        custom={"revenue": routing_pb2.Moments(n=2, sum=3.0, sum_squares=5.0)},
    )
    w = convert.variant_window_from_pb(msg)
    assert (w.stats.count, w.stats.errors, w.stats.successes) == (4, 1, 3)
    assert w.stats.latency == LatencyHistogram({1: 2, 3: 2}, 4, 0.01, 0.0001, 0.001, 0.004)
    assert w.stats.custom["revenue"].mean == 1.5
    assert w.stats.status_codes == {"OK": 3, "UNAVAILABLE": 1}


async def test_a_change_is_pushed_to_every_watcher_at_once(tmp_path: Path) -> None:
    from neural.mlops.server.app import ControlPlane
    from neural.mlops.server.config import ServerConfig

    plane = ControlPlane(ServerConfig(data_dir=tmp_path, listen="127.0.0.1:0", grace_seconds=1))
    await plane.start()
    routes = Routes([_route(0.1, model="pushed", route_id="exp-push")])
    plane.services.routing.add_provider(routes)
    try:
        async with grpc.aio.insecure_channel(plane.address) as ch:
            stub = routing_pb2_grpc.RoutingServiceStub(ch)
            streams = [
                stub.WatchRoutes(routing_pb2.WatchRoutesRequest(sidecar_id=f"s{i}"))
                for i in range(3)
            ]
            first = [await s.read() for s in streams]
            assert len({t.version for t in first}) == 1
            routes.routes = [_route(0.3, model="pushed", route_id="exp-push")]
            plane.services.routing.invalidate()  # what a domain's on_commit does
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            nxt = await asyncio.wait_for(asyncio.gather(*(s.read() for s in streams)), 5)
            assert loop.time() - t0 < 1.0
            assert {t.version for t in nxt} == {first[0].version + 1}
            (route,) = [r for r in nxt[0].routes if r.model_name == "pushed"]
            assert [v.weight for v in route.variants] == [0.3, 0.7]
            for s in streams:
                s.cancel()
    finally:
        await plane.stop()


async def test_old_dedup_markers_are_pruned_but_recent_ones_still_dedup(tmp_path: Path) -> None:
    svc = await _service(tmp_path)
    svc.add_provider(Routes([_route()]))
    assert await svc.ingest(_batch(1, 1)) is False
    assert await svc.prune_dedup(older_than_us=0) == 0  # nothing older than the epoch
    assert await svc.ingest(_batch(1, 1)) is True
    assert await svc.prune_dedup(older_than_us=2**62) == 1
    await svc.db.close()


async def test_a_rejected_batch_is_acknowledged_with_the_error_so_the_stream_goes_on(
    tmp_path: Path,
) -> None:
    from neural.mlops.server.app import ControlPlane
    from neural.mlops.server.config import ServerConfig

    plane = ControlPlane(ServerConfig(data_dir=tmp_path, listen="127.0.0.1:0", grace_seconds=1))
    await plane.start()
    try:
        async with grpc.aio.insecure_channel(plane.address) as ch:
            call = routing_pb2_grpc.RoutingServiceStub(ch).ReportMetrics()
            bad = routing_pb2.MetricsBatch(
                sidecar_id="sc",
                sequence=1,
                windows=[
                    routing_pb2.VariantWindow(
                        route_id="r", variant="v", window_start_us=-1, count=1
                    )
                ],
            )
            good = routing_pb2.MetricsBatch(sidecar_id="sc", sequence=2)
            await call.write(bad)
            await call.write(good)
            await call.done_writing()
            acks = [a async for a in call]
        assert [(a.sequence, bool(a.error)) for a in acks] == [(1, True), (2, False)]
        assert "window_start_us" in acks[0].error
    finally:
        await plane.stop()
