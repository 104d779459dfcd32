"""Forged metric windows are refused whole and change nothing in the analysis (#15 probe)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from support.databases import open_database
from support.processes import ServerProcess

from neural.mlops.ab_testing import ABTestManager
from neural.mlops.v1 import routing_pb2 as pb
from neural.mlops.v1 import routing_pb2_grpc

START_US = 1_800_000_000_000_000


def _window(route_id: str, variant: str = "control", **kw: object) -> pb.VariantWindow:
    fields: dict[str, object] = {"count": 10, "successes": 9, "errors": 1}
    fields.update(kw)
    return pb.VariantWindow(route_id=route_id, variant=variant, window_start_us=START_US,
                            **fields)  # type: ignore[arg-type]


def _send(address: str, *batches: pb.MetricsBatch) -> list[pb.MetricsAck]:
    with grpc.insecure_channel(address) as ch:
        stub = routing_pb2_grpc.RoutingServiceStub(ch)
        return list(stub.ReportMetrics(iter(batches), timeout=30))


@pytest.fixture
def server(shared_server: ServerProcess) -> ServerProcess:
    """The module's tests share one control plane: each runs its own test on its own model
    and reports as its own sidecar (``_sidecar``), so no test sees another's windows."""
    return shared_server


@pytest.fixture
def running(server: ServerProcess) -> Iterator[tuple[ABTestManager, str]]:
    m = ABTestManager(server.url)
    model = f"fraud-{next(_MODELS)}"
    tid = m.create_test(name=f"integrity-{model}", control_variant=f"{model}:v1",
                        treatment_variant=f"{model}:v2", traffic_split=0.5,
                        created_by="ds@example.com").test_id
    m.start_test(tid)
    yield m, tid
    m.close()


_MODELS = itertools.count()


def _sidecar(tid: str) -> str:
    """The sidecar id of a test's batches: one per A/B test (batches deduplicate by id)."""
    return f"sc-{tid}"


FORGED = [
    ("negative count", {"count": -5, "successes": 0, "errors": 0}, "count"),
    ("more successes than requests", {"count": 10, "successes": 100_000}, "successes"),
    ("more errors than requests", {"count": 1, "successes": 0, "errors": 7}, "errors"),
    ("latency sum beyond a day per request",
     {"latency_seconds": pb.Moments(n=10, sum=1.3e154, sum_squares=1.0)}, "latency"),
    ("NaN latency", {"latency_seconds": pb.Moments(n=10, sum=float("nan"))}, "latency"),
    ("infinite custom metric",
     {"custom": {"revenue": pb.Moments(n=1, sum=float("inf"))}}, "custom"),
    ("status codes beyond count", {"status_codes": {"OK": 11}}, "status_codes"),
]


@pytest.mark.parametrize(("what", "fields", "named"), FORGED, ids=[f[0] for f in FORGED])
def test_a_forged_window_is_refused_and_the_analysis_is_unchanged(
    running: tuple[ABTestManager, str], server: ServerProcess, what: str,
    fields: dict[str, object], named: str,
) -> None:
    m, tid = running
    before = m.analyze_test(tid)
    good = _window(tid, "treatment")
    acks = _send(server.address, pb.MetricsBatch(sidecar_id=_sidecar(tid), sequence=1,
                                                 windows=[good, _window(tid, **fields)]))
    assert len(acks) == 1 and acks[0].error, what
    assert named in acks[0].error
    after = m.analyze_test(tid)
    # the whole batch is refused: not even its valid window counted
    for arm in ("control", "treatment"):
        assert after[arm]["n"] == before[arm]["n"]


@pytest.mark.parametrize(
    ("route", "variant", "named"),
    [("no-such-route", "control", "route_id"), (None, "champion", "variant")],
)
def test_windows_for_routes_or_variants_nobody_serves_are_refused(
    running: tuple[ABTestManager, str], server: ServerProcess, route: str | None,
    variant: str, named: str,
) -> None:
    m, tid = running
    acks = _send(server.address, pb.MetricsBatch(
        sidecar_id=_sidecar(tid), sequence=1, windows=[_window(route or tid, variant)]))
    assert named in acks[0].error
    assert m.analyze_test(tid)["control"]["n"] == 0


