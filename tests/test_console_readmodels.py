"""The read models added for the console (ListSidecars, GetTrafficSeries): as RPCs of the
contract, reached through the console's gateway and computed from a real store."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from statsmodels.stats.proportion import proportions_ztest

sys.path.insert(0, str(Path(__file__).parent))

from support.console import Console, start_console_server  # noqa: E402
from support.databases import open_database  # noqa: E402

from neural.mlops.server.routing.series import (  # noqa: E402
    route_series,
    sequential_settings,
    shadow_series,
    span,
    two_proportion_p,
)
from neural.mlops.server.traffic import store  # noqa: E402
from neural.mlops.v1 import routing_pb2, routing_pb2_grpc  # noqa: E402
from neural.mlops.v1.traffic import ShadowStats, VariantStats  # noqa: E402

pytestmark = pytest.mark.storage

MINUTE = 60_000_000
T0 = 1_800_000_000_000_000


@pytest.mark.parametrize(("x1", "n1", "x0", "n0"),
                         [(45, 100, 30, 100), (500, 1000, 480, 990), (3, 7, 1, 9)])
def test_the_p_value_is_statsmodels_pooled_two_proportion_z_test(
        x1: int, n1: int, x0: int, n0: int) -> None:
    _z, expected = proportions_ztest([x1, x0], [n1, n0])
    assert two_proportion_p(x1, n1, x0, n0) == pytest.approx(expected, rel=1e-12)


def test_the_p_value_is_undefined_without_traffic_or_variance() -> None:
    assert two_proportion_p(0, 0, 5, 10) is None
    assert two_proportion_p(10, 10, 7, 7) is None  # every call succeeded on both sides


def _stats(successes: int, failures: int) -> VariantStats:
    s = VariantStats()
    for i in range(successes + failures):
        s.observe(success=i < successes, error=i >= successes, latency=0.01 * (1 + i % 5))
    return s


async def _fill(data: Path) -> None:
    db = await open_database(data)
    try:
        async with db.change(audited=False) as ch:
            for k, (c, t) in enumerate([((40, 10), (45, 5)), ((38, 12), (47, 3)),
                                        ((41, 9), (46, 4))]):
                await store.apply(ch.conn, "exp-1", "control", T0 + k * MINUTE, _stats(*c))
                await store.apply(ch.conn, "exp-1", "treatment", T0 + k * MINUTE, _stats(*t))
            shadow = ShadowStats()
            shadow.observe(agreed=True, primary_latency=0.01, shadow_latency=0.02)
            shadow.observe(agreed=False, primary_latency=0.01, shadow_latency=0.5,
                           sample={"request": 1})
            await store.apply_shadow(ch.conn, "sh-1", T0, shadow)
    finally:
        await db.close()


def test_route_series_pages_whole_windows_with_cumulative_p_values(tmp_path: Path) -> None:
    async def run() -> None:
        await _fill(tmp_path)
        db = await open_database(tmp_path)
        try:
            first, token = await route_series(db, "exp-1", span(size=2))
            rest, last = await route_series(db, "exp-1", span(size=2, token=token))
            hourly, _ = await route_series(db, "exp-1", span(step_us=60 * MINUTE))
            shadows, _ = await shadow_series(db, "sh-1", span())
        finally:
            await db.close()
        assert [p.start_us for p in first + rest] == [T0, T0 + MINUTE, T0 + 2 * MINUTE]
        assert token and not last
        final = {v.variant: v for v in rest[-1].variants}
        assert final["treatment"].cumulative.count == 150
        assert final["treatment"].cumulative.successes == 138
        _z, expected = proportions_ztest([138, 119], [150, 150])
        assert final["treatment"].p_value == pytest.approx(expected)
        assert final["control"].p_value is None  # the baseline
        assert len(hourly) == 1  # the three windows added up in one hour's step
        whole = {v.variant: v for v in hourly[0].variants}
        assert whole["treatment"].window == final["treatment"].cumulative
        assert whole["treatment"].p_value == pytest.approx(expected)
        assert shadows[0].shadow is not None and shadows[0].shadow.compared == 2
        # a window written later changes the page, not a remembered copy of it
        db = await open_database(tmp_path)
        try:
            before, _ = await route_series(db, "exp-1", span())
            async with db.change(audited=False) as ch:
                await store.apply(ch.conn, "exp-1", "control", T0, _stats(0, 10))
            after, _ = await route_series(db, "exp-1", span())
        finally:
            await db.close()
        counts = [{v.variant: v.window.count for v in p.variants} for p in (before[0], after[0])]
        assert counts == [{"control": 50, "treatment": 50}, {"control": 60, "treatment": 50}]

    asyncio.run(run())


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Console, str]]:
    data = tmp_path_factory.mktemp("readmodels") / "data"
    server, url = start_console_server(data)
    try:
        asyncio.run(_fill(data))
        console = Console(url)
        assert console.login(name="ops@x.com").status_code == 200
        yield console, server.address
    finally:
        server.stop()


def test_list_sidecars_shows_a_watching_sidecar_and_its_table_version(
        plane: tuple[Console, str]) -> None:
    console, address = plane
    with grpc.insecure_channel(address) as channel:
        stub = routing_pb2_grpc.RoutingServiceStub(channel)
        stream = stub.WatchRoutes(routing_pb2.WatchRoutesRequest(sidecar_id="edge-7"),
                                  metadata=(("x-neural-user", "edge"),))
        first = next(stream)
        listed = console.ok("RoutingService", "ListSidecars")["sidecars"]
        stream.cancel()
    mine = [s for s in listed if s["sidecar_id"] == "edge-7"]
    assert len(mine) == 1 and mine[0]["connected"] is True
    assert mine[0]["table_version"] == str(first.version)
    assert mine[0]["address"].startswith(("ipv4:127.0.0.1", "ipv6:"))


def test_traffic_series_through_the_console(plane: tuple[Console, str]) -> None:
    console, _ = plane
    series = console.ok("RoutingService", "GetTrafficSeries", {"route_id": "exp-1"})
    assert [w["window_start_us"] for w in series["windows"]] == [str(T0 + k * MINUTE)
                                                                 for k in range(3)]
    treatment = series["windows"][0]["variants"][1]
    assert treatment["variant"] == "treatment" and treatment["count"] == "50"
    assert 0 < treatment["cumulative_p_value"] < 1
    assert treatment["latency_p95_seconds"] > treatment["latency_p50_seconds"] > 0
    shadow = console.ok("RoutingService", "GetTrafficSeries",
                        {"route_id": "sh-1", "shadow": True})["windows"][0]["shadow"]
    assert shadow["compared"] == "2" and shadow["agreements"] == "1"
    assert json.loads(shadow["disagreements_json"][0]) == {"request": 1}
    assert sum(int(b["count"]) for b in shadow["shadow_latency"]) == 2
    r = console.rpc("RoutingService", "GetTrafficSeries", {"route_id": ""})
    assert r.status_code == 400 and r.json()["details"][1]["field_violations"][0]["field"] \
        == "route_id"
    for bad in ({"since_us": -1}, {"step_us": 90_000_000}, {"page_token": "forged"}):
        r = console.rpc("RoutingService", "GetTrafficSeries", {"route_id": "exp-1", **bad})
        assert r.status_code == 400, bad


async def test_a_tests_series_carries_the_sequential_look_analyze_test_reports(
        tmp_path: Path) -> None:
    from support.databases import open_services

    from neural.mlops.server.experiments.spec import CreateSpec

    services = await open_services(tmp_path / "store")
    try:
        test = await services.experiments.create_test(CreateSpec(
            name="seq", control_variant="m:v1", treatment_variant="m:v2",
            decision_rule="sequential", confidence_level=0.9))
        await services.experiments.start_test(test.test_id)
        async with services.db.change(audited=False) as ch:
            for k in range(6):  # a steady lift: each look's evidence stronger than the last
                await store.apply(ch.conn, test.test_id, "control", T0 + k * MINUTE,
                                  _stats(80, 20))
                await store.apply(ch.conn, test.test_id, "treatment", T0 + k * MINUTE,
                                  _stats(88, 12))
        seq = await sequential_settings(services.db, test.test_id)
        points, _ = await route_series(services.db, test.test_id, span(), "", seq)
        report = await services.experiments.analyze_test(test.test_id)
        by_unit = await _by_unit_test_has_no_looks(services)
    finally:
        await services.close()
    assert by_unit
    looks = [{v.variant: v for v in p.variants}["treatment"].sequential for p in points]
    assert all(look is not None for look in looks)
    p_values = [look[0] for look in looks if look is not None]
    assert p_values == sorted(p_values, reverse=True) and p_values[-1] < 1.0
    view = report["comparisons"]["treatment"]["sequential"]
    last = looks[-1]
    assert last is not None
    assert last[0] == pytest.approx(view["p_value"], rel=1e-12)  # AnalyzeTest's first look
    assert min(p_values) == pytest.approx(view["p_value"], rel=1e-12)
    assert (last[1], last[2]) == pytest.approx(tuple(view["confidence_sequence"]), rel=1e-12)
    assert {v.variant: v for v in points[-1].variants}["control"].sequential is None
    assert await _no_sequential_for_a_deployment_route(tmp_path)


async def _by_unit_test_has_no_looks(services: Any) -> bool:
    """Requests naming their units: AnalyzeTest counts units, the windows cannot, so the
    series carries no sequential look (a request-level one would be invalid)."""
    from neural.mlops.server.experiments.recording import RequestRecord
    from neural.mlops.server.experiments.spec import CreateSpec

    test = await services.experiments.create_test(CreateSpec(
        name="units", control_variant="n:v1", treatment_variant="n:v2",
        decision_rule="sequential"))
    await services.experiments.start_test(test.test_id)
    await services.experiments.record_requests(test.test_id, [
        RequestRecord(variant="treatment" if i % 2 else "control", success=i % 7 > 1,
                      user_id=f"u{i % 40}") for i in range(800)])
    seq = await sequential_settings(services.db, test.test_id)
    points, _ = await route_series(services.db, test.test_id, span(), "", seq)
    report = await services.experiments.analyze_test(test.test_id)
    looks = [v.sequential for p in points for v in p.variants]
    return (seq is not None and seq.by_unit and bool(points) and looks == [None] * len(looks)
            and report["analysis_unit"]["unit"] == "unit")


async def _no_sequential_for_a_deployment_route(tmp_path: Path) -> bool:
    await _fill(tmp_path)
    db = await open_database(tmp_path)
    try:
        seq = await sequential_settings(db, "exp-1")
        points, _ = await route_series(db, "exp-1", span(), "", seq)
    finally:
        await db.close()
    return seq is None and all(v.sequential is None for p in points for v in p.variants)
