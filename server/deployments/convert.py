"""Deployment domain types <-> protobuf messages, used by the servicer and the remote client."""

from __future__ import annotations

import json
from typing import Any

from neural.mlops.server.deployments.comparison import ShadowComparison
from neural.mlops.server.deployments.model import (
    Deployment,
    DeploymentEvent,
    DeploymentStatus,
    DeploymentStrategy,
    HealthCheck,
    MetricDirection,
    MetricKind,
    MetricRule,
    PerformanceMetrics,
    PreviewMode,
    RollbackConfig,
    RolloutPlan,
    ShadowDeployment,
    ShadowStatus,
    Verdict,
)
from neural.mlops.server.errors import InvalidArgument
from neural.mlops.server.timestamps import from_timestamp as dt
from neural.mlops.server.timestamps import to_timestamp as ts
from neural.mlops.v1 import deployments_pb2 as pb
from neural.mlops.v1 import targeting, targeting_pb2

STRATEGY_TO_PB = {
    DeploymentStrategy.DIRECT: pb.DEPLOYMENT_STRATEGY_DIRECT,
    DeploymentStrategy.CANARY: pb.DEPLOYMENT_STRATEGY_CANARY,
    DeploymentStrategy.BLUE_GREEN: pb.DEPLOYMENT_STRATEGY_BLUE_GREEN,
    DeploymentStrategy.SHADOW: pb.DEPLOYMENT_STRATEGY_SHADOW,
}
STRATEGY_FROM_PB = {v: k for k, v in STRATEGY_TO_PB.items()}
STATUS_TO_PB = {
    DeploymentStatus.IN_PROGRESS: pb.DEPLOYMENT_STATUS_IN_PROGRESS,
    DeploymentStatus.PAUSED: pb.DEPLOYMENT_STATUS_PAUSED,
    DeploymentStatus.COMPLETED: pb.DEPLOYMENT_STATUS_COMPLETED,
    DeploymentStatus.ROLLED_BACK: pb.DEPLOYMENT_STATUS_ROLLED_BACK,
    DeploymentStatus.ABORTED: pb.DEPLOYMENT_STATUS_ABORTED,
}
STATUS_FROM_PB = {v: k for k, v in STATUS_TO_PB.items()}
VERDICT_TO_PB = {
    Verdict.PASS: pb.VERDICT_PASS,
    Verdict.FAIL: pb.VERDICT_FAIL,
    Verdict.INCONCLUSIVE: pb.VERDICT_INCONCLUSIVE,
    Verdict.WAIT: pb.VERDICT_WAIT,
}
VERDICT_FROM_PB = {v: k for k, v in VERDICT_TO_PB.items()}

_OPTIONAL = ("latency_p95", "error_rate", "latency_p50", "latency_p99", "latency_mean",
             "throughput")


def strategy_from_pb(value: int) -> DeploymentStrategy:
    if value == pb.DEPLOYMENT_STRATEGY_UNSPECIFIED:
        return DeploymentStrategy.CANARY
    try:
        return STRATEGY_FROM_PB[value]  # type: ignore[index]
    except KeyError:
        raise InvalidArgument(f"unknown strategy {value}", field="strategy") from None


def metrics_to_pb(m: PerformanceMetrics) -> pb.PerformanceMetrics:
    out = pb.PerformanceMetrics(request_count=m.request_count)
    for name in _OPTIONAL:
        value = getattr(m, name)
        if value is not None:
            setattr(out, name, value)
    return out


def metrics_from_pb(m: pb.PerformanceMetrics) -> PerformanceMetrics:
    out = PerformanceMetrics(request_count=m.request_count)
    for name in _OPTIONAL:
        if m.HasField(name):
            setattr(out, name, getattr(m, name))
    return out


KIND_TO_PB = {MetricKind.THRESHOLD: pb.METRIC_RULE_KIND_THRESHOLD,
              MetricKind.COMPARISON: pb.METRIC_RULE_KIND_COMPARISON}
