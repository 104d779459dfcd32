import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from neural.mlops.v1 import targeting_pb2 as _targeting_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DeploymentStrategy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DEPLOYMENT_STRATEGY_UNSPECIFIED: _ClassVar[DeploymentStrategy]
    DEPLOYMENT_STRATEGY_DIRECT: _ClassVar[DeploymentStrategy]
    DEPLOYMENT_STRATEGY_CANARY: _ClassVar[DeploymentStrategy]
    DEPLOYMENT_STRATEGY_BLUE_GREEN: _ClassVar[DeploymentStrategy]
    DEPLOYMENT_STRATEGY_SHADOW: _ClassVar[DeploymentStrategy]

class DeploymentStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DEPLOYMENT_STATUS_UNSPECIFIED: _ClassVar[DeploymentStatus]
    DEPLOYMENT_STATUS_IN_PROGRESS: _ClassVar[DeploymentStatus]
    DEPLOYMENT_STATUS_PAUSED: _ClassVar[DeploymentStatus]
    DEPLOYMENT_STATUS_COMPLETED: _ClassVar[DeploymentStatus]
    DEPLOYMENT_STATUS_ROLLED_BACK: _ClassVar[DeploymentStatus]
    DEPLOYMENT_STATUS_ABORTED: _ClassVar[DeploymentStatus]

