"""ABTestManager behaviour, identical embedded and remote (a real control-plane subprocess)."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.processes import ServerProcess, start_server

from neural.mlops._runtime import EmbeddedRuntime
from neural.mlops.ab_testing import ABTestManager, TestStatus, TrafficSplitStrategy
from neural.mlops.errors import FailedPrecondition, InvalidArgument, NotFound
from neural.mlops.v1.assignment import assign


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One control plane for the module: each test creates its own tests, and list_tests
    assertions filter by this test's ids."""
    srv = start_server(tmp_path_factory.mktemp("ab-server"))
    yield srv
    srv.stop()


@pytest.fixture(params=["embedded", "remote"])
def manager(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ABTestManager]:
    if request.param == "embedded":
        yield ABTestManager(str(tmp_path / "ab_tests"))
    else:
        m = ABTestManager(request.getfixturevalue("shared_server").url)
        yield m
        # Tests here start tests on the same few models: a live one holds its model's
        # layer, so the next start would be refused (LAYER_RANGE_TAKEN). Free it.
        for t in m.list_tests():
            if t.status in (TestStatus.RUNNING, TestStatus.PAUSED):
                m.stop_test(t.test_id)
        m.close()


def _new(manager: ABTestManager, **kw) -> str:
    args = {
        "name": "checkout model",
        "control_variant": "fraud:v1",
        "treatment_variant": "fraud:v2",
        "traffic_split": 0.2,
        "created_by": "ds@example.com",
    }
    args.update(kw)
    return manager.create_test(**args).test_id


def test_lifecycle_and_invalid_transitions(manager: ABTestManager) -> None:
    tid = _new(manager)
    test = manager.get_test(tid)
    assert test.status is TestStatus.DRAFT and test.strategy is TrafficSplitStrategy.HASH_BASED
    assert test.control_variant == "fraud:v1" and test.treatment_variant == "fraud:v2"
    assert [v.name for v in test.variants] == ["treatment", "control"]
    for call in (manager.pause_test, manager.resume_test):
        with pytest.raises(FailedPrecondition):
            call(tid)
    assert manager.start_test(tid).status is TestStatus.RUNNING
    with pytest.raises(FailedPrecondition):
        manager.start_test(tid)
    assert manager.pause_test(tid, reason="investigating").status is TestStatus.PAUSED
    assert manager.get_variant(tid, user_id="anyone") == "control"  # paused: safe arm
    assert manager.resume_test(tid).status is TestStatus.RUNNING
    stopped = manager.stop_test(tid)
    assert stopped.status is TestStatus.STOPPED and stopped.ended_at is not None
    with pytest.raises(FailedPrecondition):
        manager.resume_test(tid)
    with pytest.raises(InvalidArgument) as err:
        manager.conclude_test(tid, winner="ghost")
    assert err.value.field == "winner"
    done = manager.conclude_test(tid, winner="treatment", reason="ship it")
    assert done.status is TestStatus.CONCLUDED and done.winner == "treatment"
    assert manager.get_variant(tid, user_id="anyone") == "treatment"  # concluded: the winner
    with pytest.raises(FailedPrecondition):
        manager.stop_test(tid)
    with pytest.raises(FailedPrecondition):
        manager.record_request(test_id=tid, variant="control", success=True)
    with pytest.raises(NotFound):
        manager.get_test("test_missing")
    assert tid in [t.test_id for t in manager.list_tests(status="concluded")]
    assert tid not in [t.test_id for t in manager.list_tests(TestStatus.RUNNING)]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"traffic_split": 1.5}, "traffic_split"),
        ({"traffic_split": float("nan")}, "traffic_split"),
        ({"strategy": "sticky"}, "strategy"),
        ({"treatment_variant": None}, "control_variant"),
        ({"control_variant": "bad/name:v1"}, "control_variant"),
        ({"name": ""}, "name"),
        ({"confidence_level": 1.2}, "confidence_level"),
        ({"decision_rule": "vibes"}, "decision_rule"),
        ({"description": 123}, "description"),
        ({"control_variant": None, "treatment_variant": None, "variants": 5}, "variants"),
        (
            {"control_variant": None, "treatment_variant": None, "variants": [("control", "m:v1")]},
            "variants",
        ),
        (
            {
                "control_variant": None,
                "treatment_variant": None,
                "variants": [("control", "m:v1", 0.5), ("b", "m:v2", 0.4)],
            },
            "variants",
        ),
        (
            {
                "control_variant": None,
                "treatment_variant": None,
                "variants": [("a", "m:v1", 0.5), ("b", "m:v2", 0.5)],
            },
            "control",
        ),
    ],
)
def test_bad_create_names_the_field_and_creates_nothing(
    manager: ABTestManager, kwargs, field
) -> None:
    before = len(manager.list_tests())
    with pytest.raises(InvalidArgument) as err:
        _new(manager, **kwargs)
    assert err.value.field == field
    assert len(manager.list_tests()) == before