KIND_FROM_PB: dict[int, MetricKind] = {int(v): k for k, v in KIND_TO_PB.items()}
DIRECTION_TO_PB = {MetricDirection.LOWER: pb.METRIC_DIRECTION_LOWER_IS_BETTER,
                   MetricDirection.HIGHER: pb.METRIC_DIRECTION_HIGHER_IS_BETTER}
DIRECTION_FROM_PB: dict[int, MetricDirection] = {int(v): k for k, v in DIRECTION_TO_PB.items()}


def rule_to_pb(r: MetricRule) -> pb.MetricRule:
    out = pb.MetricRule(metric=r.metric, kind=KIND_TO_PB.get(r.kind, 0),  # type: ignore[call-overload]
                        direction=DIRECTION_TO_PB.get(r.direction, 0),  # type: ignore[call-overload]
                        max_degradation=r.max_degradation, alpha=r.alpha,
                        min_samples=r.min_samples)
    if r.threshold is not None:
        out.threshold = r.threshold
    return out


def rule_from_pb(r: pb.MetricRule) -> MetricRule:
    """An unset or unknown kind/direction becomes "" (refused by validation, by name)."""
    return MetricRule(
        metric=r.metric, kind=KIND_FROM_PB.get(r.kind, ""),
        direction=DIRECTION_FROM_PB.get(r.direction, ""),
        threshold=r.threshold if r.HasField("threshold") else None,
        max_degradation=r.max_degradation, alpha=r.alpha, min_samples=r.min_samples,
    )


def conditions_to_pb(texts: tuple[str, ...]) -> list[targeting_pb2.Condition]:
    return [targeting.parse(t) for t in texts]


def header_routes_to_pb(routes: tuple[tuple[str, str, str], ...]
                        ) -> list[targeting_pb2.HeaderRoute]:
    return [targeting_pb2.HeaderRoute(header=h, value=v, variant=n) for h, v, n in routes]


def header_routes_from_pb(routes: Any) -> list[tuple[str, str, str]]:
    return [(h.header, h.value, h.variant) for h in routes]


def rollback_to_pb(c: RollbackConfig) -> pb.RollbackConfig:
    out = pb.RollbackConfig(
        error_rate_threshold=c.error_rate_threshold,
        latency_threshold_multiplier=c.latency_threshold_multiplier,
        min_requests_before_check=c.min_requests_before_check,
        max_failed_checks=c.max_failed_checks,
        statistical_judge=c.statistical_judge,
        alpha=c.alpha,
        latency_effect_threshold=c.latency_effect_threshold,
        auto_rollback=c.auto_rollback,
        metric_rules=[rule_to_pb(r) for r in c.metric_rules],
    )
    if c.min_agreement_rate is not None:
        out.min_agreement_rate = c.min_agreement_rate
    return out


def rollback_from_pb(c: pb.RollbackConfig) -> RollbackConfig:
    return RollbackConfig(
        error_rate_threshold=c.error_rate_threshold,
        latency_threshold_multiplier=c.latency_threshold_multiplier,
        min_requests_before_check=c.min_requests_before_check,
        max_failed_checks=c.max_failed_checks,
        statistical_judge=c.statistical_judge,
        alpha=c.alpha,
        latency_effect_threshold=c.latency_effect_threshold,
        min_agreement_rate=c.min_agreement_rate if c.HasField("min_agreement_rate") else None,
        auto_rollback=c.auto_rollback,
        metric_rules=[rule_from_pb(r) for r in c.metric_rules],
    )


def preview_to_pb(value: PreviewMode | str) -> str:
    """The wire name of a preview mode; InvalidArgument naming ``preview`` for another."""
    name = f"PREVIEW_MODE_{str(getattr(value, 'value', value)).upper()}"
    if name == "PREVIEW_MODE_UNSPECIFIED" or name not in pb.PreviewMode.keys():
        raise InvalidArgument(f"preview must be one of {[m.value for m in PreviewMode]}",
                              field="preview")
    return name


def preview_from_pb(value: int) -> str:
    """The preview mode a message names (UNSPECIFIED: the default, mirror)."""
    if value == pb.PREVIEW_MODE_UNSPECIFIED or value not in pb.PreviewMode.values():
        return PreviewMode.MIRROR.value
    return pb.PreviewMode.Name(value).removeprefix("PREVIEW_MODE_").lower()


