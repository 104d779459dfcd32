"""Per-unit traffic through the sidecar: its windows count requests per routing key, the
control plane adds them to the experiment's per-unit store exactly once, and the analysis
is by unit. Also the bounds: the per-window cap and its overflow, the 64 KiB message
bound, and every refusal of a forged per-unit map."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from peers.procs import start_demo, start_sidecar  # noqa: E402
from support.databases import execute_sql  # noqa: E402
from test_sidecar_routing import _call_many  # noqa: E402

from neural.mlops.ab_testing import ABTestManager  # noqa: E402
from neural.mlops.server.errors import InvalidArgument  # noqa: E402
from neural.mlops.server.routing.convert import batch_from_pb  # noqa: E402
from neural.mlops.server.routing.ingest import KnownRoute, check_batch  # noqa: E402
from neural.mlops.sidecar.metrics import MAX_UNITS, Aggregator  # noqa: E402
from neural.mlops.v1 import routing_pb2  # noqa: E402
from neural.mlops.v1.limits import MAX_BULK_ELEMENT_BYTES  # noqa: E402
from neural.mlops.v1.units import unit_key  # noqa: E402

KNOWN = {"t1": KnownRoute(frozenset({"control", "treatment"}), frozenset(), "experiment"),
         "d1": KnownRoute(frozenset({"stable", "canary"}), frozenset(), "deployment")}


def _wait(predicate, timeout: float) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise TimeoutError


def test_sidecar_traffic_is_analysed_by_unit_with_each_users_requests(server) -> None:  # noqa: ANN001
    model = start_demo("fraud_detector")
    sidecar = start_sidecar(model.address, server.address, "--flush-interval", "0.2")
    try:
        _wait(lambda: sidecar.health()["routing"] == "live", 20)
        with ABTestManager(server.url) as m:
            test = m.create_test(name="units via sidecar", control_variant="fraud_detector:v1.0.0",
                                 treatment_variant="fraud_detector:v2.0.0", traffic_split=0.5)
            before = sidecar.health()["table_version"]
            m.start_test(test.test_id)
            _wait(lambda: sidecar.health()["table_version"] > before, 10)
            users = [f"user-{i}" for i in range(12)]
            sent = {u: 2 + i for i, u in enumerate(users)}  # user-i sends 2 + i requests
            calls: list[str | None] = [u for u in users for _ in range(sent[u] // 2)]
            asyncio.run(_call_many(sidecar.address, calls, model="fraud_detector"))
            time.sleep(0.5)  # the rest in later windows and batches: a unit spans several
            rest: list[str | None] = [u for u in users for _ in range(sent[u] - sent[u] // 2)]
            asyncio.run(_call_many(sidecar.address, rest + [None] * 5, model="fraud_detector"))
            _wait(lambda: sidecar.health()["batches_pending"] == 0, 10)
            time.sleep(0.5)
            _wait(lambda: sidecar.health()["batches_pending"] == 0, 10)
            a = m.analyze_test(test.test_id)
            variant_of = {u: m.get_variant(test.test_id, user_id=u) for u in users}
    finally:
        sidecar.stop()
        model.stop()
    expected_units = {v: sum(1 for u in users if variant_of[u] == v)
                      for v in ("control", "treatment")}
    assert a["analysis_unit"]["unit"] == "unit"
    assert a["analysis_unit"]["units"] == expected_units
    assert a["srm"]["unit"] == "unit" and a["srm"]["observed_counts"] == expected_units
    assert a["control"]["n"] + a["treatment"]["n"] == sum(sent.values()) + 5
    assert any("named no unit" in w for w in a["warnings"])  # the 5 calls without a key
    (rows,) = execute_sql(server.data_dir, (
        "SELECT variant, unit_key, requests, successes, errors, latency_n FROM experiment_units "
        "WHERE test_id = ?", (test.test_id,)))
    got = {(variant, key): (r, s, e, n) for variant, key, r, s, e, n in rows}
    assert got == {(variant_of[u], unit_key(u)): (sent[u], sent[u], 0, sent[u]) for u in users}


def _window(units: routing_pb2.UnitBreakdown | None = None, *, count: int = 10, errors: int = 1,
            latency: float = 1.0, route: str = "t1", variant: str = "control",
            custom: dict | None = None) -> routing_pb2.VariantWindow:
    w = routing_pb2.VariantWindow(
        route_id=route, variant=variant, window_start_us=60_000_000, window_us=1_000_000,
        count=count, errors=errors, successes=count - errors,
        latency_seconds=routing_pb2.Moments(n=count, sum=latency, sum_squares=latency),
        latency_buckets=[count], custom=custom or {})
    if units is not None:
        w.units.CopyFrom(units)
    return w


def _check(*windows: routing_pb2.VariantWindow) -> None:
    msg = routing_pb2.MetricsBatch(sidecar_id="s", sequence=1, windows=windows)
    check_batch(batch_from_pb(msg), KNOWN)


def test_a_window_past_the_unit_cap_counts_the_rest_as_overflow_in_bounded_messages():
    agg = Aggregator()
    slot = agg.slot("m", "t1", "control", per_unit=True)
    for i in range(MAX_UNITS + 500):
        unit = f"u{i}"
        slot.record_custom({"score": 0.5}, unit)
        slot.record(None if i % 3 else "INTERNAL", 0.01, unit)
        slot.record(None, 0.02, unit)
    slot.record(None, 0.01, None)
    windows, _ = agg.cut()
    assert len(windows) > 1 and all(w.ByteSize() <= MAX_BULK_ELEMENT_BYTES for w in windows)
    assert windows[0].count == 2 * (MAX_UNITS + 500) + 1
    assert all(w.count == 0 for w in windows[1:])  # continuations carry units only
    assert windows[0].units.overflow_requests == 1000
    assert sum(len(w.units.keys) for w in windows) == MAX_UNITS
    assert sum(sum(w.units.requests) for w in windows) == 2 * MAX_UNITS
    assert sum(sum(w.units.custom["score"].n) for w in windows) == MAX_UNITS
    _check(*windows)  # what a sidecar sends passes the control plane's checks


def test_units_are_counted_only_on_experiment_routes():
    agg = Aggregator()
    agg.slot("m", "d1", "stable").record(None, 0.01, "u1")
    windows, _ = agg.cut()
    assert not windows[0].HasField("units")


def _units(**kw) -> routing_pb2.UnitBreakdown:
    base = {"keys": [1, 2], "requests": [3, 4], "errors": [0, 1], "latency_seconds": [0.3, 0.4]}
    return routing_pb2.UnitBreakdown(**{**base, **kw})


@pytest.mark.parametrize("window", [
    _window(_units(requests=[3, 8])),  # more requests than the window
    _window(_units(errors=[0, 2]), errors=1),  # more errors than the window
    _window(_units(errors=[4, 0])),  # a unit with more errors than requests
    _window(_units(requests=[-1, 4])),
    _window(_units(latency_seconds=[0.9, 0.4])),  # more latency than the window
    _window(_units(latency_seconds=[float("nan"), 0.4])),
    _window(_units(keys=[1])),  # arrays of different lengths
    _window(_units(overflow_requests=5)),  # 7 requests + 5 overflow > 10
    _window(_units(custom={"score": routing_pb2.UnitMetric(n=[1, 1], sum=[1.0, 1.0])})),
    _window(_units(), route="d1", variant="stable"),  # not an experiment
], ids=["requests", "errors", "unit-errors", "negative", "latency", "nan", "lengths",
        "overflow", "custom-not-in-window", "deployment"])
def test_forged_unit_maps_are_refused(window: routing_pb2.VariantWindow) -> None:
    with pytest.raises(InvalidArgument) as exc:
        _check(window)
    assert exc.value.field == "units"


def test_a_windows_units_are_judged_over_every_message_that_carries_them():
    first = _window(_units(), count=8)  # 3 + 4 requests in units
    more = _window(_units(keys=[3], requests=[1], errors=[0], latency_seconds=[0.1]), count=0,
                   errors=0, latency=0.0)
    more.ClearField("latency_buckets")
    _check(first, more)  # 8 requests in units, 8 in the window
    more.units.requests[:] = [2]
    with pytest.raises(InvalidArgument):
        _check(first, more)
