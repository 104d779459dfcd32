"""Deployment result and configuration types. Field names are the ones the seed reads.

A deployment moves a model's traffic from its *stable* version to a *new* version along a
plan of steps (percent of traffic on the new version). Every strategy is such a plan:

* ``DIRECT``      ``[100]``: everything at once, then a bake period under health checks.
* ``CANARY``      e.g. ``[5, 10, 25, 50, 100]``: hash-sticky ramp (salt = deployment id).
* ``BLUE_GREEN``  ``[0, 100]``: green gets mirrored (or header-routed) traffic, then one
                  atomic switch; blue stays ready for switch-back during the last hold.
* ``SHADOW``      ``[0]``: the new version only receives mirrored traffic; never serves.

Each step is held for ``step_duration_seconds`` and analysed every
``analysis_interval_seconds``; the rollout controller advances after a passing check
once the hold is over, and completes (promotes) after the last step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class DeploymentStrategy(StrEnum):
    DIRECT = "direct"
    CANARY = "canary"
    BLUE_GREEN = "blue_green"
    SHADOW = "shadow"


class DeploymentStatus(StrEnum):
    IN_PROGRESS = "in_progress"
    PAUSED = "paused"  # by a person, or by the controller on an inconclusive verdict
    COMPLETED = "completed"  # promoted: the new version serves all traffic
    ROLLED_BACK = "rolled_back"
    ABORTED = "aborted"

    @property
    def active(self) -> bool:
        return self in (DeploymentStatus.IN_PROGRESS, DeploymentStatus.PAUSED)


class Verdict(StrEnum):
    """Outcome of one health check."""

    PASS = "pass"
    FAIL = "fail"  # roll back (after max_failed_checks consecutive failures)
    INCONCLUSIVE = "inconclusive"  # hold and wait for a person
    WAIT = "wait"  # not enough requests yet: keep collecting


class PreviewMode(StrEnum):
    """How a blue-green green version is exercised before the switch."""

    MIRROR = "mirror"  # a copy of live traffic (shadow), the caller never sees green
    HEADER = "header"  # only requests with ``x-neural-variant: green`` reach green


class GatePolicy(StrEnum):
    """Lowest registry stage a version needs before it may serve production traffic."""

    PRODUCTION = "production"
    STAGING = "staging"


@dataclass(slots=True)
class PerformanceMetrics:
    """Measured (or baseline) performance. Latencies in seconds, rates in [0, 1].

    ``None`` means unknown; a check skips a threshold whose inputs are unknown.
    """

    latency_p95: float | None = None
    error_rate: float | None = None
    latency_p50: float | None = None
    latency_p99: float | None = None
    latency_mean: float | None = None
    throughput: float | None = None  # requests per second
    request_count: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "latency_p50": self.latency_p50,
            "latency_p95": self.latency_p95,
            "latency_p99": self.latency_p99,
            "latency_mean": self.latency_mean,
            "error_rate": self.error_rate,
            "throughput": self.throughput,
            "request_count": self.request_count,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> PerformanceMetrics:
        d = d or {}
        return cls(
            latency_p95=d.get("latency_p95"),
            error_rate=d.get("error_rate"),
            latency_p50=d.get("latency_p50"),
            latency_p99=d.get("latency_p99"),
            latency_mean=d.get("latency_mean"),
            throughput=d.get("throughput"),
            request_count=int(d.get("request_count") or 0),
        )


class MetricKind(StrEnum):
    """How a custom-metric rule judges (:mod:`.custom_metrics`)."""

    THRESHOLD = "threshold"  # the new version's mean against a fixed limit
    COMPARISON = "comparison"  # new vs stable: relative degradation + Welch t-test


class MetricDirection(StrEnum):
    LOWER = "lower"  # lower is better (latency, cost, ...)
    HIGHER = "higher"  # higher is better (accuracy, conversion, ...)


@dataclass(slots=True)
class MetricRule:
    """A health rule on a custom metric (``x-neural-metric-<metric>`` values per variant).

    THRESHOLD: fail when the new version's mean over the step's window is above
    ``threshold`` (LOWER is better) or below it (HIGHER). COMPARISON: fail when the new
    version's mean is worse than the stable's by more than ``max_degradation`` (relative)
    and a one-sided Welch t-test finds it significantly worse at ``alpha``. Below
    ``min_samples`` values (each side; 0 = ``min_requests_before_check``) the rule waits.
    """

    metric: str
    kind: MetricKind | str = MetricKind.THRESHOLD
    direction: MetricDirection | str = MetricDirection.LOWER
    threshold: float | None = None
    max_degradation: float = 0.0
    alpha: float = 0.05
    min_samples: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "kind": str(MetricKind(self.kind)),
                "direction": str(MetricDirection(self.direction)), "threshold": self.threshold,
                "max_degradation": self.max_degradation, "alpha": self.alpha,
                "min_samples": self.min_samples}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MetricRule:
        return cls(metric=d["metric"], kind=MetricKind(d["kind"]),
                   direction=MetricDirection(d["direction"]), threshold=d.get("threshold"),
                   max_degradation=float(d.get("max_degradation", 0.0)),
                   alpha=float(d.get("alpha", 0.05)), min_samples=int(d.get("min_samples", 0)))


@dataclass(slots=True)
class RollbackConfig:
    """When a deployment is judged unhealthy.

    ``error_rate_threshold``: fail if the new version's error rate exceeds it.
    ``latency_threshold_multiplier``: fail if its p95 exceeds baseline p95 times this.
    ``min_requests_before_check``: fewer requests than this -> WAIT (no verdict).
    ``max_failed_checks``: consecutive failing checks before the rollback.
    ``statistical_judge``: also compare new vs stable on the same step window (error
    rates by a one-sided two-proportion z-test, latency by a one-sided Mann-Whitney U on
    the histograms, see :mod:`.judge`); a threshold breach the stable shares is
    INCONCLUSIVE, a significant regression is FAIL even below the thresholds.
    ``alpha``: significance level of those tests.
    ``latency_effect_threshold``: a latency regression must also have
    P(new > stable) - 0.5 above this (Vargha-Delaney A effect size) to count.
    ``min_agreement_rate``: shadow / mirrored previews fail below this agreement.
    ``auto_rollback``: False turns FAIL into a pause for a person.
    ``metric_rules``: health rules on custom metrics (:class:`MetricRule`).
    """

    error_rate_threshold: float = 0.05
    latency_threshold_multiplier: float = 2.0
    min_requests_before_check: int = 100
    max_failed_checks: int = 1
    statistical_judge: bool = False
    alpha: float = 0.05
    latency_effect_threshold: float = 0.05
    min_agreement_rate: float | None = None
    auto_rollback: bool = True
    metric_rules: list[MetricRule] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric_rules": [r.to_dict() for r in self.metric_rules],
            "error_rate_threshold": self.error_rate_threshold,
            "latency_threshold_multiplier": self.latency_threshold_multiplier,
            "min_requests_before_check": self.min_requests_before_check,
            "max_failed_checks": self.max_failed_checks,
            "statistical_judge": self.statistical_judge,
            "alpha": self.alpha,
            "latency_effect_threshold": self.latency_effect_threshold,
            "min_agreement_rate": self.min_agreement_rate,
            "auto_rollback": self.auto_rollback,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> RollbackConfig:
        base = cls()
        d = d or {}
        out = cls(**{k: d.get(k, getattr(base, k)) for k in base.to_dict()
                     if k != "metric_rules"})
        out.metric_rules = [MetricRule.from_dict(r) for r in d.get("metric_rules") or []]
        return out


DEFAULT_CANARY_STEPS: tuple[float, ...] = (5.0, 10.0, 25.0, 50.0, 100.0)


@dataclass(slots=True)
class RolloutPlan:
    """How traffic moves. ``steps`` are percentages of traffic on the new version."""

    steps: list[float] = field(default_factory=list)
    step_duration_seconds: float = 300.0
    analysis_interval_seconds: float = 60.0
    preview: PreviewMode = PreviewMode.MIRROR
    mirror_percentage: float = 100.0  # blue-green mirror preview and SHADOW strategy
    # Blue-green: how long blue stays ready for an instant switch-back after the switch
    # (the hold of the last step); None = step_duration_seconds.
    switch_back_seconds: float | None = None

    def hold_seconds(self, index: int) -> float:
        """How long step ``index`` is held before the controller moves on."""
        if self.switch_back_seconds is not None and self.steps == [0.0, 100.0] and index == 1:
            return self.switch_back_seconds
        return self.step_duration_seconds

    def to_dict(self) -> dict[str, Any]:
        return {
            "switch_back_seconds": self.switch_back_seconds,
            "steps": list(self.steps),
            "step_duration_seconds": self.step_duration_seconds,
            "analysis_interval_seconds": self.analysis_interval_seconds,
            "preview": self.preview.value,
            "mirror_percentage": self.mirror_percentage,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> RolloutPlan:
        d = d or {}
        return cls(
            steps=[float(s) for s in d.get("steps", [])],
            step_duration_seconds=float(d.get("step_duration_seconds", 300.0)),
            analysis_interval_seconds=float(d.get("analysis_interval_seconds", 60.0)),
            preview=PreviewMode(d.get("preview", "mirror")),
            mirror_percentage=float(d.get("mirror_percentage", 100.0)),
            switch_back_seconds=(None if d.get("switch_back_seconds") is None
                                 else float(d["switch_back_seconds"])),
        )


@dataclass(slots=True)
class HealthCheck:
    """One judged check and every value it was based on."""

    at: datetime
    verdict: Verdict
    reasons: list[str]
    source: str  # "live" (sidecar metrics) | "manual" (update_metrics) | "none"
    step_index: int
    traffic_percentage: float
    new: PerformanceMetrics
    stable: PerformanceMetrics | None = None
    tests: dict[str, Any] = field(default_factory=dict)  # statistical judge details


@dataclass(slots=True)
class DeploymentEvent:
    """One stored decision or operator action (the deployment's own history)."""

    seq: int
    at: datetime
    # created | advanced | promoted | rolled_back | paused | resumed | aborted | failed_check
    action: str
    actor: str
    from_status: DeploymentStatus | None
    to_status: DeploymentStatus
    step_index: int
    traffic_percentage: float
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Deployment:
    deployment_id: str
    model_name: str
    model_version: str
    stable_version: str  # "" = whatever version the caller asked for
    strategy: DeploymentStrategy
    status: DeploymentStatus
    created_by: str
    created_at: datetime
    updated_at: datetime
    baseline_metrics: PerformanceMetrics
    rollback_config: RollbackConfig
    plan: RolloutPlan
    step_index: int
    traffic_percentage: float
    step_started_at: datetime
    failed_checks: int = 0
    current_metrics: PerformanceMetrics | None = None
    last_check: HealthCheck | None = None
    rollback_reasons: list[str] = field(default_factory=list)
    status_reason: str = ""
    gate: dict[str, Any] = field(default_factory=dict)
    completed_at: datetime | None = None
    revision: int = 0
    # Canonical condition texts (neural.mlops.v1.targeting): only matching requests take
    # part in the rollout, the others stay on the stable version; () = every request.
    targeting: tuple[str, ...] = ()
    # (header, value, variant): Argo's setHeaderRoute, e.g. ("x-canary", "always", "canary").
    header_routes: tuple[tuple[str, str, str], ...] = ()

    @property
    def active(self) -> bool:
        return self.status.active

    @property
    def new_variant(self) -> str:
        return "green" if self.strategy is DeploymentStrategy.BLUE_GREEN else "canary"

    @property
    def stable_variant(self) -> str:
        return "blue" if self.strategy is DeploymentStrategy.BLUE_GREEN else "stable"


class ShadowStatus(StrEnum):
    ACTIVE = "active"
    STOPPED = "stopped"


@dataclass(slots=True)
class ShadowDeployment:
    shadow_id: str
    primary_model: str  # "name:version" as given
    shadow_model: str
    traffic_percentage: float
    status: ShadowStatus
    created_by: str
    created_at: datetime
    stopped_at: datetime | None = None
    upstream: str = ""  # HOST:PORT of the shadow's model server ("" = the sidecar's)

    @property
    def model_name(self) -> str:
        return self.primary_model.split(":", 1)[0]
