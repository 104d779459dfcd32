"""The rollout controller and the deployment state machine, on a real store with a test clock.

Metrics are fed through the traffic store exactly as the routing service folds in the
sidecars' batches; the controller is driven cycle by cycle with a ManualClock.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from support.databases import open_services

from neural.mlops.server import traffic
from neural.mlops.server.clock import ManualClock, to_us
from neural.mlops.server.deployments import health, store
from neural.mlops.server.deployments.model import (
    Deployment,
    DeploymentStatus,
    DeploymentStrategy,
    PerformanceMetrics,
    PreviewMode,
    RollbackConfig,
)
from neural.mlops.server.deployments.planning import CreateSpec
from neural.mlops.server.deployments.rollout import Action, decide
from neural.mlops.server.errors import FailedPrecondition, InvalidArgument, NotFound
from neural.mlops.server.registry.model import ModelStage
from neural.mlops.server.registry.service import RegisterSpec
from neural.mlops.server.services import Services
from neural.mlops.server.storage.schema import audit_events, deployments
from neural.mlops.v1.traffic import VariantStats


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[tuple[Services, ManualClock]]:
    clock = ManualClock()
    s = await open_services(tmp_path / "store", clock=clock)
    try:
        yield s, clock
    finally:
        await s.close()


async def _approve(s: Services, name: str, version: str) -> None:
    await s.registry.register_model(RegisterSpec(name=name, version=version, created_by="ds@x.com",
                                                 artifact_uri="s3://bucket/model.pt"))
    await s.registry.request_promotion(name, version, ModelStage.PRODUCTION, "eng@x.com", "ok")
    await s.registry.approve_promotion(name, version, "boss@x.com")


async def _feed(
    s: Services,
    clock: ManualClock,
    route_id: str,
    variant: str,
    n: int,
    errors: int = 0,
    latency: float = 0.030,
) -> None:
    vs = VariantStats()
    for i in range(n):
        vs.observe(latency=latency * (1 + (i % 10) / 100), error=i < errors, success=i >= errors)
    async with s.db.change(audited=False) as ch:
        await traffic.apply(
            ch.conn, route_id, variant, traffic.window_start(to_us(clock.now())), vs
        )


def _spec(version: str = "v2", **kw: object) -> CreateSpec:
    base = dict(
        model_name="fraud",
        model_version=version,
        strategy=DeploymentStrategy.CANARY,
        created_by="devops@x.com",
        baseline_metrics=PerformanceMetrics(latency_p95=0.050, error_rate=0.001),
        rollback_config=RollbackConfig(
            error_rate_threshold=0.01,
            latency_threshold_multiplier=1.5,
            min_requests_before_check=200,
        ),
        step_duration_seconds=10.0,
        analysis_interval_seconds=2.0,
    )
    base.update(kw)
    return CreateSpec(**base)  # type: ignore[arg-type]


async def _audit(s: Services, resource_id: str) -> list[tuple[str, str]]:
    async with s.db.read() as conn:
        rows = await conn.execute(
            sa.select(audit_events.c.event_type, audit_events.c.action)
            .where(audit_events.c.resource_id == resource_id).order_by(audit_events.c.seq)
        )
        return [(r.event_type, r.action) for r in rows]


async def _route(s: Services, model: str) -> dict[str, tuple[float, str]]:
    async with s.db.read() as conn:
        for r in await s.deployments.active_routes(conn):
            if r.model_name == model and r.variants:
                return {v.name: (v.weight, v.model_version) for v in r.variants}
    return {}


async def test_healthy_canary_is_promoted_through_every_step(
    env: tuple[Services, ManualClock],
) -> None:
    s, clock = env
    await _approve(s, "fraud", "v1")
    await _approve(s, "fraud", "v2")  # archives v1
    d = await s.deployments.create_deployment(_spec())
    assert d.stable_version == "v1"  # the version PRODUCTION had before v2's approval
    assert await _route(s, "fraud") == {"canary": (0.05, "v2"), "stable": (0.95, "v1")}
    seen = [d.traffic_percentage]
    for _ in range(60):
        pct = (await s.deployments.get_deployment(d.deployment_id)).traffic_percentage
        await _feed(s, clock, d.deployment_id, "canary", int(10 * pct) + 50)
        await _feed(s, clock, d.deployment_id, "stable", 500)
        clock.advance(2.0)
        await s.deployments.reconcile()
        d = await s.deployments.get_deployment(d.deployment_id)
        if d.traffic_percentage != seen[-1]:
            seen.append(d.traffic_percentage)
        if not d.active:
            break
    assert seen == [5.0, 10.0, 25.0, 50.0, 100.0]
    assert d.status is DeploymentStatus.COMPLETED
    actions = [e.action for e in await s.deployments.events(d.deployment_id)]
    assert actions == ["created", "advanced", "advanced", "advanced", "advanced", "promoted"]
    audit = await _audit(s, d.deployment_id)
    assert audit.count(("deployment_advanced", "advance")) == 4
    assert audit[-1] == ("deployment_promoted", "promoted")
    assert (await s.registry.get_model_version("fraud", "v2")).stage is ModelStage.PRODUCTION
    assert await _route(s, "fraud") == {"stable": (1.0, "v2")}  # pinned after promotion
    # Each step was held for its full duration before moving on.
    events = await s.deployments.events(d.deployment_id)
    gaps = [(b.at - a.at).total_seconds() for a, b in zip(events[:-1], events[1:], strict=True)]
    assert all(g >= 10.0 for g in gaps)
    # Every advance names the values it was based on.
    assert all(e.details["verdict"] == "pass" and e.details["measured"]["request_count"] >= 200
               for e in events[1:])


async def test_canary_failing_five_percent_is_rolled_back_by_the_controller(
    env: tuple[Services, ManualClock],
) -> None:
    s, clock = env
    d = await s.deployments.create_deployment(_spec(), use_local_gate=False)
    await _feed(s, clock, d.deployment_id, "stable", 4000)
    await _feed(s, clock, d.deployment_id, "canary", 100, errors=5)
    clock.advance(2.0)
    await s.deployments.reconcile()  # 100 requests < 200: no verdict yet
    assert (
        await s.deployments.get_deployment(d.deployment_id)
    ).status is DeploymentStatus.IN_PROGRESS
    await _feed(s, clock, d.deployment_id, "canary", 200, errors=10)
    clock.advance(2.0)
    counts = await s.deployments.reconcile()
    assert counts == {"rollback": 1}
    d = await s.deployments.get_deployment(d.deployment_id)
    assert d.status is DeploymentStatus.ROLLED_BACK
    assert d.rollback_reasons == ["error rate 0.0500 > threshold 0.0100 (n=300)"]
    assert await _route(s, "fraud") == {}  # nothing pinned: callers get the version they ask for
    rolled = (await s.deployments.events(d.deployment_id))[-1]
    assert rolled.actor == "rollout-controller" and rolled.details["measured"]["error_rate"] == 0.05
    assert (await _audit(s, d.deployment_id))[-1] == ("deployment_rolled_back", "rolled_back")
    # The model is free for the next attempt.
    await s.deployments.create_deployment(_spec("v3"), use_local_gate=False)


async def test_rollback_after_a_promotion_returns_to_the_promoted_version(
    env: tuple[Services, ManualClock],
) -> None:
    s, clock = env
    first = await s.deployments.create_deployment(_spec("v2", strategy=DeploymentStrategy.DIRECT),
                                                  use_local_gate=False)
    await s.deployments.promote(first.deployment_id, "ops@x.com", full=True)
    second = await s.deployments.create_deployment(_spec("v3"), use_local_gate=False)
    assert second.stable_version == "v2"
    assert await _route(s, "fraud") == {"canary": (0.05, "v3"), "stable": (0.95, "v2")}
    await s.deployments.rollback(second.deployment_id, "ops@x.com", "pager fired")
    assert await _route(s, "fraud") == {"stable": (1.0, "v2")}


async def test_a_rollback_gives_production_back_to_the_stable_version_in_the_registry(
    env: tuple[Services, ManualClock],
) -> None:
    s, clock = env
    await _approve(s, "fraud", "v1")
    await _approve(s, "fraud", "v2")  # v1 archived by the approval
    d = await s.deployments.create_deployment(_spec("v2"))
    assert d.stable_version == "v1"
    await _feed(s, clock, d.deployment_id, "canary", 500, errors=50)
    clock.advance(2.0)
    assert await s.deployments.reconcile() == {"rollback": 1}
    d = await s.deployments.get_deployment(d.deployment_id)
    assert d.status is DeploymentStatus.ROLLED_BACK
    stages = {m.version: m.stage for m in await s.registry.list_versions("fraud")}
    assert stages == {"v1": ModelStage.PRODUCTION, "v2": ModelStage.ARCHIVED}
    history = [
        (h.version, h.to_value) for h in await s.registry.history("fraud") if h.kind == "stage"
    ]
    assert history[-2:] == [("v2", "archived"), ("v1", "production")]
    event = [e for e in await s.deployments.events(d.deployment_id) if e.action == "rolled_back"][0]
    assert event.details["registry"]["archived"] == ["v2"]
    # v1 was approved when it first went to PRODUCTION: its return is no unapproved change.
    report = await s.audit.generate_compliance_report(0, to_us(clock.now()) + 1)
    assert report.unapproved_production_changes == []


async def test_a_rollback_to_a_never_approved_stable_version_leaves_the_registry_alone(
    env: tuple[Services, ManualClock],
) -> None:
    s, _ = env
    await s.registry.register_model(RegisterSpec(name="fraud", version="v1", created_by="ds@x.com",
                                                 artifact_uri="s3://bucket/v1.pt"))
    await _approve(s, "fraud", "v2")
    d = await s.deployments.create_deployment(_spec("v2", stable_version="v1"))
    await s.deployments.rollback(d.deployment_id, "ops@x.com", "drill")
    stages = {m.version: m.stage for m in await s.registry.list_versions("fraud")}
    assert stages == {"v1": ModelStage.DEVELOPMENT, "v2": ModelStage.PRODUCTION}
    event = [e for e in await s.deployments.events(d.deployment_id) if e.action == "rolled_back"][0]
    assert event.details["registry"]["registry_stage"] == "not changed"
    assert "v1" in event.details["registry"]["why"]


async def test_the_stable_variant_is_served_where_the_last_promotion_pinned_it(
    env: tuple[Services, ManualClock],
) -> None:
    s, _ = env
    first = await s.deployments.create_deployment(
        _spec("v2", strategy=DeploymentStrategy.DIRECT, upstream="10.0.0.2:8001"),
        use_local_gate=False,
    )
    await s.deployments.promote(first.deployment_id, "ops@x.com", full=True)
    second = await s.deployments.create_deployment(_spec("v3", upstream="10.0.0.3:8001"),
                                                   use_local_gate=False)

    async def upstreams() -> dict[str, tuple[str, str]]:
        async with s.db.read() as conn:
            (route,) = [
                r for r in await s.deployments.active_routes(conn) if r.model_name == "fraud"
            ]
        return {v.name: (v.model_version, v.upstream) for v in route.variants}

    assert await upstreams() == {
        "canary": ("v3", "10.0.0.3:8001"),
        "stable": ("v2", "10.0.0.2:8001"),
    }
    await s.deployments.rollback(second.deployment_id, "ops@x.com", "drill")
    assert await upstreams() == {"stable": ("v2", "10.0.0.2:8001")}
    # A stable version named explicitly, not the pinned one, is the sidecar's own upstream's.
    third = await s.deployments.create_deployment(
        _spec("v3", stable_version="v1", upstream="10.0.0.3:8001"), use_local_gate=False
    )
    assert (await upstreams())["stable"] == ("v1", "")
    await s.deployments.abort(third.deployment_id, "ops@x.com")


async def test_max_failed_checks_holds_before_rolling_back(
    env: tuple[Services, ManualClock],
) -> None:
    s, clock = env
    cfg = RollbackConfig(
        error_rate_threshold=0.01, min_requests_before_check=100, max_failed_checks=3
    )
    d = await s.deployments.create_deployment(_spec(rollback_config=cfg), use_local_gate=False)
    await _feed(s, clock, d.deployment_id, "canary", 1000, errors=50)
    outcomes = []
    for _ in range(3):
        clock.advance(2.0)
        outcomes.append(await s.deployments.reconcile())
    assert outcomes == [{"failed_check": 1}, {"failed_check": 1}, {"rollback": 1}]
    d = await s.deployments.get_deployment(d.deployment_id)
    assert d.status is DeploymentStatus.ROLLED_BACK and d.traffic_percentage == 5.0


async def test_inconclusive_verdict_pauses_for_a_person(env: tuple[Services, ManualClock]) -> None:
    s, clock = env
    cfg = RollbackConfig(
        error_rate_threshold=0.01, min_requests_before_check=100, statistical_judge=True
    )
    d = await s.deployments.create_deployment(_spec(rollback_config=cfg), use_local_gate=False)
    await _feed(
        s, clock, d.deployment_id, "canary", 1000, errors=20
    )  # 2 % on both: not the canary's fault
    await _feed(s, clock, d.deployment_id, "stable", 5000, errors=100)
    clock.advance(2.0)
    assert await s.deployments.reconcile() == {"pause": 1}
    d = await s.deployments.get_deployment(d.deployment_id)
    assert d.status is DeploymentStatus.PAUSED and d.status_reason.startswith("inconclusive: ")
    clock.advance(30.0)
    await s.deployments.reconcile()
    assert (
        await s.deployments.get_deployment(d.deployment_id)
    ).traffic_percentage == 5.0  # no advance
    d = await s.deployments.resume(d.deployment_id, "sre@x.com", "upstream incident, not the model")
    assert d.status is DeploymentStatus.IN_PROGRESS


async def test_blue_green_previews_by_mirror_switches_once_and_switches_back(
    env: tuple[Services, ManualClock],
) -> None:
    s, clock = env
    spec = _spec("v2", strategy=DeploymentStrategy.BLUE_GREEN, stable_version="v1")
    d = await s.deployments.create_deployment(spec, use_local_gate=False)
    async with s.db.read() as conn:
        (route,) = await s.deployments.active_routes(conn)
    assert {v.name: v.weight for v in route.variants} == {"green": 0.0, "blue": 1.0}
    assert [(t.shadow_id, t.model_version, t.percentage) for t in route.shadows] == [
        (d.deployment_id, "v2", 100.0)
    ]
    d = await s.deployments.promote(d.deployment_id, "ops@x.com")  # the switch
    assert d.status is DeploymentStatus.IN_PROGRESS and d.traffic_percentage == 100.0
    assert await _route(s, "fraud") == {"green": (1.0, "v2"), "blue": (0.0, "v1")}
    d = await s.deployments.rollback(d.deployment_id, "ops@x.com", "switch back")
    assert await _route(s, "fraud") == {}
    assert d.status is DeploymentStatus.ROLLED_BACK


async def test_blue_green_header_preview_routes_only_forced_requests(
    env: tuple[Services, ManualClock],
) -> None:
    s, _ = env
    spec = _spec(
        "v2",
        strategy=DeploymentStrategy.BLUE_GREEN,
        stable_version="v1",
        preview=PreviewMode.HEADER,
    )
    await s.deployments.create_deployment(spec, use_local_gate=False)
    async with s.db.read() as conn:
        (route,) = await s.deployments.active_routes(conn)
    assert route.shadows == () and {v.name: v.weight for v in route.variants} == {
        "green": 0.0,
        "blue": 1.0,
    }


async def test_operator_actions_and_invalid_transitions(env: tuple[Services, ManualClock]) -> None:
    s, _ = env
    d = await s.deployments.create_deployment(_spec(), use_local_gate=False)
    with pytest.raises(FailedPrecondition):
        await s.deployments.resume(d.deployment_id, "ops@x.com")
    d = await s.deployments.pause(d.deployment_id, "ops@x.com", "weekend")
    assert d.status is DeploymentStatus.PAUSED
    with pytest.raises(FailedPrecondition):
        await s.deployments.pause(d.deployment_id, "ops@x.com")
    d = await s.deployments.promote(d.deployment_id, "ops@x.com")
    assert d.traffic_percentage == 10.0
    d = await s.deployments.abort(d.deployment_id, "ops@x.com", "wrong build")
    assert d.status is DeploymentStatus.ABORTED
    for action in (
        s.deployments.promote,
        s.deployments.rollback,
        s.deployments.pause,
        s.deployments.abort,
    ):
        with pytest.raises(FailedPrecondition):
            await action(d.deployment_id, "ops@x.com")
    with pytest.raises(NotFound):
        await s.deployments.pause("dep-nope", "ops@x.com")


async def _snapshot(s: Services) -> tuple[int, int]:
    async with s.db.read() as conn:
        deps = (
            await conn.execute(sa.select(sa.func.count()).select_from(deployments))
        ).scalar_one()
        events = (
            await conn.execute(sa.select(sa.func.count()).select_from(audit_events))
        ).scalar_one()
    return deps, events


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"steps": [5, 150]}, "steps"),
        ({"steps": [-5, 50]}, "steps"),
        ({"steps": [10, 10, 50]}, "steps"),
        ({"steps": [50, 25]}, "steps"),
        (
            {"rollback_config": RollbackConfig(error_rate_threshold=-0.1)},
            "rollback_config.error_rate_threshold",
        ),
        (
            {"rollback_config": RollbackConfig(latency_threshold_multiplier=-1)},
            "rollback_config.latency_threshold_multiplier",
        ),
        (
            {"rollback_config": RollbackConfig(min_requests_before_check=-1)},
            "rollback_config.min_requests_before_check",
        ),
        (
            {"rollback_config": RollbackConfig(max_failed_checks=0)},
            "rollback_config.max_failed_checks",
        ),
        (
            {"baseline_metrics": PerformanceMetrics(latency_p95=-0.05)},
            "baseline_metrics.latency_p95",
        ),
        ({"baseline_metrics": PerformanceMetrics(error_rate=1.5)}, "baseline_metrics.error_rate"),
        ({"mirror_percentage": 101.0}, "mirror_percentage"),
        ({"step_duration_seconds": -1.0}, "step_duration_seconds"),
        ({"analysis_interval_seconds": 0.0}, "analysis_interval_seconds"),
        ({"model_name": "a/b"}, "model_name"),
        ({"strategy": "yolo"}, "strategy"),
    ],
)
async def test_bad_input_is_rejected_naming_the_field_and_changes_nothing(
    env: tuple[Services, ManualClock], kwargs: dict, field: str
) -> None:
    s, _ = env
    before = await _snapshot(s)
    with pytest.raises(InvalidArgument) as err:
        await s.deployments.create_deployment(_spec(**kwargs), use_local_gate=False)
    assert err.value.field == field
    assert await _snapshot(s) == before


async def test_shadow_percentage_out_of_range_is_invalid(env: tuple[Services, ManualClock]) -> None:
    s, _ = env
    before = await _snapshot(s)
    for pct in (-1.0, 100.5, float("nan")):
        with pytest.raises(InvalidArgument) as err:
            await s.deployments.shadow_deploy("fraud:v1", "fraud:v2", pct, use_local_gate=False)
        assert err.value.field == "traffic_percentage"
    assert await _snapshot(s) == before


async def test_registry_gate_not_found_unapproved_override_and_second_active(
    env: tuple[Services, ManualClock],
) -> None:
    s, _ = env
    await s.registry.register_model(RegisterSpec(name="fraud", version="v9", created_by="ds@x.com",
                                                 artifact_uri="s3://b/m.pt"))
    before = await _snapshot(s)
    with pytest.raises(NotFound):
        await s.deployments.create_deployment(_spec("v404"))
    with pytest.raises(NotFound):
        await s.deployments.create_deployment(_spec(model_name="nomodel"))
    with pytest.raises(FailedPrecondition, match="DEVELOPMENT"):
        await s.deployments.create_deployment(_spec("v9"))
    with pytest.raises(NotFound):
        await s.deployments.shadow_deploy("fraud:v9", "fraud:v404")
    assert await _snapshot(s) == before
    d = await s.deployments.create_deployment(_spec("v9", override_reason="hotfix for incident 42"))
    assert d.gate == {
        "checked": True,
        "local": True,
        "policy": "production",
        "stage": "development",
        "passed": False,
        "override_reason": "hotfix for incident 42",
    }
    assert ("deployment_created", "registry_gate_override") in await _audit(s, d.deployment_id)
    before = await _snapshot(s)
    with pytest.raises(FailedPrecondition, match="already has an active deployment"):
        await s.deployments.create_deployment(_spec("v9", override_reason="again"))
    assert await _snapshot(s) == before
    # A SHADOW evaluation needs no approval.
    await s.deployments.abort(d.deployment_id, "ops@x.com")
    await s.deployments.create_deployment(_spec("v9", strategy=DeploymentStrategy.SHADOW))


async def _advance_plan(s: Services, clock: ManualClock) -> tuple[Deployment, Any]:
    """A canary with healthy traffic and the controller's 'advance' decision, not applied."""
    d = await s.deployments.create_deployment(
        _spec(step_duration_seconds=0.0), use_local_gate=False
    )
    await _feed(s, clock, d.deployment_id, "canary", 500)
    clock.advance(2.0)
    async with s.db.read() as conn:
        rec = await store.load(conn, d.deployment_id)
        check = await health.measure(conn, rec, to_us(clock.now()))
    plan = decide(rec, check, advance=True)
    assert plan.action is Action.ADVANCE
    return d, plan


