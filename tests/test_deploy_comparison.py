"""The shadow comparison and the rollout decision as pure functions (no store, no clock)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from neural.mlops.server.deployments.comparison import (
    SHADOW_MIN_SAMPLES,
    ShadowComparison,
    ShadowLimits,
    compare,
)
from neural.mlops.server.deployments.model import (
    Deployment,
    DeploymentStatus,
    DeploymentStrategy,
    HealthCheck,
    PerformanceMetrics,
    RollbackConfig,
    RolloutPlan,
    Verdict,
)
from neural.mlops.server.deployments.rollout import Action, decide
from neural.mlops.server.deployments.store import DeploymentRecord
from neural.mlops.v1.traffic import ShadowStats, VariantStats

DOCUMENTED_KEYS = {
    "shadow_id", "primary_model", "shadow_model", "status", "n", "agreements", "disagreements",
    "agreement_rate", "mirrored", "dropped", "primary_latency", "shadow_latency",
    "latency_ratio_p95", "primary_error_rate", "shadow_error_rate", "verdict", "reasons",
    "disagreement_samples",
}


def _stats(pairs: int, disagree_every: int = 0, shadow_latency: float = 0.030) -> ShadowStats:
    ss = ShadowStats()
    for i in range(pairs):
        agreed = not (disagree_every and i % disagree_every == 0)
        ss.observe(agreed=agreed, primary_latency=0.030, shadow_latency=shadow_latency,
                   sample={"i": i})
    return ss


def _compare(ss: ShadowStats, primary: VariantStats | None = None, **limits: float
             ) -> ShadowComparison:
    return compare(ss, primary, ShadowLimits(**limits), shadow_id="shadow-1",
                   primary_model="fraud:v1", shadow_model="fraud:v2", status="active")


def test_too_few_pairs_are_inconclusive() -> None:
    c = _compare(_stats(SHADOW_MIN_SAMPLES - 1))
    assert c.verdict is Verdict.INCONCLUSIVE
    assert c.reasons == [f"{SHADOW_MIN_SAMPLES - 1} compared pairs; 100 needed for a verdict"]


def test_agreeing_shadow_of_equal_latency_passes() -> None:
    c = _compare(_stats(200))
    assert (c.verdict, c.reasons, c.agreement_rate, c.disagreements) == (Verdict.PASS, [], 1.0, 0)
    assert c.latency_ratio_p95 == pytest.approx(1.0)


def test_disagreement_and_slowness_each_fail_with_their_reason() -> None:
    c = _compare(_stats(200, disagree_every=10, shadow_latency=0.090))
    assert c.verdict is Verdict.FAIL
    assert c.reasons[0] == "agreement rate 0.9000 < 0.9500"
    assert c.reasons[1].startswith("shadow p95 latency is 3.00x the primary's (limit 1.5x)")
    assert len(c.disagreement_samples) == 20
    assert _compare(_stats(200, disagree_every=10), min_agreement_rate=0.9).verdict is Verdict.PASS


def test_to_dict_gives_the_documented_keys_and_round_trips() -> None:
    c = _compare(_stats(150, disagree_every=50))
    d = c.to_dict()
    assert set(d) == DOCUMENTED_KEYS
    assert d["verdict"] == "pass" and d["disagreements"] == 3
    assert set(d["shadow_latency"]) == {"mean", "p50", "p95", "p99", "count"}
    assert ShadowComparison.from_dict(json.loads(json.dumps(d, allow_nan=False))) == c


def _record(status: DeploymentStatus = DeploymentStatus.IN_PROGRESS, failed: int = 0,
            held_seconds: float = 20.0) -> tuple[DeploymentRecord, datetime]:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    d = Deployment(
        deployment_id="dep-1", model_name="fraud", model_version="v2", stable_version="v1",
        strategy=DeploymentStrategy.CANARY, status=status, created_by="ops@x.com",
        created_at=start, updated_at=start, baseline_metrics=PerformanceMetrics(),
        rollback_config=RollbackConfig(max_failed_checks=2),
        plan=RolloutPlan([10.0, 100.0], 10.0, 1.0), step_index=0, traffic_percentage=10.0,
        step_started_at=start, failed_checks=failed,
    )
    return DeploymentRecord(d), start + timedelta(seconds=held_seconds)


def _check(verdict: Verdict, at: datetime) -> HealthCheck:
    return HealthCheck(at=at, verdict=verdict, reasons=[], source="live", step_index=0,
                       traffic_percentage=10.0, new=PerformanceMetrics())


@pytest.mark.parametrize(("verdict", "status", "failed", "held", "advance", "action"), [
    (Verdict.PASS, DeploymentStatus.IN_PROGRESS, 0, 20.0, True, Action.ADVANCE),
    (Verdict.PASS, DeploymentStatus.IN_PROGRESS, 0, 5.0, True, Action.HOLD),
    (Verdict.PASS, DeploymentStatus.IN_PROGRESS, 0, 20.0, False, Action.HOLD),
    (Verdict.PASS, DeploymentStatus.PAUSED, 0, 20.0, True, Action.HOLD),
    (Verdict.WAIT, DeploymentStatus.IN_PROGRESS, 0, 20.0, True, Action.WAIT),
    (Verdict.FAIL, DeploymentStatus.IN_PROGRESS, 0, 20.0, True, Action.FAILED_CHECK),
    (Verdict.FAIL, DeploymentStatus.IN_PROGRESS, 1, 20.0, True, Action.ROLLBACK),
    (Verdict.INCONCLUSIVE, DeploymentStatus.IN_PROGRESS, 0, 20.0, True, Action.PAUSE),
    (Verdict.INCONCLUSIVE, DeploymentStatus.PAUSED, 0, 20.0, True, Action.HOLD),
])
def test_a_check_decides_one_action(verdict: Verdict, status: DeploymentStatus, failed: int,
                                    held: float, advance: bool, action: Action) -> None:
    rec, at = _record(status, failed, held)
    decision = decide(rec, _check(verdict, at), advance=advance)
    assert decision.action is action
    assert decision.action.quiet is (action in (Action.HOLD, Action.WAIT))
