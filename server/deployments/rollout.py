"""Rollout decisions: what one health check means for a deployment (pure).

:func:`decide` turns a judged :class:`HealthCheck` into an :class:`Action`; nothing here
reads or writes the store. :mod:`.transitions` applies an action, :mod:`.controller`
runs the loop that judges, decides and applies.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from neural.mlops.server.clock import to_us
from neural.mlops.server.deployments.model import (
    Deployment,
    DeploymentStatus,
    HealthCheck,
    Verdict,
)
from neural.mlops.server.deployments.store import DeploymentRecord


class Action(StrEnum):
    """What a check decided. The values are the keys of ``reconcile()``'s counts."""

    HOLD = "hold"  # stay on the step (the hold is not over, or the deployment is paused)
    WAIT = "wait"  # too few requests for a verdict yet
    FAILED_CHECK = "failed_check"  # a failure, fewer than max_failed_checks in a row
    ROLLBACK = "rollback"
    PAUSE = "pause"  # inconclusive, or failed without auto_rollback: a person decides
    ADVANCE = "advance"
    COMPLETE = "complete"

    @property
    def quiet(self) -> bool:
        """No status change, no audit event: only the check result is stored."""
        return self in (Action.HOLD, Action.WAIT)


@dataclass(slots=True)
class Decision:
    """What one check decided (computed on a read, applied with compare-and-set)."""

    record: DeploymentRecord
    check: HealthCheck
    action: Action

    @property
    def deployment(self) -> Deployment:
        return self.record.deployment


def decide(rec: DeploymentRecord, check: HealthCheck, *, advance: bool) -> Decision:
    """The action ``check`` calls for. ``advance``: a passing check may move the rollout on
    (the controller's checks); a manual health check only ever holds, pauses or rolls back.
    """
    d = rec.deployment
    cfg = d.rollback_config
    if check.verdict is Verdict.FAIL:
        if d.failed_checks + 1 >= cfg.max_failed_checks:
            return Decision(rec, check, Action.ROLLBACK if cfg.auto_rollback else Action.PAUSE)
        return Decision(rec, check, Action.FAILED_CHECK)
    if check.verdict is Verdict.INCONCLUSIVE:
        paused = d.status is not DeploymentStatus.IN_PROGRESS
        return Decision(rec, check, Action.HOLD if paused else Action.PAUSE)
    if check.verdict is Verdict.WAIT:
        return Decision(rec, check, Action.WAIT)
    if advance and d.status is DeploymentStatus.IN_PROGRESS:
        held = (to_us(check.at) - to_us(d.step_started_at)) / 1e6
        if held >= d.plan.hold_seconds(d.step_index):
            last = d.step_index + 1 >= len(d.plan.steps)
            return Decision(rec, check, Action.COMPLETE if last else Action.ADVANCE)
    return Decision(rec, check, Action.HOLD)


def next_check_us(d: Deployment, now_us: int) -> int:
    """When to check again: after one analysis interval, but not after the step's hold ends
    (so the advance is not late by up to an interval)."""
    interval = int(d.plan.analysis_interval_seconds * 1e6)
    step_end = to_us(d.step_started_at) + int(d.plan.hold_seconds(d.step_index) * 1e6)
    return now_us + interval if step_end <= now_us else min(now_us + interval, step_end)


def decision_details(check: HealthCheck, d: Deployment) -> dict[str, Any]:
    """Every value a decision was based on (stored with its event and audit record)."""
    cfg = d.rollback_config
    return {"verdict": check.verdict.value, "reasons": check.reasons, "source": check.source,
            "measured": check.new.to_dict(),
            "stable": check.stable.to_dict() if check.stable else None,
            "baseline": d.baseline_metrics.to_dict(), "tests": check.tests,
            "thresholds": {"error_rate_threshold": cfg.error_rate_threshold,
                           "latency_threshold_multiplier": cfg.latency_threshold_multiplier,
                           "min_requests_before_check": cfg.min_requests_before_check,
                           "metric_rules": [r.to_dict() for r in cfg.metric_rules]}}