def test_a_valid_window_for_a_served_route_is_counted_once(
    running: tuple[ABTestManager, str], server: ServerProcess
) -> None:
    m, tid = running
    batch = pb.MetricsBatch(sidecar_id=_sidecar(tid), sequence=1, windows=[_window(tid)])
    acks = _send(server.address, batch, batch)
    assert [(a.error, a.duplicate) for a in acks] == [("", False), ("", True)]
    a = m.analyze_test(tid)
    assert (a["control"]["n"], a["control"]["successes"]) == (10, 9)


def test_batches_sent_ahead_under_a_sidecars_public_id_do_not_drop_its_real_ones(
    running: tuple[ABTestManager, str], server: ServerProcess
) -> None:
    """The probe's pre-emption: empty batches with the real id and the next sequence
    numbers. Dedup is per (sidecar_id, session, sequence) and the session is secret."""
    m, tid = running
    forged = [pb.MetricsBatch(sidecar_id=_sidecar(tid), sequence=s, session="attacker-session-0001")
              for s in range(1, 4)]
    assert all(not a.error for a in _send(server.address, *forged))
    real = [pb.MetricsBatch(sidecar_id=_sidecar(tid), sequence=s, session="real-session-secret-42",
                            windows=[_window(tid)]) for s in range(1, 4)]
    acks = _send(server.address, *real)
    assert [(a.error, a.duplicate) for a in acks] == [("", False)] * 3
    assert m.analyze_test(tid)["control"]["n"] == 30


def test_a_malformed_session_is_refused(
    running: tuple[ABTestManager, str], server: ServerProcess
) -> None:
    _, tid = running
    acks = _send(server.address, pb.MetricsBatch(sidecar_id=_sidecar(tid), sequence=1, session="x",
                                                 windows=[_window(tid)]))
    assert "session" in acks[0].error


async def test_with_authentication_a_sidecar_id_belongs_to_its_first_principal(
    tmp_path: Path,
) -> None:
    from neural.mlops.server.errors import PermissionDenied
    from neural.mlops.server.identity import CallContext, reset_call, set_call
    from neural.mlops.server.routing.model import ModelRoute, RouteVariant
    from neural.mlops.server.routing.service import MetricsBatch, RoutingService, VariantWindow
    from neural.mlops.v1.traffic import VariantStats

    class Routes:
        async def active_routes(self, conn: object) -> list[ModelRoute]:
            return [ModelRoute(model_name="m", route_id="r", kind="experiment",
                               variants=(RouteVariant("control", 1.0, "m", "1"),))]

    svc = RoutingService(await open_database(tmp_path))
    svc.add_provider(Routes())
    stats = VariantStats()
    stats.observe(success=True, latency=0.01)
    batch = MetricsBatch("sc-1", 1, windows=(VariantWindow("r", "control", START_US, stats),),
                         session="s" * 20)

    async def as_principal(name: str, b: MetricsBatch) -> bool:
        token = set_call(CallContext(actor=name, authenticated=True))
        try:
            return await svc.ingest(b)
        finally:
            reset_call(token)

    try:
        assert await as_principal("spiffe://neural-mlops/sidecar/a", batch) is False
        with pytest.raises(PermissionDenied) as err:
            await as_principal("spiffe://neural-mlops/sidecar/b",
                               MetricsBatch("sc-1", 2, windows=batch.windows, session="t" * 20))
        assert err.value.field == "sidecar_id"
        assert await as_principal("spiffe://neural-mlops/sidecar/a",
                                  MetricsBatch("sc-1", 2, windows=batch.windows,
                                               session="s" * 20)) is False
    finally:
        await svc.db.close()