async def test_a_stale_decision_is_not_applied_twice(env: tuple[Services, ManualClock]) -> None:
    s, clock = env
    d, plan = await _advance_plan(s, clock)
    assert await s.deployments.controller.apply(plan, "a") is not None
    assert await s.deployments.controller.apply(plan, "b") is None  # same revision: refused
    d = await s.deployments.get_deployment(d.deployment_id)
    assert (
        d.step_index == 1
        and [e.action for e in await s.deployments.events(d.deployment_id)].count("advanced") == 1
    )


async def test_reported_metrics_are_not_overwritten_by_a_decision_judged_before_them(
    env: tuple[Services, ManualClock],
) -> None:
    s, clock = env
    d, plan = await _advance_plan(s, clock)
    reported = PerformanceMetrics(latency_p95=0.040, error_rate=0.002, throughput=120.0)
    updated = await s.deployments.update_metrics(d.deployment_id, reported)
    assert updated.revision > d.revision
    assert (
        await s.deployments.controller.apply(plan, "controller") is None
    )  # judged on the old revision
    after = await s.deployments.get_deployment(d.deployment_id)
    assert after.current_metrics == reported and after.step_index == 0


async def test_shadow_comparisons_feed_the_comparison(env: tuple[Services, ManualClock]) -> None:
    s, _ = env
    sh = await s.deployments.shadow_deploy(
        "fraud:v1", "fraud:v2", 50.0, "ds@x.com", use_local_gate=False
    )
    async with s.db.read() as conn:
        routes = await s.deployments.active_routes(conn)
    assert [(r.kind, r.shadows[0].percentage, r.shadows[0].model_version) for r in routes] == [
        ("shadow", 50.0, "v2")
    ]
    for i in range(120):
        await s.deployments.record_shadow_comparison(
            sh.shadow_id, {"p": i % 7}, {"p": i % 7 if i % 10 else -1}, 0.030, 0.040
        )
    cmp = (await s.deployments.compare_shadow_deployment(sh.shadow_id)).to_dict()
    assert cmp["n"] == 120 and cmp["agreement_rate"] == pytest.approx(108 / 120)
    assert cmp["verdict"] == "fail" and "agreement rate" in cmp["reasons"][0]
    assert cmp["disagreement_samples"][-1]["shadow"] == {"p": -1}
    assert cmp["shadow_latency"]["p95"] == pytest.approx(0.040)
    json.dumps(cmp, allow_nan=False)
    await s.deployments.stop_shadow(sh.shadow_id, "ds@x.com")
    async with s.db.read() as conn:
        assert await s.deployments.active_routes(conn) == []
    with pytest.raises(FailedPrecondition):
        await s.deployments.stop_shadow(sh.shadow_id, "ds@x.com")
    with pytest.raises(NotFound):
        await s.deployments.record_shadow_comparison("shadow-nope", 1, 1, 0.1, 0.1)