class Verdict(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VERDICT_UNSPECIFIED: _ClassVar[Verdict]
    VERDICT_PASS: _ClassVar[Verdict]
    VERDICT_FAIL: _ClassVar[Verdict]
    VERDICT_INCONCLUSIVE: _ClassVar[Verdict]
    VERDICT_WAIT: _ClassVar[Verdict]

class MetricRuleKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    METRIC_RULE_KIND_UNSPECIFIED: _ClassVar[MetricRuleKind]
    METRIC_RULE_KIND_THRESHOLD: _ClassVar[MetricRuleKind]
    METRIC_RULE_KIND_COMPARISON: _ClassVar[MetricRuleKind]

class MetricDirection(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    METRIC_DIRECTION_UNSPECIFIED: _ClassVar[MetricDirection]
    METRIC_DIRECTION_LOWER_IS_BETTER: _ClassVar[MetricDirection]
    METRIC_DIRECTION_HIGHER_IS_BETTER: _ClassVar[MetricDirection]

class PreviewMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PREVIEW_MODE_UNSPECIFIED: _ClassVar[PreviewMode]
    PREVIEW_MODE_MIRROR: _ClassVar[PreviewMode]
    PREVIEW_MODE_HEADER: _ClassVar[PreviewMode]

class MetricsSource(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    METRICS_SOURCE_UNSPECIFIED: _ClassVar[MetricsSource]
    METRICS_SOURCE_LIVE: _ClassVar[MetricsSource]
    METRICS_SOURCE_MANUAL: _ClassVar[MetricsSource]
    METRICS_SOURCE_NONE: _ClassVar[MetricsSource]

class ShadowStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SHADOW_STATUS_UNSPECIFIED: _ClassVar[ShadowStatus]
    SHADOW_STATUS_ACTIVE: _ClassVar[ShadowStatus]
    SHADOW_STATUS_STOPPED: _ClassVar[ShadowStatus]
DEPLOYMENT_STRATEGY_UNSPECIFIED: DeploymentStrategy
DEPLOYMENT_STRATEGY_DIRECT: DeploymentStrategy
DEPLOYMENT_STRATEGY_CANARY: DeploymentStrategy
DEPLOYMENT_STRATEGY_BLUE_GREEN: DeploymentStrategy
DEPLOYMENT_STRATEGY_SHADOW: DeploymentStrategy
DEPLOYMENT_STATUS_UNSPECIFIED: DeploymentStatus
DEPLOYMENT_STATUS_IN_PROGRESS: DeploymentStatus
DEPLOYMENT_STATUS_PAUSED: DeploymentStatus
DEPLOYMENT_STATUS_COMPLETED: DeploymentStatus
DEPLOYMENT_STATUS_ROLLED_BACK: DeploymentStatus
DEPLOYMENT_STATUS_ABORTED: DeploymentStatus
VERDICT_UNSPECIFIED: Verdict
VERDICT_PASS: Verdict
VERDICT_FAIL: Verdict
VERDICT_INCONCLUSIVE: Verdict
VERDICT_WAIT: Verdict
METRIC_RULE_KIND_UNSPECIFIED: MetricRuleKind
METRIC_RULE_KIND_THRESHOLD: MetricRuleKind
METRIC_RULE_KIND_COMPARISON: MetricRuleKind
METRIC_DIRECTION_UNSPECIFIED: MetricDirection
METRIC_DIRECTION_LOWER_IS_BETTER: MetricDirection
METRIC_DIRECTION_HIGHER_IS_BETTER: MetricDirection
PREVIEW_MODE_UNSPECIFIED: PreviewMode
PREVIEW_MODE_MIRROR: PreviewMode
PREVIEW_MODE_HEADER: PreviewMode
METRICS_SOURCE_UNSPECIFIED: MetricsSource
METRICS_SOURCE_LIVE: MetricsSource
METRICS_SOURCE_MANUAL: MetricsSource
METRICS_SOURCE_NONE: MetricsSource
SHADOW_STATUS_UNSPECIFIED: ShadowStatus
SHADOW_STATUS_ACTIVE: ShadowStatus
SHADOW_STATUS_STOPPED: ShadowStatus

class PerformanceMetrics(_message.Message):
    __slots__ = ("latency_p95", "error_rate", "latency_p50", "latency_p99", "latency_mean", "throughput", "request_count")
    LATENCY_P95_FIELD_NUMBER: _ClassVar[int]
    ERROR_RATE_FIELD_NUMBER: _ClassVar[int]
    LATENCY_P50_FIELD_NUMBER: _ClassVar[int]
    LATENCY_P99_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MEAN_FIELD_NUMBER: _ClassVar[int]
    THROUGHPUT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_COUNT_FIELD_NUMBER: _ClassVar[int]
    latency_p95: float
    error_rate: float
    latency_p50: float
    latency_p99: float
    latency_mean: float
    throughput: float
    request_count: int
    def __init__(self, latency_p95: _Optional[float] = ..., error_rate: _Optional[float] = ..., latency_p50: _Optional[float] = ..., latency_p99: _Optional[float] = ..., latency_mean: _Optional[float] = ..., throughput: _Optional[float] = ..., request_count: _Optional[int] = ...) -> None: ...

class RollbackConfig(_message.Message):
    __slots__ = ("error_rate_threshold", "latency_threshold_multiplier", "min_requests_before_check", "max_failed_checks", "statistical_judge", "alpha", "latency_effect_threshold", "min_agreement_rate", "auto_rollback", "metric_rules")
    ERROR_RATE_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    LATENCY_THRESHOLD_MULTIPLIER_FIELD_NUMBER: _ClassVar[int]
    MIN_REQUESTS_BEFORE_CHECK_FIELD_NUMBER: _ClassVar[int]
    MAX_FAILED_CHECKS_FIELD_NUMBER: _ClassVar[int]
    STATISTICAL_JUDGE_FIELD_NUMBER: _ClassVar[int]
    ALPHA_FIELD_NUMBER: _ClassVar[int]
    LATENCY_EFFECT_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    MIN_AGREEMENT_RATE_FIELD_NUMBER: _ClassVar[int]
    AUTO_ROLLBACK_FIELD_NUMBER: _ClassVar[int]
    METRIC_RULES_FIELD_NUMBER: _ClassVar[int]
    error_rate_threshold: float
    latency_threshold_multiplier: float
    min_requests_before_check: int
    max_failed_checks: int
    statistical_judge: bool
    alpha: float
    latency_effect_threshold: float
    min_agreement_rate: float
    auto_rollback: bool
    metric_rules: _containers.RepeatedCompositeFieldContainer[MetricRule]
    def __init__(self, error_rate_threshold: _Optional[float] = ..., latency_threshold_multiplier: _Optional[float] = ..., min_requests_before_check: _Optional[int] = ..., max_failed_checks: _Optional[int] = ..., statistical_judge: _Optional[bool] = ..., alpha: _Optional[float] = ..., latency_effect_threshold: _Optional[float] = ..., min_agreement_rate: _Optional[float] = ..., auto_rollback: _Optional[bool] = ..., metric_rules: _Optional[_Iterable[_Union[MetricRule, _Mapping]]] = ...) -> None: ...

class MetricRule(_message.Message):
    __slots__ = ("metric", "kind", "direction", "threshold", "max_degradation", "alpha", "min_samples")
    METRIC_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    MAX_DEGRADATION_FIELD_NUMBER: _ClassVar[int]
    ALPHA_FIELD_NUMBER: _ClassVar[int]
    MIN_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    metric: str
    kind: MetricRuleKind
    direction: MetricDirection
    threshold: float
    max_degradation: float
    alpha: float
    min_samples: int
    def __init__(self, metric: _Optional[str] = ..., kind: _Optional[_Union[MetricRuleKind, str]] = ..., direction: _Optional[_Union[MetricDirection, str]] = ..., threshold: _Optional[float] = ..., max_degradation: _Optional[float] = ..., alpha: _Optional[float] = ..., min_samples: _Optional[int] = ...) -> None: ...

class RolloutPlan(_message.Message):
    __slots__ = ("steps", "step_duration_seconds", "analysis_interval_seconds", "preview", "mirror_percentage", "switch_back_seconds")
    STEPS_FIELD_NUMBER: _ClassVar[int]
    STEP_DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ANALYSIS_INTERVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    PREVIEW_FIELD_NUMBER: _ClassVar[int]
    MIRROR_PERCENTAGE_FIELD_NUMBER: _ClassVar[int]
    SWITCH_BACK_SECONDS_FIELD_NUMBER: _ClassVar[int]
    steps: _containers.RepeatedScalarFieldContainer[float]
    step_duration_seconds: float
    analysis_interval_seconds: float
    preview: PreviewMode
    mirror_percentage: float
    switch_back_seconds: float
    def __init__(self, steps: _Optional[_Iterable[float]] = ..., step_duration_seconds: _Optional[float] = ..., analysis_interval_seconds: _Optional[float] = ..., preview: _Optional[_Union[PreviewMode, str]] = ..., mirror_percentage: _Optional[float] = ..., switch_back_seconds: _Optional[float] = ...) -> None: ...

class HealthCheck(_message.Message):
    __slots__ = ("at", "verdict", "reasons", "source", "step_index", "traffic_percentage", "new", "stable", "tests_json")
    AT_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    STEP_INDEX_FIELD_NUMBER: _ClassVar[int]
    TRAFFIC_PERCENTAGE_FIELD_NUMBER: _ClassVar[int]
    NEW_FIELD_NUMBER: _ClassVar[int]
    STABLE_FIELD_NUMBER: _ClassVar[int]
    TESTS_JSON_FIELD_NUMBER: _ClassVar[int]
    at: _timestamp_pb2.Timestamp
    verdict: Verdict
    reasons: _containers.RepeatedScalarFieldContainer[str]
    source: MetricsSource
    step_index: int
    traffic_percentage: float
    new: PerformanceMetrics
    stable: PerformanceMetrics
    tests_json: str
    def __init__(self, at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., verdict: _Optional[_Union[Verdict, str]] = ..., reasons: _Optional[_Iterable[str]] = ..., source: _Optional[_Union[MetricsSource, str]] = ..., step_index: _Optional[int] = ..., traffic_percentage: _Optional[float] = ..., new: _Optional[_Union[PerformanceMetrics, _Mapping]] = ..., stable: _Optional[_Union[PerformanceMetrics, _Mapping]] = ..., tests_json: _Optional[str] = ...) -> None: ...

class Deployment(_message.Message):
    __slots__ = ("deployment_id", "model_name", "model_version", "stable_version", "strategy", "status", "created_by", "created_at", "updated_at", "baseline_metrics", "rollback_config", "plan", "step_index", "traffic_percentage", "step_started_at", "failed_checks", "current_metrics", "last_check", "rollback_reasons", "status_reason", "gate_json", "completed_at", "revision", "targeting", "header_routes")
    DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    STABLE_VERSION_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    BASELINE_METRICS_FIELD_NUMBER: _ClassVar[int]
    ROLLBACK_CONFIG_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    STEP_INDEX_FIELD_NUMBER: _ClassVar[int]
    TRAFFIC_PERCENTAGE_FIELD_NUMBER: _ClassVar[int]
    STEP_STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    FAILED_CHECKS_FIELD_NUMBER: _ClassVar[int]
    CURRENT_METRICS_FIELD_NUMBER: _ClassVar[int]
    LAST_CHECK_FIELD_NUMBER: _ClassVar[int]
    ROLLBACK_REASONS_FIELD_NUMBER: _ClassVar[int]
    STATUS_REASON_FIELD_NUMBER: _ClassVar[int]
    GATE_JSON_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_AT_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    TARGETING_FIELD_NUMBER: _ClassVar[int]
    HEADER_ROUTES_FIELD_NUMBER: _ClassVar[int]
    deployment_id: str
    model_name: str
    model_version: str
    stable_version: str
    strategy: DeploymentStrategy
    status: DeploymentStatus
    created_by: str
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    baseline_metrics: PerformanceMetrics
    rollback_config: RollbackConfig
    plan: RolloutPlan
    step_index: int
    traffic_percentage: float
    step_started_at: _timestamp_pb2.Timestamp
    failed_checks: int
    current_metrics: PerformanceMetrics
    last_check: HealthCheck
    rollback_reasons: _containers.RepeatedScalarFieldContainer[str]
    status_reason: str
    gate_json: str
    completed_at: _timestamp_pb2.Timestamp
    revision: int
    targeting: _containers.RepeatedCompositeFieldContainer[_targeting_pb2.Condition]
    header_routes: _containers.RepeatedCompositeFieldContainer[_targeting_pb2.HeaderRoute]
    def __init__(self, deployment_id: _Optional[str] = ..., model_name: _Optional[str] = ..., model_version: _Optional[str] = ..., stable_version: _Optional[str] = ..., strategy: _Optional[_Union[DeploymentStrategy, str]] = ..., status: _Optional[_Union[DeploymentStatus, str]] = ..., created_by: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., baseline_metrics: _Optional[_Union[PerformanceMetrics, _Mapping]] = ..., rollback_config: _Optional[_Union[RollbackConfig, _Mapping]] = ..., plan: _Optional[_Union[RolloutPlan, _Mapping]] = ..., step_index: _Optional[int] = ..., traffic_percentage: _Optional[float] = ..., step_started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., failed_checks: _Optional[int] = ..., current_metrics: _Optional[_Union[PerformanceMetrics, _Mapping]] = ..., last_check: _Optional[_Union[HealthCheck, _Mapping]] = ..., rollback_reasons: _Optional[_Iterable[str]] = ..., status_reason: _Optional[str] = ..., gate_json: _Optional[str] = ..., completed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., revision: _Optional[int] = ..., targeting: _Optional[_Iterable[_Union[_targeting_pb2.Condition, _Mapping]]] = ..., header_routes: _Optional[_Iterable[_Union[_targeting_pb2.HeaderRoute, _Mapping]]] = ...) -> None: ...

class DeploymentEvent(_message.Message):
    __slots__ = ("seq", "at", "action", "actor", "from_status", "to_status", "step_index", "traffic_percentage", "details_json")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    FROM_STATUS_FIELD_NUMBER: _ClassVar[int]
    TO_STATUS_FIELD_NUMBER: _ClassVar[int]
    STEP_INDEX_FIELD_NUMBER: _ClassVar[int]
    TRAFFIC_PERCENTAGE_FIELD_NUMBER: _ClassVar[int]
    DETAILS_JSON_FIELD_NUMBER: _ClassVar[int]
    seq: int
    at: _timestamp_pb2.Timestamp
    action: str
    actor: str
    from_status: DeploymentStatus
    to_status: DeploymentStatus
    step_index: int
    traffic_percentage: float
    details_json: str
    def __init__(self, seq: _Optional[int] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., action: _Optional[str] = ..., actor: _Optional[str] = ..., from_status: _Optional[_Union[DeploymentStatus, str]] = ..., to_status: _Optional[_Union[DeploymentStatus, str]] = ..., step_index: _Optional[int] = ..., traffic_percentage: _Optional[float] = ..., details_json: _Optional[str] = ...) -> None: ...

class CreateDeploymentRequest(_message.Message):
    __slots__ = ("model_name", "model_version", "strategy", "created_by", "baseline_metrics", "rollback_config", "steps", "step_duration_seconds", "analysis_interval_seconds", "preview", "mirror_percentage", "stable_version", "upstream", "override_reason", "switch_back_seconds", "targeting", "header_routes")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    BASELINE_METRICS_FIELD_NUMBER: _ClassVar[int]
    ROLLBACK_CONFIG_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    STEP_DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ANALYSIS_INTERVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    PREVIEW_FIELD_NUMBER: _ClassVar[int]
    MIRROR_PERCENTAGE_FIELD_NUMBER: _ClassVar[int]
    STABLE_VERSION_FIELD_NUMBER: _ClassVar[int]
    UPSTREAM_FIELD_NUMBER: _ClassVar[int]
    OVERRIDE_REASON_FIELD_NUMBER: _ClassVar[int]
    SWITCH_BACK_SECONDS_FIELD_NUMBER: _ClassVar[int]
    TARGETING_FIELD_NUMBER: _ClassVar[int]
    HEADER_ROUTES_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    model_version: str
    strategy: DeploymentStrategy
    created_by: str
    baseline_metrics: PerformanceMetrics
    rollback_config: RollbackConfig
    steps: _containers.RepeatedScalarFieldContainer[float]
    step_duration_seconds: float
    analysis_interval_seconds: float
    preview: PreviewMode
    mirror_percentage: float
    stable_version: str
    upstream: str
    override_reason: str
    switch_back_seconds: float
    targeting: _containers.RepeatedCompositeFieldContainer[_targeting_pb2.Condition]
    header_routes: _containers.RepeatedCompositeFieldContainer[_targeting_pb2.HeaderRoute]
    def __init__(self, model_name: _Optional[str] = ..., model_version: _Optional[str] = ..., strategy: _Optional[_Union[DeploymentStrategy, str]] = ..., created_by: _Optional[str] = ..., baseline_metrics: _Optional[_Union[PerformanceMetrics, _Mapping]] = ..., rollback_config: _Optional[_Union[RollbackConfig, _Mapping]] = ..., steps: _Optional[_Iterable[float]] = ..., step_duration_seconds: _Optional[float] = ..., analysis_interval_seconds: _Optional[float] = ..., preview: _Optional[_Union[PreviewMode, str]] = ..., mirror_percentage: _Optional[float] = ..., stable_version: _Optional[str] = ..., upstream: _Optional[str] = ..., override_reason: _Optional[str] = ..., switch_back_seconds: _Optional[float] = ..., targeting: _Optional[_Iterable[_Union[_targeting_pb2.Condition, _Mapping]]] = ..., header_routes: _Optional[_Iterable[_Union[_targeting_pb2.HeaderRoute, _Mapping]]] = ...) -> None: ...

class GetDeploymentRequest(_message.Message):
    __slots__ = ("deployment_id",)
    DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    deployment_id: str
    def __init__(self, deployment_id: _Optional[str] = ...) -> None: ...

class ListDeploymentsRequest(_message.Message):
    __slots__ = ("model_name", "active_only", "page_size", "page_token")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_ONLY_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    active_only: bool
    page_size: int
    page_token: str
    def __init__(self, model_name: _Optional[str] = ..., active_only: _Optional[bool] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListDeploymentsResponse(_message.Message):
    __slots__ = ("deployments", "next_page_token")
    DEPLOYMENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    deployments: _containers.RepeatedCompositeFieldContainer[Deployment]
    next_page_token: str
    def __init__(self, deployments: _Optional[_Iterable[_Union[Deployment, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListDeploymentEventsRequest(_message.Message):
    __slots__ = ("deployment_id", "page_size", "page_token")
    DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    deployment_id: str
    page_size: int
    page_token: str
    def __init__(self, deployment_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListDeploymentEventsResponse(_message.Message):
    __slots__ = ("events", "next_page_token")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[DeploymentEvent]
    next_page_token: str
    def __init__(self, events: _Optional[_Iterable[_Union[DeploymentEvent, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class WatchDeploymentRequest(_message.Message):
    __slots__ = ("deployment_id",)
    DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    deployment_id: str
    def __init__(self, deployment_id: _Optional[str] = ...) -> None: ...

class DeploymentUpdate(_message.Message):
    __slots__ = ("deployment", "events")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    deployment: Deployment
    events: _containers.RepeatedCompositeFieldContainer[DeploymentEvent]
    def __init__(self, deployment: _Optional[_Union[Deployment, _Mapping]] = ..., events: _Optional[_Iterable[_Union[DeploymentEvent, _Mapping]]] = ...) -> None: ...

class UpdateMetricsRequest(_message.Message):
    __slots__ = ("deployment_id", "metrics")
    DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    deployment_id: str
    metrics: PerformanceMetrics
    def __init__(self, deployment_id: _Optional[str] = ..., metrics: _Optional[_Union[PerformanceMetrics, _Mapping]] = ...) -> None: ...

class CheckHealthRequest(_message.Message):
    __slots__ = ("deployment_id", "request_count", "actor")
    DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_COUNT_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    deployment_id: str
    request_count: int
    actor: str
    def __init__(self, deployment_id: _Optional[str] = ..., request_count: _Optional[int] = ..., actor: _Optional[str] = ...) -> None: ...

class CheckHealthResponse(_message.Message):
    __slots__ = ("needs_rollback", "reasons", "check")
    NEEDS_ROLLBACK_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    CHECK_FIELD_NUMBER: _ClassVar[int]
    needs_rollback: bool
    reasons: _containers.RepeatedScalarFieldContainer[str]
    check: HealthCheck
    def __init__(self, needs_rollback: _Optional[bool] = ..., reasons: _Optional[_Iterable[str]] = ..., check: _Optional[_Union[HealthCheck, _Mapping]] = ...) -> None: ...

class DeploymentActionRequest(_message.Message):
    __slots__ = ("deployment_id", "actor", "reason", "full")
    DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    FULL_FIELD_NUMBER: _ClassVar[int]
    deployment_id: str
    actor: str
    reason: str
    full: bool
    def __init__(self, deployment_id: _Optional[str] = ..., actor: _Optional[str] = ..., reason: _Optional[str] = ..., full: _Optional[bool] = ...) -> None: ...

class ShadowDeployment(_message.Message):
    __slots__ = ("shadow_id", "primary_model", "shadow_model", "traffic_percentage", "status", "created_by", "created_at", "stopped_at", "upstream")
    SHADOW_ID_FIELD_NUMBER: _ClassVar[int]
    PRIMARY_MODEL_FIELD_NUMBER: _ClassVar[int]
    SHADOW_MODEL_FIELD_NUMBER: _ClassVar[int]
    TRAFFIC_PERCENTAGE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    STOPPED_AT_FIELD_NUMBER: _ClassVar[int]
    UPSTREAM_FIELD_NUMBER: _ClassVar[int]
    shadow_id: str
    primary_model: str
    shadow_model: str
    traffic_percentage: float
    status: ShadowStatus
    created_by: str
    created_at: _timestamp_pb2.Timestamp
    stopped_at: _timestamp_pb2.Timestamp
    upstream: str
    def __init__(self, shadow_id: _Optional[str] = ..., primary_model: _Optional[str] = ..., shadow_model: _Optional[str] = ..., traffic_percentage: _Optional[float] = ..., status: _Optional[_Union[ShadowStatus, str]] = ..., created_by: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., stopped_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., upstream: _Optional[str] = ...) -> None: ...

class ShadowDeployRequest(_message.Message):
    __slots__ = ("primary_model", "shadow_model", "traffic_percentage", "created_by", "upstream")
    PRIMARY_MODEL_FIELD_NUMBER: _ClassVar[int]
    SHADOW_MODEL_FIELD_NUMBER: _ClassVar[int]
    TRAFFIC_PERCENTAGE_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    UPSTREAM_FIELD_NUMBER: _ClassVar[int]
    primary_model: str
    shadow_model: str
    traffic_percentage: float
    created_by: str
    upstream: str
    def __init__(self, primary_model: _Optional[str] = ..., shadow_model: _Optional[str] = ..., traffic_percentage: _Optional[float] = ..., created_by: _Optional[str] = ..., upstream: _Optional[str] = ...) -> None: ...

class GetShadowRequest(_message.Message):
    __slots__ = ("shadow_id",)
    SHADOW_ID_FIELD_NUMBER: _ClassVar[int]
    shadow_id: str
    def __init__(self, shadow_id: _Optional[str] = ...) -> None: ...

class ListShadowsRequest(_message.Message):
    __slots__ = ("active_only", "page_size", "page_token")
    ACTIVE_ONLY_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    active_only: bool
    page_size: int
    page_token: str
    def __init__(self, active_only: _Optional[bool] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListShadowsResponse(_message.Message):
    __slots__ = ("shadows", "next_page_token")
    SHADOWS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    shadows: _containers.RepeatedCompositeFieldContainer[ShadowDeployment]
    next_page_token: str
    def __init__(self, shadows: _Optional[_Iterable[_Union[ShadowDeployment, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class RecordShadowComparisonRequest(_message.Message):
    __slots__ = ("shadow_id", "primary_result_json", "shadow_result_json", "primary_latency", "shadow_latency", "agreement", "shadow_error")
    SHADOW_ID_FIELD_NUMBER: _ClassVar[int]
    PRIMARY_RESULT_JSON_FIELD_NUMBER: _ClassVar[int]
    SHADOW_RESULT_JSON_FIELD_NUMBER: _ClassVar[int]
    PRIMARY_LATENCY_FIELD_NUMBER: _ClassVar[int]
    SHADOW_LATENCY_FIELD_NUMBER: _ClassVar[int]
    AGREEMENT_FIELD_NUMBER: _ClassVar[int]
    SHADOW_ERROR_FIELD_NUMBER: _ClassVar[int]
    shadow_id: str
    primary_result_json: str
    shadow_result_json: str
    primary_latency: float
    shadow_latency: float
    agreement: bool
    shadow_error: bool
    def __init__(self, shadow_id: _Optional[str] = ..., primary_result_json: _Optional[str] = ..., shadow_result_json: _Optional[str] = ..., primary_latency: _Optional[float] = ..., shadow_latency: _Optional[float] = ..., agreement: _Optional[bool] = ..., shadow_error: _Optional[bool] = ...) -> None: ...

class RecordShadowComparisonResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CompareShadowRequest(_message.Message):
    __slots__ = ("shadow_id", "min_agreement_rate", "max_latency_ratio")
    SHADOW_ID_FIELD_NUMBER: _ClassVar[int]
    MIN_AGREEMENT_RATE_FIELD_NUMBER: _ClassVar[int]
    MAX_LATENCY_RATIO_FIELD_NUMBER: _ClassVar[int]
    shadow_id: str
    min_agreement_rate: float
    max_latency_ratio: float
    def __init__(self, shadow_id: _Optional[str] = ..., min_agreement_rate: _Optional[float] = ..., max_latency_ratio: _Optional[float] = ...) -> None: ...

class ShadowComparison(_message.Message):
    __slots__ = ("result_json",)
    RESULT_JSON_FIELD_NUMBER: _ClassVar[int]
    result_json: str
    def __init__(self, result_json: _Optional[str] = ...) -> None: ...

class StopShadowRequest(_message.Message):
    __slots__ = ("shadow_id", "stopped_by")
    SHADOW_ID_FIELD_NUMBER: _ClassVar[int]
    STOPPED_BY_FIELD_NUMBER: _ClassVar[int]
    shadow_id: str
    stopped_by: str
    def __init__(self, shadow_id: _Optional[str] = ..., stopped_by: _Optional[str] = ...) -> None: ...