def test_hash_assignment_is_the_contract_and_ramp_up_is_sticky(manager: ABTestManager) -> None:
    tid = _new(manager, traffic_split=0.1)
    manager.start_test(tid)
    users = [f"user{i}" for i in range(300)]
    before = {u: manager.get_variant(tid, user_id=u) for u in users}
    for u, v in before.items():
        assert v == ("treatment" if assign(tid, u, [0.1, 0.9]) == 0 else "control")
    grown = manager.update_split(tid, 0.3, reason="ramp")
    assert grown.traffic_split == pytest.approx(0.3)
    after = {u: manager.get_variant(tid, user_id=u) for u in users}
    assert all(after[u] == "treatment" for u, v in before.items() if v == "treatment")
    assert sum(v == "treatment" for v in after.values()) > sum(
        v == "treatment" for v in before.values()
    )
    with pytest.raises(FailedPrecondition):
        manager.update_split(tid, 0.05)
    assert manager.get_test(tid).traffic_split == pytest.approx(0.3)
    shrunk = manager.update_split(tid, 0.05, explicit=True, reason="incident")
    assert [h.reason for h in shrunk.split_history] == ["created", "ramp", "incident"]
    assert shrunk.split_history[-1].explicit and not shrunk.split_history[1].explicit
    with pytest.raises(InvalidArgument) as err:
        manager.get_variant(tid)
    assert err.value.field == "unit_id"  # the wire's name (the Python keyword is user_id)


def test_forced_variant_for_qa(manager: ABTestManager) -> None:
    tid = _new(manager, traffic_split=0.0)
    manager.start_test(tid)
    assert manager.get_variant(tid, user_id="qa-1") == "control"
    manager.force_variant(tid, "qa-1", "treatment")
    assert manager.get_variant(tid, user_id="qa-1") == "treatment"
    assert manager.get_test(tid).forced_variants == {"qa-1": "treatment"}
    with pytest.raises(InvalidArgument):
        manager.force_variant(tid, "qa-2", "ghost")
    manager.force_variant(tid, "qa-1", None)
    assert manager.get_variant(tid, user_id="qa-1") == "control"


def test_n_variants_and_strategies(manager: ABTestManager) -> None:
    tid = manager.create_test(
        name="three", variants=[("control", "m:v1", 0.5), ("b", "m:v2", 0.25), ("c", "m:v3", 0.25)],
        strategy=TrafficSplitStrategy.ROUND_ROBIN,
    ).test_id
    manager.start_test(tid)
    picks = [manager.get_variant(tid) for _ in range(8)]
    assert sorted(picks) == ["b", "b", "c", "c", "control", "control", "control", "control"]
    rnd = _new(manager, strategy="random")
    manager.start_test(rnd)
    assert {manager.get_variant(rnd) for _ in range(60)} == {"control", "treatment"}
    # Outcomes by unit id cannot be credited without the variant for RANDOM tests.
    with pytest.raises(FailedPrecondition):
        manager.record_outcome(rnd, user_id="u1", success=True)
    assert (
        manager.record_outcome(rnd, user_id="u1", success=True, variant="treatment") == "treatment"
    )