async def test_unit_totals_equal_an_aggregate_of_the_stored_units_after_mixed_batches(
    tmp_path: Path,
) -> None:
    """Windows of new and returning units (a custom metric on some, covariates set before
    and after a unit's traffic) move the per-variant totals exactly as a fresh aggregate
    over the stored unit rows would have them."""
    import json
    import random

    import numpy as np
    import sqlalchemy as sa

    from neural.mlops.server.experiments import unitstore
    from neural.mlops.server.experiments.unitstats import aggregate
    from neural.mlops.server.routing import ingest
    from neural.mlops.server.storage.schema import experiment_units
    from neural.mlops.v1.traffic import Moments, VariantStats

    rng = random.Random(7)
    db = await open_database(tmp_path)
    known = {"t": ingest.KnownRoute(frozenset({"a", "b"}), frozenset(), "experiment")}
    seen: list[int] = []
    try:
        for seq in range(1, 13):
            back = rng.sample(seen, min(len(seen), 40))
            keys = back + [rng.getrandbits(63) for _ in range(80 - len(back))]
            seen += keys[len(back):]
            req = [rng.randint(1, 4) for _ in keys]
            err = [rng.randint(0, r) for r in req]
            lat = [r * rng.random() for r in req]
            cn = [r if rng.random() < 0.5 else 0 for r in req]
            cs = [n * rng.uniform(-2.0, 5.0) for n in cn]
            units = ingest.units_from_arrays(keys, req, err, lat, {"score": (cn, cs)})
            stats = VariantStats(count=sum(req), errors=sum(err), successes=sum(req) - sum(err),
                                 custom={"score": Moments(sum(cn), sum(cs), 1e9)})
            stats.latency.count, stats.latency.sum = sum(req), sum(lat) + 1.0
            stats.latency.sum_squares, stats.latency.counts = 1e6, {3: sum(req)}
            window = ingest.VariantWindow("t", "ab"[seq % 2], START_US, stats, units)
            batch = ingest.MetricsBatch("sc-units", seq, (window,), session="u" * 20)
            ingest.check_batch(batch, known)
            assert await ingest.apply_batch(db, batch, now_us=seq) is False
            if seq in (4, 9):  # some counted units and some not yet seen get a covariate
                async with db.change(audited=False) as ch:
                    await unitstore.set_covariates(
                        ch.conn, "t", {k: rng.gauss(0.0, 2.0)
                                       for k in rng.sample(seen, 30) + [seq, seq + 1]})
        async with db.read() as conn:
            rows = (await conn.execute(sa.select(experiment_units))).all()
            totals = await unitstore.totals(conn, "t")
    finally:
        await db.close()
    for variant in ("a", "b"):
        mine = [r for r in rows if r.variant == variant]
        custom = [json.loads(r.custom) if r.custom else {} for r in mine]
        score = {"score": (np.array([c.get("score", [0, 0.0])[0] for c in custom]),
                           np.array([c.get("score", [0, 0.0])[1] for c in custom]))}
        ref = aggregate(np.array([r.requests for r in mine]),
                        np.array([r.successes for r in mine]),
                        errors=np.array([r.errors for r in mine]),
                        latency_sum=np.array([r.latency_sum for r in mine]),
                        covariate=np.array([np.nan if r.covariate is None else r.covariate
                                            for r in mine]), custom=score)
        got = totals[variant]
        assert (got.units, got.with_covariate) == (ref.units, ref.with_covariate) == (
            len(mine), sum(r.covariate is not None for r in mine))
        assert 0 < got.with_covariate < got.units
        assert got.c == pytest.approx(ref.c) and got.cc == pytest.approx(ref.cc)
        assert set(got.metrics) == set(ref.metrics) == {"success_rate", "error_rate",
                                                         "latency", "score"}
        for key, m in got.metrics.items():
            assert m.to_list() == pytest.approx(ref.metrics[key].to_list(), rel=1e-9), key