async def test_blue_keeps_ready_for_the_switch_back_window_then_completes(
    env: tuple[Services, ManualClock],
) -> None:
    s, clock = env
    spec = _spec(
        "v2", strategy=DeploymentStrategy.BLUE_GREEN, stable_version="v1", switch_back_seconds=60.0
    )
    d = await s.deployments.create_deployment(spec, use_local_gate=False)
    assert d.plan.switch_back_seconds == 60.0
    d = await s.deployments.promote(d.deployment_id, "ops@x.com")  # the switch
    for _ in range(14):  # 28 s: past the 10 s step duration, inside the 60 s window
        await _feed(s, clock, d.deployment_id, "green", 300)
        clock.advance(2.0)
        await s.deployments.reconcile()
    d = await s.deployments.get_deployment(d.deployment_id)
    assert d.status is DeploymentStatus.IN_PROGRESS and d.last_check.verdict.value == "pass"
    for _ in range(20):
        clock.advance(2.0)
        await s.deployments.reconcile()
    d = await s.deployments.get_deployment(d.deployment_id)
    assert d.status is DeploymentStatus.COMPLETED
    assert (d.completed_at - d.step_started_at).total_seconds() >= 60.0
    with pytest.raises(InvalidArgument) as err:
        await s.deployments.create_deployment(
            _spec("v3", switch_back_seconds=5.0), use_local_gate=False
        )
    assert err.value.field == "switch_back_seconds"


async def test_canary_assignment_is_sticky_as_the_share_grows(
    env: tuple[Services, ManualClock],
) -> None:
    from neural.mlops.v1.assignment import assign

    s, _ = env
    d = await s.deployments.create_deployment(_spec(steps=[5, 10, 25, 50]), use_local_gate=False)
    users = [f"user-{i}" for i in range(10_000)]
    previous: set[str] = set()
    for pct in (5.0, 10.0, 25.0, 50.0, 100.0):
        async with s.db.read() as conn:
            (route,) = await s.deployments.active_routes(conn)
        assert route.route_id == d.deployment_id  # the deployment id is the salt
        names = [v.name for v in route.variants]
        weights = [v.weight for v in route.variants]
        canary = {u for u in users if names[assign(route.route_id, u, weights)] == "canary"}
        assert previous <= canary  # nobody who had the new version loses it
        assert abs(len(canary) / len(users) - pct / 100) < 0.02
        previous = canary
        if pct < 100:
            d = await s.deployments.promote(d.deployment_id, "ops@x.com")