def test_recording_batches_late_outcomes_and_analysis(manager: ABTestManager) -> None:
    tid = _new(manager, traffic_split=0.5)
    with pytest.raises(FailedPrecondition):  # draft
        manager.record_request(test_id=tid, variant="control", success=True)
    manager.start_test(tid)
    rng = random.Random(11)
    users = [f"u{i}" for i in range(2000)]
    records = [{"user_id": u, "success": False, "latency": 0.01 + rng.random() / 100,
                "custom_metrics": {"accuracy": rng.gauss(0.9, 0.02)}} for u in users]
    assert manager.record_requests(tid, records) == 2000
    converted = users[:300]
    credited = {u: manager.record_outcome(tid, user_id=u, success=True) for u in converted[:50]}
    assert all(
        v == ("treatment" if assign(tid, u, [0.5, 0.5]) == 0 else "control")
        for u, v in credited.items()
    )
    manager.record_requests(
        tid, [{"variant": None, "user_id": u, "success": True} for u in converted[50:]]
    )
    with pytest.raises(InvalidArgument) as err:
        manager.record_request(test_id=tid, variant="ghost", success=True)
    assert err.value.field == "variant"
    with pytest.raises(InvalidArgument) as err:
        manager.record_request(test_id=tid, variant="control", latency=float("inf"))
    assert err.value.field == "latency"
    with pytest.raises(InvalidArgument) as err:
        manager.record_request(test_id=tid, variant="control", custom_metrics={"accuracy": "high"})
    assert err.value.field.startswith("custom_metrics")
    a = manager.analyze_test(tid, confidence_level=0.99)
    json.dumps(a, allow_nan=False)
    assert a["confidence_level"] == 0.99
    n = a["control"]["n"] + a["treatment"]["n"]
    assert n == 2000 + 250  # 250 requests recorded with outcome; 50 late outcomes added no request
    assert a["control"]["successes"] + a["treatment"]["successes"] == 300
    assert a["srm"]["detected"] is False
    assert a["metrics"]["accuracy"]["p_value"] is not None
    assert a["control"]["latency"]["p50"] is not None
    with pytest.raises(InvalidArgument):
        manager.analyze_test(tid, confidence_level=1.5)


def test_embedded_and_remote_give_the_same_analysis(
    tmp_path: Path, shared_server: ServerProcess
) -> None:
    reports = []
    for location in (str(tmp_path / "emb"), shared_server.url):
        m = ABTestManager(location)
        tid = m.create_test(name="same", control_variant="m:v1", treatment_variant="m:v2",
                            traffic_split=0.5, decision_rule="sequential").test_id
        m.start_test(tid)
        rng = random.Random(3)
        m.record_requests(
            tid,
            [
                {
                    "variant": "treatment" if i % 2 else "control",
                    "success": rng.random() < 0.2 + 0.05 * (i % 2),
                    "latency": 0.01 * (1 + i % 7),
                }
                for i in range(5000)
            ],
        )
        rep = m.analyze_test(tid)
        for key in ("test_id", "running_seconds"):
            rep.pop(key)
        rep["power"].pop("requests_per_second")
        rep["power"].pop("estimated_seconds_remaining")
        reports.append(rep)
    assert reports[0] == reports[1]


def test_running_test_is_a_route_and_leaves_the_table_when_paused(tmp_path: Path) -> None:
    location = tmp_path / "routes"
    m = ABTestManager(str(location))
    tid = _new(m, traffic_split=0.25)
    rt = EmbeddedRuntime.for_path(location)

    def routes() -> dict:
        table = rt.call(lambda s: s.routing.current())
        return {r.route_id: r for r in table.routes}

    assert tid not in routes()
    m.start_test(tid)
    m.force_variant(tid, "qa", "treatment")
    route = routes()[tid]
    assert route.model_name == "fraud" and route.kind == "experiment" and route.strategy == "hash"
    assert [(v.name, v.weight, v.model_version) for v in route.variants] == [
        ("treatment", 0.25, "v2"), ("control", 0.75, "v1")]
    assert route.forced_variants == (("qa", "treatment"),)
    m.pause_test(tid)
    assert tid not in routes()


def test_variants_must_exist_when_the_store_registry_knows_the_model(tmp_path: Path) -> None:
    from neural.mlops.registry import ModelRegistry

    location = str(tmp_path / "store")
    artifact = tmp_path / "model.pt"
    artifact.write_bytes(b"weights")
    ModelRegistry(location).register_model(name="fraud", version="v1", model_path=str(artifact),
                                           framework="pytorch", created_by="ds@example.com")
    m = ABTestManager(location)
    with pytest.raises(NotFound) as err:
        m.create_test(name="x", control_variant="fraud:v1", treatment_variant="fraud:v9")
    assert err.value.field == "treatment_variant"
    assert m.list_tests() == []
    # a model the registry has never seen may live in another registry: accepted as given
    assert m.create_test(name="y", control_variant="fraud:v1", treatment_variant="other:v2").test_id


