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

class TrafficSplitStrategy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRAFFIC_SPLIT_STRATEGY_UNSPECIFIED: _ClassVar[TrafficSplitStrategy]
    TRAFFIC_SPLIT_STRATEGY_HASH_BASED: _ClassVar[TrafficSplitStrategy]
    TRAFFIC_SPLIT_STRATEGY_RANDOM: _ClassVar[TrafficSplitStrategy]
    TRAFFIC_SPLIT_STRATEGY_ROUND_ROBIN: _ClassVar[TrafficSplitStrategy]
    TRAFFIC_SPLIT_STRATEGY_MULTI_ARMED_BANDIT: _ClassVar[TrafficSplitStrategy]

class BanditMetricKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BANDIT_METRIC_KIND_UNSPECIFIED: _ClassVar[BanditMetricKind]
    BANDIT_METRIC_KIND_CONVERSION: _ClassVar[BanditMetricKind]
    BANDIT_METRIC_KIND_CONTINUOUS: _ClassVar[BanditMetricKind]

class TestStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TEST_STATUS_UNSPECIFIED: _ClassVar[TestStatus]
    TEST_STATUS_DRAFT: _ClassVar[TestStatus]
    TEST_STATUS_RUNNING: _ClassVar[TestStatus]
    TEST_STATUS_PAUSED: _ClassVar[TestStatus]
    TEST_STATUS_STOPPED: _ClassVar[TestStatus]
    TEST_STATUS_CONCLUDED: _ClassVar[TestStatus]

