"""Multi-armed bandit tests in the experiment service (a real store, a manual clock):
reweighting once per interval after the burn-in, in one audited change with its weight
history, pushed as a route with the BANDIT strategy; the analysis' bandit section; the
refusals (bad settings, manual split changes, outcomes without their arm) that change
nothing."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from support.databases import open_services  # noqa: E402

from neural.mlops.server.audit.events import EventQuery  # noqa: E402
from neural.mlops.server.clock import ManualClock  # noqa: E402
from neural.mlops.server.errors import FailedPrecondition, InvalidArgument  # noqa: E402
from neural.mlops.server.experiments import convert  # noqa: E402
from neural.mlops.server.experiments.recording import RequestRecord  # noqa: E402
from neural.mlops.server.experiments.spec import CreateSpec  # noqa: E402
from neural.mlops.server.routing.convert import route_to_pb  # noqa: E402
from neural.mlops.v1 import routing_pb2  # noqa: E402

pytestmark = pytest.mark.storage

BANDIT = {"interval_seconds": 60, "burn_in_units": 100, "min_share": 0.1, "seed": 11}


def _spec(**over: Any) -> CreateSpec:
    values: dict[str, Any] = dict(name="bandit", control_variant="m:1", treatment_variant="m:2",
                                  strategy="multi_armed_bandit", bandit=dict(BANDIT))
    values.update(over)
    return CreateSpec(**values)


def _records(variant: str, n: int, conversions: int) -> list[RequestRecord]:
    return [RequestRecord(variant=variant, success=i < conversions, user_id=f"{variant}-{i}")
            for i in range(n)]


def _run(tmp_path: Path, body: Any) -> Any:
    async def main() -> Any:
        clock = ManualClock()
        s = await open_services(tmp_path / "store", clock=clock)
        try:
            return await body(s, clock)
        finally:
            await s.close()
    return asyncio.run(main())


def test_a_bandit_reweights_once_per_interval_after_its_burn_in(tmp_path: Path) -> None:
    async def body(s: Any, clock: ManualClock) -> dict[str, Any]:
        e = s.experiments
        test = await e.create_test(_spec())
        await e.start_test(test.test_id)
        await e.record_requests(test.test_id, _records("control", 50, 5)
                                + _records("treatment", 50, 10))
        clock.advance(61)
        burn_in = await e.reweight_bandits()  # 50 < 100 observations per arm
        await e.record_requests(test.test_id, _records("control", 950, 95)
                                + _records("treatment", 950, 190))
        early = await e.reweight_bandits()  # the burn-in look waits a whole interval
        clock.advance(61)
        first = await e.reweight_bandits()
        again = await e.reweight_bandits()  # not due: the interval starts over
        table = await s.routing.refresh()
        after = await e.get_test(test.test_id)
        events = await s.audit.query_events(EventQuery(resource_id=test.test_id))
        analysis = await e.analysis(test.test_id)
        return {"burn_in": burn_in, "early": early, "first": first, "again": again,
                "table": table, "after": after, "events": events.events,
                "analysis": analysis, "id": test.test_id}

    out = _run(tmp_path, body)
    tid = out["id"]
    assert out["burn_in"] == [] and out["early"] == [] and out["again"] == []
    assert out["first"] == [tid]
    weights = out["after"].weights
    assert weights == {"treatment": 0.9, "control": 0.1}  # 20% vs 10%: the floor holds control
    (route,) = [r for r in out["table"].routes if r.route_id == tid]
    assert route.strategy == "bandit"
    assert {v.name: v.weight for v in route.variants} == weights
    assert route_to_pb(route).strategy == routing_pb2.ASSIGNMENT_STRATEGY_BANDIT
    (event,) = [ev for ev in out["events"] if ev.action == "bandit_reweight"]
    assert event.actor == "bandit"
    assert event.details["before"]["weights"] == {"treatment": 0.5, "control": 0.5}
    assert event.details["after"]["weights"] == weights
    assert event.details["observations"] == {"treatment": 1000, "control": 1000}
    assert len(out["after"].split_history) == 1  # the weight history is the record

    result = out["analysis"]
    report = result.to_dict()
    bandit = report["bandit"]
    assert [h["sequence"] for h in bandit["weight_history"]] == [1]
    assert bandit["weight_history"][0]["weights"] == weights
    assert bandit["p_best"]["treatment"] > 0.99 and bandit["burn_in_complete"]
    gap = bandit["posterior_means"]["treatment"] - bandit["posterior_means"]["control"]
    assert bandit["regret"]["expected_cumulative_regret"] == pytest.approx(1000 * gap)
    assert bandit["frequentist_valid"] is False
    assert any("bandit" in w for w in report["warnings"])
    assert report["recommendation"]["action"] == "ship_treatment"
    assert report["recommendation"]["winner"] == "treatment"
    typed = convert.analysis_to_pb(result)
    assert not typed.HasField("p_value") and not typed.statistically_significant
    assert typed.probability_best["treatment"] == bandit["p_best"]["treatment"]
    assert [h.weights["control"] for h in typed.bandit_history] == [0.1]
    assert json.loads(typed.analysis_json)["bandit"]["reweightings"] == 1


def test_two_reweightings_at_once_store_one(tmp_path: Path) -> None:
    async def body(s: Any, clock: ManualClock) -> tuple[list[Any], Any]:
        e = s.experiments
        test = await e.create_test(_spec(bandit={**BANDIT, "burn_in_units": 0}))
        await e.start_test(test.test_id)
        await e.record_requests(test.test_id, _records("control", 20, 2)
                                + _records("treatment", 20, 4))
        results = await asyncio.gather(*(e.reweight_bandit(test.test_id) for _ in range(4)))
        return results, await e.analysis(test.test_id)

    results, analysis = _run(tmp_path, body)
    assert sum(r is not None for r in results) == 1
    assert [h.sequence for h in analysis.bandit.history] == [1]


def test_refusals_change_nothing(tmp_path: Path) -> None:
    async def body(s: Any, clock: ManualClock) -> dict[str, Any]:
        e = s.experiments
        errors: dict[str, Exception] = {}
        for key, spec in {
            "hash_with_settings": _spec(strategy="hash_based"),
            "floor_too_high": _spec(bandit={"min_share": 0.7}),
        }.items():
            try:
                await e.create_test(spec)
            except InvalidArgument as exc:
                errors[key] = exc
        listed, _ = await e.list_tests()
        test = await e.create_test(_spec())
        await e.start_test(test.test_id)
        for key, call in {
            "split": e.update_split(test.test_id, {"treatment": 0.7, "control": 0.3},
                                    explicit=True),
            "outcome": e.record_outcome(test.test_id, "u1", success=True),
        }.items():
            try:
                await call
            except FailedPrecondition as exc:
                errors[key] = exc
        return {"errors": errors, "listed": listed, "after": await e.get_test(test.test_id)}

    out = _run(tmp_path, body)
    errors = out["errors"]
    assert errors["hash_with_settings"].field == "bandit"
    assert errors["floor_too_high"].field == "bandit.min_share"
    assert "set by the bandit" in str(errors["split"])
    assert "pass variant=" in str(errors["outcome"])
    assert out["listed"] == []
    assert out["after"].weights == {"treatment": 0.5, "control": 0.5}


def test_the_background_loop_reweights_a_due_test_by_itself(tmp_path: Path) -> None:
    """The loop the server starts (on PostgreSQL under the bandit-weights lease)."""
    async def body(s: Any, clock: ManualClock) -> tuple[dict[str, float], dict[str, float]]:
        e = s.experiments
        test = await e.create_test(_spec(bandit={**BANDIT, "burn_in_units": 10}))
        await e.start_test(test.test_id)
        await e.record_requests(test.test_id, _records("control", 300, 30)
                                + _records("treatment", 300, 60))
        e.start()
        try:
            await asyncio.sleep(1.5)  # several ticks: the interval has not passed yet
            before = (await e.get_test(test.test_id)).weights
            clock.advance(61)
            for _ in range(200):
                after = (await e.get_test(test.test_id)).weights
                if after != before:
                    break
                await asyncio.sleep(0.1)
        finally:
            await e.stop()
        return before, after

    before, after = _run(tmp_path, body)
    assert before == {"treatment": 0.5, "control": 0.5}
    assert after == {"treatment": 0.9, "control": 0.1}


def test_get_variant_keeps_a_counted_unit_on_its_arm_after_a_reweighting(tmp_path: Path) -> None:
    """The store remembers a bandit's units: a unit counted in an arm gets that arm from
    get_variant on any replica after the weights move; new units follow the new weights."""
    async def body(s: Any, clock: ManualClock) -> dict[str, Any]:
        e = s.experiments
        test = await e.create_test(_spec(bandit={**BANDIT, "burn_in_units": 0}))
        tid = test.test_id
        await e.start_test(tid)
        old = [f"old-{i}" for i in range(300)]
        first = {u: (await e.get_variant(tid, u))[0] for u in old}
        # Treatment converts far better: the reweighting moves to 0.9 / 0.1.
        await e.record_requests(tid, [
            RequestRecord(variant=arm, success=(arm == "treatment") or i % 10 == 0, user_id=u)
            for i, (u, arm) in enumerate(first.items())])
        both = "both-arms"
        await e.record_requests(tid, [RequestRecord(variant="control", success=True,
                                                    user_id=both)] * 2
                                + [RequestRecord(variant="treatment", success=True,
                                                 user_id=both)])
        assert await e.reweight_bandit(tid) is not None
        after = {u: (await e.get_variant(tid, u))[0] for u in old}
        fresh = [(await e.get_variant(tid, f"new-{i}"))[0] for i in range(400)]
        now = await e.get_test(tid)
        weights = now.weights
        hashed = sum(e.hash_variant(now, u) != first[u] for u in old)
        return {"first": first, "after": after, "fresh": fresh, "weights": weights,
                "both": (await e.get_variant(tid, both))[0], "hashed": hashed}

    out = _run(tmp_path, body)
    assert out["weights"] == {"treatment": 0.9, "control": 0.1}
    assert out["after"] == out["first"]  # every counted unit keeps its arm
    assert out["hashed"] > 30  # hashing by the new weights alone would have moved these
    assert 0.85 < out["fresh"].count("treatment") / 400 < 0.95
    assert out["both"] == "control"  # counted in both: the arm with more requests