def _source_to_pb(source: str) -> str:
    name = f"METRICS_SOURCE_{source.upper()}"
    return name if name in pb.MetricsSource.keys() else "METRICS_SOURCE_UNSPECIFIED"


def _source_from_pb(value: int) -> str:
    if value == pb.METRICS_SOURCE_UNSPECIFIED or value not in pb.MetricsSource.values():
        return ""
    return pb.MetricsSource.Name(value).removeprefix("METRICS_SOURCE_").lower()


def plan_to_pb(p: RolloutPlan) -> pb.RolloutPlan:
    out = pb.RolloutPlan(steps=p.steps, step_duration_seconds=p.step_duration_seconds,
                         analysis_interval_seconds=p.analysis_interval_seconds,
                         preview=preview_to_pb(p.preview), mirror_percentage=p.mirror_percentage)
    if p.switch_back_seconds is not None:
        out.switch_back_seconds = p.switch_back_seconds
    return out


def plan_from_pb(p: pb.RolloutPlan) -> RolloutPlan:
    return RolloutPlan.from_dict({
        "steps": list(p.steps), "step_duration_seconds": p.step_duration_seconds,
        "analysis_interval_seconds": p.analysis_interval_seconds,
        "preview": preview_from_pb(p.preview), "mirror_percentage": p.mirror_percentage,
        "switch_back_seconds": p.switch_back_seconds if p.HasField("switch_back_seconds") else None,
    })


def check_to_pb(c: HealthCheck) -> pb.HealthCheck:
    out = pb.HealthCheck(at=ts(c.at), verdict=VERDICT_TO_PB[c.verdict], reasons=c.reasons,
                         source=_source_to_pb(c.source), step_index=c.step_index,
                         traffic_percentage=c.traffic_percentage, new=metrics_to_pb(c.new),
                         tests_json=json.dumps(c.tests, sort_keys=True))
    if c.stable is not None:
        out.stable.CopyFrom(metrics_to_pb(c.stable))
    return out


def check_from_pb(c: pb.HealthCheck) -> HealthCheck:
    return HealthCheck(
        at=dt(c.at), verdict=VERDICT_FROM_PB.get(c.verdict, Verdict.WAIT),
        reasons=list(c.reasons), source=_source_from_pb(c.source), step_index=c.step_index,
        traffic_percentage=c.traffic_percentage, new=metrics_from_pb(c.new),
        stable=metrics_from_pb(c.stable) if c.HasField("stable") else None,
        tests=json.loads(c.tests_json) if c.tests_json else {},
    )


def deployment_to_pb(d: Deployment) -> pb.Deployment:
    out = pb.Deployment(
        deployment_id=d.deployment_id, model_name=d.model_name, model_version=d.model_version,
        stable_version=d.stable_version, strategy=STRATEGY_TO_PB[d.strategy],
        status=STATUS_TO_PB[d.status], created_by=d.created_by, created_at=ts(d.created_at),
        updated_at=ts(d.updated_at), baseline_metrics=metrics_to_pb(d.baseline_metrics),
        rollback_config=rollback_to_pb(d.rollback_config),
        plan=plan_to_pb(d.plan), step_index=d.step_index, traffic_percentage=d.traffic_percentage,
        step_started_at=ts(d.step_started_at), failed_checks=d.failed_checks,
        rollback_reasons=d.rollback_reasons, status_reason=d.status_reason,
        gate_json=json.dumps(d.gate, sort_keys=True), revision=d.revision,
        targeting=conditions_to_pb(d.targeting),
        header_routes=header_routes_to_pb(d.header_routes),
    )
    if d.current_metrics is not None:
        out.current_metrics.CopyFrom(metrics_to_pb(d.current_metrics))
    if d.last_check is not None:
        out.last_check.CopyFrom(check_to_pb(d.last_check))
    if d.completed_at is not None:
        out.completed_at.CopyFrom(ts(d.completed_at))
    return out