class DecisionRule(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DECISION_RULE_UNSPECIFIED: _ClassVar[DecisionRule]
    DECISION_RULE_FIXED_HORIZON: _ClassVar[DecisionRule]
    DECISION_RULE_SEQUENTIAL: _ClassVar[DecisionRule]

class Recommendation(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RECOMMENDATION_UNSPECIFIED: _ClassVar[Recommendation]
    RECOMMENDATION_SHIP_TREATMENT: _ClassVar[Recommendation]
    RECOMMENDATION_KEEP_CONTROL: _ClassVar[Recommendation]
    RECOMMENDATION_KEEP_RUNNING: _ClassVar[Recommendation]
    RECOMMENDATION_STOP: _ClassVar[Recommendation]

class MultipleTestingMethod(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MULTIPLE_TESTING_METHOD_UNSPECIFIED: _ClassVar[MultipleTestingMethod]
    MULTIPLE_TESTING_METHOD_HOLM: _ClassVar[MultipleTestingMethod]
    MULTIPLE_TESTING_METHOD_BENJAMINI_HOCHBERG: _ClassVar[MultipleTestingMethod]

class GuardrailDirection(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    GUARDRAIL_DIRECTION_UNSPECIFIED: _ClassVar[GuardrailDirection]
    GUARDRAIL_DIRECTION_INCREASE: _ClassVar[GuardrailDirection]
    GUARDRAIL_DIRECTION_DECREASE: _ClassVar[GuardrailDirection]
TRAFFIC_SPLIT_STRATEGY_UNSPECIFIED: TrafficSplitStrategy
TRAFFIC_SPLIT_STRATEGY_HASH_BASED: TrafficSplitStrategy
TRAFFIC_SPLIT_STRATEGY_RANDOM: TrafficSplitStrategy
TRAFFIC_SPLIT_STRATEGY_ROUND_ROBIN: TrafficSplitStrategy
TRAFFIC_SPLIT_STRATEGY_MULTI_ARMED_BANDIT: TrafficSplitStrategy
BANDIT_METRIC_KIND_UNSPECIFIED: BanditMetricKind
BANDIT_METRIC_KIND_CONVERSION: BanditMetricKind
BANDIT_METRIC_KIND_CONTINUOUS: BanditMetricKind
TEST_STATUS_UNSPECIFIED: TestStatus
TEST_STATUS_DRAFT: TestStatus
TEST_STATUS_RUNNING: TestStatus
TEST_STATUS_PAUSED: TestStatus
TEST_STATUS_STOPPED: TestStatus
TEST_STATUS_CONCLUDED: TestStatus
DECISION_RULE_UNSPECIFIED: DecisionRule
DECISION_RULE_FIXED_HORIZON: DecisionRule
DECISION_RULE_SEQUENTIAL: DecisionRule
RECOMMENDATION_UNSPECIFIED: Recommendation
RECOMMENDATION_SHIP_TREATMENT: Recommendation
RECOMMENDATION_KEEP_CONTROL: Recommendation
RECOMMENDATION_KEEP_RUNNING: Recommendation
RECOMMENDATION_STOP: Recommendation
MULTIPLE_TESTING_METHOD_UNSPECIFIED: MultipleTestingMethod
MULTIPLE_TESTING_METHOD_HOLM: MultipleTestingMethod
MULTIPLE_TESTING_METHOD_BENJAMINI_HOCHBERG: MultipleTestingMethod
GUARDRAIL_DIRECTION_UNSPECIFIED: GuardrailDirection
GUARDRAIL_DIRECTION_INCREASE: GuardrailDirection
GUARDRAIL_DIRECTION_DECREASE: GuardrailDirection

class BanditConfig(_message.Message):
    __slots__ = ("interval_seconds", "burn_in_units", "burn_in_seconds", "min_share", "metric", "metric_kind", "seed", "minimize")
    INTERVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    BURN_IN_UNITS_FIELD_NUMBER: _ClassVar[int]
    BURN_IN_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MIN_SHARE_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    METRIC_KIND_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    MINIMIZE_FIELD_NUMBER: _ClassVar[int]
    interval_seconds: float
    burn_in_units: int
    burn_in_seconds: float
    min_share: float
    metric: str
    metric_kind: BanditMetricKind
    seed: int
    minimize: bool
    def __init__(self, interval_seconds: _Optional[float] = ..., burn_in_units: _Optional[int] = ..., burn_in_seconds: _Optional[float] = ..., min_share: _Optional[float] = ..., metric: _Optional[str] = ..., metric_kind: _Optional[_Union[BanditMetricKind, str]] = ..., seed: _Optional[int] = ..., minimize: _Optional[bool] = ...) -> None: ...

class BanditWeights(_message.Message):
    __slots__ = ("sequence", "at", "weights", "probability_best", "observations", "posterior_means")
    class WeightsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class ProbabilityBestEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class ObservationsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class PosteriorMeansEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_BEST_FIELD_NUMBER: _ClassVar[int]
    OBSERVATIONS_FIELD_NUMBER: _ClassVar[int]
    POSTERIOR_MEANS_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    at: _timestamp_pb2.Timestamp
    weights: _containers.ScalarMap[str, float]
    probability_best: _containers.ScalarMap[str, float]
    observations: _containers.ScalarMap[str, int]
    posterior_means: _containers.ScalarMap[str, float]
    def __init__(self, sequence: _Optional[int] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., weights: _Optional[_Mapping[str, float]] = ..., probability_best: _Optional[_Mapping[str, float]] = ..., observations: _Optional[_Mapping[str, int]] = ..., posterior_means: _Optional[_Mapping[str, float]] = ...) -> None: ...

class Variant(_message.Message):
    __slots__ = ("name", "model_ref", "weight")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_REF_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    name: str
    model_ref: str
    weight: float
    def __init__(self, name: _Optional[str] = ..., model_ref: _Optional[str] = ..., weight: _Optional[float] = ...) -> None: ...

class SplitChange(_message.Message):
    __slots__ = ("at", "actor", "weights", "explicit", "reason")
    class WeightsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    AT_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    EXPLICIT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    at: _timestamp_pb2.Timestamp
    actor: str
    weights: _containers.ScalarMap[str, float]
    explicit: bool
    reason: str
    def __init__(self, at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., actor: _Optional[str] = ..., weights: _Optional[_Mapping[str, float]] = ..., explicit: _Optional[bool] = ..., reason: _Optional[str] = ...) -> None: ...

class AnalysisSettings(_message.Message):
    __slots__ = ("confidence_level", "minimum_detectable_effect", "power", "decision_rule", "sequential_tau", "sequential_tuning", "srm_threshold", "multiple_testing", "prior_mean", "prior_sd")
    CONFIDENCE_LEVEL_FIELD_NUMBER: _ClassVar[int]
    MINIMUM_DETECTABLE_EFFECT_FIELD_NUMBER: _ClassVar[int]
    POWER_FIELD_NUMBER: _ClassVar[int]
    DECISION_RULE_FIELD_NUMBER: _ClassVar[int]
    SEQUENTIAL_TAU_FIELD_NUMBER: _ClassVar[int]
    SEQUENTIAL_TUNING_FIELD_NUMBER: _ClassVar[int]
    SRM_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    MULTIPLE_TESTING_FIELD_NUMBER: _ClassVar[int]
    PRIOR_MEAN_FIELD_NUMBER: _ClassVar[int]
    PRIOR_SD_FIELD_NUMBER: _ClassVar[int]
    confidence_level: float
    minimum_detectable_effect: float
    power: float
    decision_rule: DecisionRule
    sequential_tau: float
    sequential_tuning: float
    srm_threshold: float
    multiple_testing: MultipleTestingMethod
    prior_mean: float
    prior_sd: float
    def __init__(self, confidence_level: _Optional[float] = ..., minimum_detectable_effect: _Optional[float] = ..., power: _Optional[float] = ..., decision_rule: _Optional[_Union[DecisionRule, str]] = ..., sequential_tau: _Optional[float] = ..., sequential_tuning: _Optional[float] = ..., srm_threshold: _Optional[float] = ..., multiple_testing: _Optional[_Union[MultipleTestingMethod, str]] = ..., prior_mean: _Optional[float] = ..., prior_sd: _Optional[float] = ...) -> None: ...

class ABTest(_message.Message):
    __slots__ = ("test_id", "name", "description", "status", "strategy", "variants", "control", "model_name", "traffic_split", "created_by", "created_at", "started_at", "ended_at", "winner", "conclusion", "settings", "forced_variants", "split_history", "running_seconds", "guardrails", "bandit", "layer", "layer_share", "range", "targeting")
    class ForcedVariantsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TEST_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    VARIANTS_FIELD_NUMBER: _ClassVar[int]
    CONTROL_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    TRAFFIC_SPLIT_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    ENDED_AT_FIELD_NUMBER: _ClassVar[int]
    WINNER_FIELD_NUMBER: _ClassVar[int]
    CONCLUSION_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    FORCED_VARIANTS_FIELD_NUMBER: _ClassVar[int]
    SPLIT_HISTORY_FIELD_NUMBER: _ClassVar[int]
    RUNNING_SECONDS_FIELD_NUMBER: _ClassVar[int]
    GUARDRAILS_FIELD_NUMBER: _ClassVar[int]
    BANDIT_FIELD_NUMBER: _ClassVar[int]
    LAYER_FIELD_NUMBER: _ClassVar[int]
    LAYER_SHARE_FIELD_NUMBER: _ClassVar[int]
    RANGE_FIELD_NUMBER: _ClassVar[int]
    TARGETING_FIELD_NUMBER: _ClassVar[int]
    test_id: str
    name: str
    description: str
    status: TestStatus
    strategy: TrafficSplitStrategy
    variants: _containers.RepeatedCompositeFieldContainer[Variant]
    control: str
    model_name: str
    traffic_split: float
    created_by: str
    created_at: _timestamp_pb2.Timestamp
    started_at: _timestamp_pb2.Timestamp
    ended_at: _timestamp_pb2.Timestamp
    winner: str
    conclusion: str
    settings: AnalysisSettings
    forced_variants: _containers.ScalarMap[str, str]
    split_history: _containers.RepeatedCompositeFieldContainer[SplitChange]
    running_seconds: float
    guardrails: _containers.RepeatedCompositeFieldContainer[Guardrail]
    bandit: BanditConfig
    layer: str
    layer_share: float
    range: LayerRange
    targeting: _containers.RepeatedCompositeFieldContainer[_targeting_pb2.Condition]
    def __init__(self, test_id: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., status: _Optional[_Union[TestStatus, str]] = ..., strategy: _Optional[_Union[TrafficSplitStrategy, str]] = ..., variants: _Optional[_Iterable[_Union[Variant, _Mapping]]] = ..., control: _Optional[str] = ..., model_name: _Optional[str] = ..., traffic_split: _Optional[float] = ..., created_by: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ended_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., winner: _Optional[str] = ..., conclusion: _Optional[str] = ..., settings: _Optional[_Union[AnalysisSettings, _Mapping]] = ..., forced_variants: _Optional[_Mapping[str, str]] = ..., split_history: _Optional[_Iterable[_Union[SplitChange, _Mapping]]] = ..., running_seconds: _Optional[float] = ..., guardrails: _Optional[_Iterable[_Union[Guardrail, _Mapping]]] = ..., bandit: _Optional[_Union[BanditConfig, _Mapping]] = ..., layer: _Optional[str] = ..., layer_share: _Optional[float] = ..., range: _Optional[_Union[LayerRange, _Mapping]] = ..., targeting: _Optional[_Iterable[_Union[_targeting_pb2.Condition, _Mapping]]] = ...) -> None: ...

class LayerRange(_message.Message):
    __slots__ = ("start", "end")
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    start: float
    end: float
    def __init__(self, start: _Optional[float] = ..., end: _Optional[float] = ...) -> None: ...

class CreateTestRequest(_message.Message):
    __slots__ = ("name", "description", "control_variant", "treatment_variant", "traffic_split", "strategy", "created_by", "variants", "control", "settings", "model_name", "guardrails", "bandit", "layer", "layer_share", "range", "targeting")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CONTROL_VARIANT_FIELD_NUMBER: _ClassVar[int]
    TREATMENT_VARIANT_FIELD_NUMBER: _ClassVar[int]
    TRAFFIC_SPLIT_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    VARIANTS_FIELD_NUMBER: _ClassVar[int]
    CONTROL_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    GUARDRAILS_FIELD_NUMBER: _ClassVar[int]
    BANDIT_FIELD_NUMBER: _ClassVar[int]
    LAYER_FIELD_NUMBER: _ClassVar[int]
    LAYER_SHARE_FIELD_NUMBER: _ClassVar[int]
    RANGE_FIELD_NUMBER: _ClassVar[int]
    TARGETING_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    control_variant: str
    treatment_variant: str
    traffic_split: float
    strategy: TrafficSplitStrategy
    created_by: str
    variants: _containers.RepeatedCompositeFieldContainer[Variant]
    control: str
    settings: AnalysisSettings
    model_name: str
    guardrails: _containers.RepeatedCompositeFieldContainer[Guardrail]
    bandit: BanditConfig
    layer: str
    layer_share: float
    range: LayerRange
    targeting: _containers.RepeatedCompositeFieldContainer[_targeting_pb2.Condition]
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., control_variant: _Optional[str] = ..., treatment_variant: _Optional[str] = ..., traffic_split: _Optional[float] = ..., strategy: _Optional[_Union[TrafficSplitStrategy, str]] = ..., created_by: _Optional[str] = ..., variants: _Optional[_Iterable[_Union[Variant, _Mapping]]] = ..., control: _Optional[str] = ..., settings: _Optional[_Union[AnalysisSettings, _Mapping]] = ..., model_name: _Optional[str] = ..., guardrails: _Optional[_Iterable[_Union[Guardrail, _Mapping]]] = ..., bandit: _Optional[_Union[BanditConfig, _Mapping]] = ..., layer: _Optional[str] = ..., layer_share: _Optional[float] = ..., range: _Optional[_Union[LayerRange, _Mapping]] = ..., targeting: _Optional[_Iterable[_Union[_targeting_pb2.Condition, _Mapping]]] = ...) -> None: ...

class Guardrail(_message.Message):
    __slots__ = ("metric", "direction", "tolerance")
    METRIC_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    TOLERANCE_FIELD_NUMBER: _ClassVar[int]
    metric: str
    direction: GuardrailDirection
    tolerance: float
    def __init__(self, metric: _Optional[str] = ..., direction: _Optional[_Union[GuardrailDirection, str]] = ..., tolerance: _Optional[float] = ...) -> None: ...

class TestRef(_message.Message):
    __slots__ = ("test_id", "reason")
    TEST_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    test_id: str
    reason: str
    def __init__(self, test_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ListTestsRequest(_message.Message):
    __slots__ = ("status", "page_size", "page_token")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    status: TestStatus
    page_size: int
    page_token: str
    def __init__(self, status: _Optional[_Union[TestStatus, str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListTestsResponse(_message.Message):
    __slots__ = ("tests", "next_page_token")
    TESTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    tests: _containers.RepeatedCompositeFieldContainer[ABTest]
    next_page_token: str
    def __init__(self, tests: _Optional[_Iterable[_Union[ABTest, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ConcludeTestRequest(_message.Message):
    __slots__ = ("test_id", "winner", "reason")
    TEST_ID_FIELD_NUMBER: _ClassVar[int]
    WINNER_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    test_id: str
    winner: str
    reason: str
    def __init__(self, test_id: _Optional[str] = ..., winner: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class UpdateSplitRequest(_message.Message):
    __slots__ = ("test_id", "weights", "explicit", "reason")
    class WeightsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    TEST_ID_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    EXPLICIT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    test_id: str
    weights: _containers.ScalarMap[str, float]
    explicit: bool
    reason: str
    def __init__(self, test_id: _Optional[str] = ..., weights: _Optional[_Mapping[str, float]] = ..., explicit: _Optional[bool] = ..., reason: _Optional[str] = ...) -> None: ...

class SetForcedVariantRequest(_message.Message):
    __slots__ = ("test_id", "unit_id", "variant")
    TEST_ID_FIELD_NUMBER: _ClassVar[int]
    UNIT_ID_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    test_id: str
    unit_id: str
    variant: str
    def __init__(self, test_id: _Optional[str] = ..., unit_id: _Optional[str] = ..., variant: _Optional[str] = ...) -> None: ...

class GetVariantRequest(_message.Message):
    __slots__ = ("test_id", "unit_id")
    TEST_ID_FIELD_NUMBER: _ClassVar[int]
    UNIT_ID_FIELD_NUMBER: _ClassVar[int]
    test_id: str
    unit_id: str
    def __init__(self, test_id: _Optional[str] = ..., unit_id: _Optional[str] = ...) -> None: ...

class GetVariantResponse(_message.Message):
    __slots__ = ("variant", "model_ref", "forced")
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    MODEL_REF_FIELD_NUMBER: _ClassVar[int]
    FORCED_FIELD_NUMBER: _ClassVar[int]
    variant: str
    model_ref: str
    forced: bool
    def __init__(self, variant: _Optional[str] = ..., model_ref: _Optional[str] = ..., forced: _Optional[bool] = ...) -> None: ...

class RequestRecord(_message.Message):
    __slots__ = ("variant", "unit_id", "success", "latency", "error", "custom_metrics", "timestamp", "status_code")
    class CustomMetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    UNIT_ID_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CUSTOM_METRICS_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    STATUS_CODE_FIELD_NUMBER: _ClassVar[int]
    variant: str
    unit_id: str
    success: bool
    latency: float
    error: bool
    custom_metrics: _containers.ScalarMap[str, float]
    timestamp: _timestamp_pb2.Timestamp
    status_code: str
    def __init__(self, variant: _Optional[str] = ..., unit_id: _Optional[str] = ..., success: _Optional[bool] = ..., latency: _Optional[float] = ..., error: _Optional[bool] = ..., custom_metrics: _Optional[_Mapping[str, float]] = ..., timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., status_code: _Optional[str] = ...) -> None: ...

class RecordRequestsRequest(_message.Message):
    __slots__ = ("test_id", "records")
    TEST_ID_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    test_id: str
    records: _containers.RepeatedCompositeFieldContainer[RequestRecord]
    def __init__(self, test_id: _Optional[str] = ..., records: _Optional[_Iterable[_Union[RequestRecord, _Mapping]]] = ...) -> None: ...

class RecordRequestsResponse(_message.Message):
    __slots__ = ("recorded",)
    RECORDED_FIELD_NUMBER: _ClassVar[int]
    recorded: int
    def __init__(self, recorded: _Optional[int] = ...) -> None: ...

class RecordOutcomeRequest(_message.Message):
    __slots__ = ("test_id", "unit_id", "success", "custom_metrics", "variant", "timestamp")
    class CustomMetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    TEST_ID_FIELD_NUMBER: _ClassVar[int]
    UNIT_ID_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    CUSTOM_METRICS_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    test_id: str
    unit_id: str
    success: bool
    custom_metrics: _containers.ScalarMap[str, float]
    variant: str
    timestamp: _timestamp_pb2.Timestamp
    def __init__(self, test_id: _Optional[str] = ..., unit_id: _Optional[str] = ..., success: _Optional[bool] = ..., custom_metrics: _Optional[_Mapping[str, float]] = ..., variant: _Optional[str] = ..., timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RecordOutcomeResponse(_message.Message):
    __slots__ = ("variant",)
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    variant: str
    def __init__(self, variant: _Optional[str] = ...) -> None: ...

class SetCovariatesRequest(_message.Message):
    __slots__ = ("test_id", "covariates")
    class CovariatesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    TEST_ID_FIELD_NUMBER: _ClassVar[int]
    COVARIATES_FIELD_NUMBER: _ClassVar[int]
    test_id: str
    covariates: _containers.ScalarMap[str, float]
    def __init__(self, test_id: _Optional[str] = ..., covariates: _Optional[_Mapping[str, float]] = ...) -> None: ...

class SetCovariatesResponse(_message.Message):
    __slots__ = ("stored",)
    STORED_FIELD_NUMBER: _ClassVar[int]
    stored: int
    def __init__(self, stored: _Optional[int] = ...) -> None: ...

class AnalyzeTestRequest(_message.Message):
    __slots__ = ("test_id", "confidence_level", "since", "until")
    TEST_ID_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_LEVEL_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    test_id: str
    confidence_level: float
    since: _timestamp_pb2.Timestamp
    until: _timestamp_pb2.Timestamp
    def __init__(self, test_id: _Optional[str] = ..., confidence_level: _Optional[float] = ..., since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class AnalyzeTestResponse(_message.Message):
    __slots__ = ("analysis_json", "statistically_significant", "p_value", "recommendation", "probability_best", "expected_regret", "bandit_history")
    class ProbabilityBestEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    ANALYSIS_JSON_FIELD_NUMBER: _ClassVar[int]
    STATISTICALLY_SIGNIFICANT_FIELD_NUMBER: _ClassVar[int]
    P_VALUE_FIELD_NUMBER: _ClassVar[int]
    RECOMMENDATION_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_BEST_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_REGRET_FIELD_NUMBER: _ClassVar[int]
    BANDIT_HISTORY_FIELD_NUMBER: _ClassVar[int]
    analysis_json: str
    statistically_significant: bool
    p_value: float
    recommendation: Recommendation
    probability_best: _containers.ScalarMap[str, float]
    expected_regret: float
    bandit_history: _containers.RepeatedCompositeFieldContainer[BanditWeights]
    def __init__(self, analysis_json: _Optional[str] = ..., statistically_significant: _Optional[bool] = ..., p_value: _Optional[float] = ..., recommendation: _Optional[_Union[Recommendation, str]] = ..., probability_best: _Optional[_Mapping[str, float]] = ..., expected_regret: _Optional[float] = ..., bandit_history: _Optional[_Iterable[_Union[BanditWeights, _Mapping]]] = ...) -> None: ...