def test_sidecar_metric_batches_feed_the_same_analysis(tmp_path: Path) -> None:
    """Windows a sidecar reports for the experiment's route land in analyze_test, exactly once."""
    from neural.mlops.server.routing.service import MetricsBatch, VariantWindow
    from neural.mlops.v1.traffic import VariantStats

    location = tmp_path / "store"
    m = ABTestManager(str(location))
    tid = _new(m, traffic_split=0.5)
    m.start_test(tid)
    m.record_request(test_id=tid, variant="control", success=True, latency=0.02)
    windows = []
    for variant, ok in (("control", 40), ("treatment", 55)):
        s = VariantStats()
        for i in range(100):
            s.observe(success=i < ok, latency=0.01 + i / 10_000)
        windows.append(
            VariantWindow(
                route_id=tid, variant=variant, window_start_us=1_700_000_000_000_000, stats=s
            )
        )
    batch = MetricsBatch(sidecar_id="sidecar-1", sequence=1, windows=tuple(windows))
    rt = EmbeddedRuntime.for_path(location)
    assert rt.call(lambda s: s.routing.ingest(batch)) is False
    assert rt.call(lambda s: s.routing.ingest(batch)) is True  # resent after a lost ack: no change
    a = m.analyze_test(tid)
    assert (a["control"]["n"], a["control"]["successes"]) == (101, 41)
    assert (a["treatment"]["n"], a["treatment"]["successes"]) == (100, 55)
    assert a["treatment"]["latency"]["n"] == 100


def test_wrong_types_raise_the_same_errors_in_both_modes(manager: ABTestManager) -> None:
    tid = _new(manager)
    manager.start_test(tid)
    cases = [
        (lambda: manager.get_test(123), "test_id"),  # type: ignore[arg-type]
        (lambda: manager.start_test(None), "test_id"),  # type: ignore[arg-type]
        (lambda: manager.record_request(test_id=tid, variant=7, success=True), "variant"),
        (lambda: manager.record_request(test_id=tid, variant="control", success="yes"), "success"),
        (lambda: manager.record_request(test_id=tid, variant="control", latency="fast"), "latency"),
        (
            lambda: manager.update_split(tid, weights={"treatment": "all", "control": 0}),
            "weights.treatment",
        ),
        (lambda: manager.analyze_test(tid, confidence_level="high"), "confidence_level"),
        (
            lambda: manager.record_request(test_id=tid, variant="control", timestamp="now"),
            "timestamp",
        ),
        (lambda: manager.record_outcome(tid, "u1", timestamp=12), "timestamp"),
        (lambda: manager.record_outcome(tid, "", success=True), "unit_id"),
    ]
    for call, field in cases:
        with pytest.raises(InvalidArgument) as err:
            call()
        assert err.value.field == field
    assert manager.analyze_test(tid)["power"]["observed_total"] == 0


def test_always_valid_p_value_is_the_running_minimum_over_looks(manager: ABTestManager) -> None:
    tid = _new(manager, traffic_split=0.5, decision_rule="sequential")
    manager.start_test(tid)
    strong = ([{"variant": "control", "success": i < 300} for i in range(3000)]
              + [{"variant": "treatment", "success": i < 420} for i in range(3000)])
    manager.record_requests(tid, strong)
    first = manager.analyze_test(tid)
    assert first["sequential"]["statistically_significant"]
    assert first["recommendation"]["action"] == "ship_treatment"
    # Later traffic without any difference dilutes the effect: this look alone is no longer
    # significant, but the always-valid p-value is the minimum over looks, so the decision stands.
    null = [
        {"variant": v, "success": i % 10 == 0}
        for v in ("control", "treatment")
        for i in range(40_000)
    ]
    for i in range(0, len(null), 10_000):
        manager.record_requests(tid, null[i:i + 10_000])
    later = manager.analyze_test(tid)
    assert later["sequential"]["p_value_current"] > 0.05
    assert later["sequential"]["p_value"] == first["sequential"]["p_value_current"]
    assert later["recommendation"]["action"] == "ship_treatment"


def test_analysis_of_a_time_range_reads_only_its_windows(manager: ABTestManager) -> None:
    from datetime import UTC, datetime, timedelta

    tid = _new(manager, traffic_split=0.5)
    manager.start_test(tid)
    day1 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    day2 = day1 + timedelta(days=1)
    manager.record_requests(tid, [{"variant": v, "success": True, "timestamp": day1}
                                  for v in ("control", "treatment") for _ in range(30)])
    manager.record_requests(tid, [{"variant": v, "success": False, "timestamp": day2}
                                  for v in ("control", "treatment") for _ in range(70)])
    whole = manager.analyze_test(tid)
    first = manager.analyze_test(tid, since=day1, until=day1 + timedelta(hours=1))
    second = manager.analyze_test(tid, since=day2)
    assert whole["control"]["n"] == 100 and whole["control"]["success_rate"] == 0.3
    assert first["control"]["n"] == 30 and first["control"]["success_rate"] == 1.0
    assert second["treatment"]["n"] == 70 and second["treatment"]["successes"] == 0
    assert first["since"] == day1.isoformat()
    with pytest.raises(InvalidArgument) as err:
        manager.analyze_test(tid, since=day2, until=day1)
    assert err.value.field == "until"