def deployment_from_pb(d: pb.Deployment) -> Deployment:
    return Deployment(
        deployment_id=d.deployment_id, model_name=d.model_name, model_version=d.model_version,
        stable_version=d.stable_version, strategy=strategy_from_pb(d.strategy),
        status=STATUS_FROM_PB[d.status],
        created_by=d.created_by, created_at=dt(d.created_at), updated_at=dt(d.updated_at),
        baseline_metrics=metrics_from_pb(d.baseline_metrics),
        rollback_config=rollback_from_pb(d.rollback_config), plan=plan_from_pb(d.plan),
        step_index=d.step_index, traffic_percentage=d.traffic_percentage,
        step_started_at=dt(d.step_started_at), failed_checks=d.failed_checks,
        current_metrics=(metrics_from_pb(d.current_metrics) if d.HasField("current_metrics")
                         else None),
        last_check=check_from_pb(d.last_check) if d.HasField("last_check") else None,
        rollback_reasons=list(d.rollback_reasons), status_reason=d.status_reason,
        gate=json.loads(d.gate_json) if d.gate_json else {},
        completed_at=dt(d.completed_at) if d.HasField("completed_at") else None,
        revision=d.revision, targeting=tuple(targeting.format(t) for t in d.targeting),
        header_routes=tuple(header_routes_from_pb(d.header_routes)),
    )


def event_to_pb(e: DeploymentEvent) -> pb.DeploymentEvent:
    return pb.DeploymentEvent(
        seq=e.seq, at=ts(e.at), action=e.action, actor=e.actor,
        from_status=STATUS_TO_PB.get(e.from_status, 0) if e.from_status else 0,  # type: ignore[arg-type]
        to_status=STATUS_TO_PB[e.to_status], step_index=e.step_index,
        traffic_percentage=e.traffic_percentage, details_json=json.dumps(e.details, sort_keys=True),
    )


def event_from_pb(e: pb.DeploymentEvent) -> DeploymentEvent:
    return DeploymentEvent(
        seq=e.seq, at=dt(e.at), action=e.action, actor=e.actor,
        from_status=STATUS_FROM_PB.get(e.from_status),
        to_status=STATUS_FROM_PB[e.to_status],
        step_index=e.step_index, traffic_percentage=e.traffic_percentage,
        details=json.loads(e.details_json) if e.details_json else {},
    )


SHADOW_STATUS_TO_PB = {ShadowStatus.ACTIVE: pb.SHADOW_STATUS_ACTIVE,
                       ShadowStatus.STOPPED: pb.SHADOW_STATUS_STOPPED}
SHADOW_STATUS_FROM_PB: dict[int, ShadowStatus] = {int(v): k
                                                  for k, v in SHADOW_STATUS_TO_PB.items()}


def shadow_to_pb(s: ShadowDeployment) -> pb.ShadowDeployment:
    out = pb.ShadowDeployment(
        shadow_id=s.shadow_id, primary_model=s.primary_model, shadow_model=s.shadow_model,
        traffic_percentage=s.traffic_percentage, status=SHADOW_STATUS_TO_PB[s.status],
        created_by=s.created_by,
        created_at=ts(s.created_at), upstream=s.upstream,
    )
    if s.stopped_at is not None:
        out.stopped_at.CopyFrom(ts(s.stopped_at))
    return out


def shadow_from_pb(s: pb.ShadowDeployment) -> ShadowDeployment:
    return ShadowDeployment(
        shadow_id=s.shadow_id, primary_model=s.primary_model, shadow_model=s.shadow_model,
        traffic_percentage=s.traffic_percentage, status=SHADOW_STATUS_FROM_PB[s.status],
        created_by=s.created_by, created_at=dt(s.created_at),
        stopped_at=dt(s.stopped_at) if s.HasField("stopped_at") else None, upstream=s.upstream,
    )


def comparison_to_pb(c: ShadowComparison) -> pb.ShadowComparison:
    return pb.ShadowComparison(result_json=json.dumps(c.to_dict(), sort_keys=True,
                                                      allow_nan=False))


def comparison_from_pb(c: pb.ShadowComparison) -> ShadowComparison:
    return ShadowComparison.from_dict(json.loads(c.result_json))


def json_arg(text: str, field: str) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        raise InvalidArgument(f"{field} is not valid JSON", field=field) from None
