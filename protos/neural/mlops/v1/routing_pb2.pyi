from neural.mlops.v1 import targeting_pb2 as _targeting_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AssignmentStrategy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ASSIGNMENT_STRATEGY_UNSPECIFIED: _ClassVar[AssignmentStrategy]
    ASSIGNMENT_STRATEGY_HASH: _ClassVar[AssignmentStrategy]
    ASSIGNMENT_STRATEGY_RANDOM: _ClassVar[AssignmentStrategy]
    ASSIGNMENT_STRATEGY_ROUND_ROBIN: _ClassVar[AssignmentStrategy]
    ASSIGNMENT_STRATEGY_BANDIT: _ClassVar[AssignmentStrategy]

class RouteKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROUTE_KIND_UNSPECIFIED: _ClassVar[RouteKind]
    ROUTE_KIND_EXPERIMENT: _ClassVar[RouteKind]
    ROUTE_KIND_DEPLOYMENT: _ClassVar[RouteKind]
    ROUTE_KIND_SHADOW: _ClassVar[RouteKind]
ASSIGNMENT_STRATEGY_UNSPECIFIED: AssignmentStrategy
ASSIGNMENT_STRATEGY_HASH: AssignmentStrategy
ASSIGNMENT_STRATEGY_RANDOM: AssignmentStrategy
ASSIGNMENT_STRATEGY_ROUND_ROBIN: AssignmentStrategy
ASSIGNMENT_STRATEGY_BANDIT: AssignmentStrategy
ROUTE_KIND_UNSPECIFIED: RouteKind
ROUTE_KIND_EXPERIMENT: RouteKind
ROUTE_KIND_DEPLOYMENT: RouteKind
ROUTE_KIND_SHADOW: RouteKind

class ListSidecarsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class SidecarStatus(_message.Message):
    __slots__ = ("sidecar_id", "address", "connected", "connected_us", "table_version", "last_report_us")
    SIDECAR_ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    CONNECTED_FIELD_NUMBER: _ClassVar[int]
    CONNECTED_US_FIELD_NUMBER: _ClassVar[int]
    TABLE_VERSION_FIELD_NUMBER: _ClassVar[int]
    LAST_REPORT_US_FIELD_NUMBER: _ClassVar[int]
    sidecar_id: str
    address: str
    connected: bool
    connected_us: int
    table_version: int
    last_report_us: int
    def __init__(self, sidecar_id: _Optional[str] = ..., address: _Optional[str] = ..., connected: _Optional[bool] = ..., connected_us: _Optional[int] = ..., table_version: _Optional[int] = ..., last_report_us: _Optional[int] = ...) -> None: ...

class ListSidecarsResponse(_message.Message):
    __slots__ = ("sidecars", "next_page_token")
    SIDECARS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    sidecars: _containers.RepeatedCompositeFieldContainer[SidecarStatus]
    next_page_token: str
    def __init__(self, sidecars: _Optional[_Iterable[_Union[SidecarStatus, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetTrafficSeriesRequest(_message.Message):
    __slots__ = ("route_id", "shadow", "since_us", "until_us", "page_size", "page_token", "baseline", "step_us")
    ROUTE_ID_FIELD_NUMBER: _ClassVar[int]
    SHADOW_FIELD_NUMBER: _ClassVar[int]
    SINCE_US_FIELD_NUMBER: _ClassVar[int]
    UNTIL_US_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    BASELINE_FIELD_NUMBER: _ClassVar[int]
    STEP_US_FIELD_NUMBER: _ClassVar[int]
    route_id: str
    shadow: bool
    since_us: int
    until_us: int
    page_size: int
    page_token: str
    baseline: str
    step_us: int
    def __init__(self, route_id: _Optional[str] = ..., shadow: _Optional[bool] = ..., since_us: _Optional[int] = ..., until_us: _Optional[int] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., baseline: _Optional[str] = ..., step_us: _Optional[int] = ...) -> None: ...

class LatencyBucket(_message.Message):
    __slots__ = ("upper_seconds", "count")
    UPPER_SECONDS_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    upper_seconds: float
    count: int
    def __init__(self, upper_seconds: _Optional[float] = ..., count: _Optional[int] = ...) -> None: ...

class VariantPoint(_message.Message):
    __slots__ = ("variant", "count", "errors", "successes", "latency_mean_seconds", "latency_p50_seconds", "latency_p95_seconds", "latency_p99_seconds", "custom_means", "cumulative_count", "cumulative_successes", "cumulative_p_value", "sequential_p_value", "sequential_ci_low", "sequential_ci_high")
    class CustomMeansEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    SUCCESSES_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MEAN_SECONDS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_P50_SECONDS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_P95_SECONDS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_P99_SECONDS_FIELD_NUMBER: _ClassVar[int]
    CUSTOM_MEANS_FIELD_NUMBER: _ClassVar[int]
    CUMULATIVE_COUNT_FIELD_NUMBER: _ClassVar[int]
    CUMULATIVE_SUCCESSES_FIELD_NUMBER: _ClassVar[int]
    CUMULATIVE_P_VALUE_FIELD_NUMBER: _ClassVar[int]
    SEQUENTIAL_P_VALUE_FIELD_NUMBER: _ClassVar[int]
    SEQUENTIAL_CI_LOW_FIELD_NUMBER: _ClassVar[int]
    SEQUENTIAL_CI_HIGH_FIELD_NUMBER: _ClassVar[int]
    variant: str
    count: int
    errors: int
    successes: int
    latency_mean_seconds: float
    latency_p50_seconds: float
    latency_p95_seconds: float
    latency_p99_seconds: float
    custom_means: _containers.ScalarMap[str, float]
    cumulative_count: int
    cumulative_successes: int
    cumulative_p_value: float
    sequential_p_value: float
    sequential_ci_low: float
    sequential_ci_high: float
    def __init__(self, variant: _Optional[str] = ..., count: _Optional[int] = ..., errors: _Optional[int] = ..., successes: _Optional[int] = ..., latency_mean_seconds: _Optional[float] = ..., latency_p50_seconds: _Optional[float] = ..., latency_p95_seconds: _Optional[float] = ..., latency_p99_seconds: _Optional[float] = ..., custom_means: _Optional[_Mapping[str, float]] = ..., cumulative_count: _Optional[int] = ..., cumulative_successes: _Optional[int] = ..., cumulative_p_value: _Optional[float] = ..., sequential_p_value: _Optional[float] = ..., sequential_ci_low: _Optional[float] = ..., sequential_ci_high: _Optional[float] = ...) -> None: ...

class ShadowPoint(_message.Message):
    __slots__ = ("compared", "agreements", "shadow_errors", "dropped", "primary_latency", "shadow_latency", "disagreements_json")
    COMPARED_FIELD_NUMBER: _ClassVar[int]
    AGREEMENTS_FIELD_NUMBER: _ClassVar[int]
    SHADOW_ERRORS_FIELD_NUMBER: _ClassVar[int]
    DROPPED_FIELD_NUMBER: _ClassVar[int]
    PRIMARY_LATENCY_FIELD_NUMBER: _ClassVar[int]
    SHADOW_LATENCY_FIELD_NUMBER: _ClassVar[int]
    DISAGREEMENTS_JSON_FIELD_NUMBER: _ClassVar[int]
    compared: int
    agreements: int
    shadow_errors: int
    dropped: int
    primary_latency: _containers.RepeatedCompositeFieldContainer[LatencyBucket]
    shadow_latency: _containers.RepeatedCompositeFieldContainer[LatencyBucket]
    disagreements_json: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, compared: _Optional[int] = ..., agreements: _Optional[int] = ..., shadow_errors: _Optional[int] = ..., dropped: _Optional[int] = ..., primary_latency: _Optional[_Iterable[_Union[LatencyBucket, _Mapping]]] = ..., shadow_latency: _Optional[_Iterable[_Union[LatencyBucket, _Mapping]]] = ..., disagreements_json: _Optional[_Iterable[str]] = ...) -> None: ...

class TrafficWindowPoint(_message.Message):
    __slots__ = ("window_start_us", "variants", "shadow")
    WINDOW_START_US_FIELD_NUMBER: _ClassVar[int]
    VARIANTS_FIELD_NUMBER: _ClassVar[int]
    SHADOW_FIELD_NUMBER: _ClassVar[int]
    window_start_us: int
    variants: _containers.RepeatedCompositeFieldContainer[VariantPoint]
    shadow: ShadowPoint
    def __init__(self, window_start_us: _Optional[int] = ..., variants: _Optional[_Iterable[_Union[VariantPoint, _Mapping]]] = ..., shadow: _Optional[_Union[ShadowPoint, _Mapping]] = ...) -> None: ...

class TrafficSeries(_message.Message):
    __slots__ = ("route_id", "windows", "next_page_token")
    ROUTE_ID_FIELD_NUMBER: _ClassVar[int]
    WINDOWS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    route_id: str
    windows: _containers.RepeatedCompositeFieldContainer[TrafficWindowPoint]
    next_page_token: str
    def __init__(self, route_id: _Optional[str] = ..., windows: _Optional[_Iterable[_Union[TrafficWindowPoint, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class WatchRoutesRequest(_message.Message):
    __slots__ = ("sidecar_id", "known_version")
    SIDECAR_ID_FIELD_NUMBER: _ClassVar[int]
    KNOWN_VERSION_FIELD_NUMBER: _ClassVar[int]
    sidecar_id: str
    known_version: int
    def __init__(self, sidecar_id: _Optional[str] = ..., known_version: _Optional[int] = ...) -> None: ...

class GetRoutingTableRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RoutingTable(_message.Message):
    __slots__ = ("version", "generated_us", "routes")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    GENERATED_US_FIELD_NUMBER: _ClassVar[int]
    ROUTES_FIELD_NUMBER: _ClassVar[int]
    version: int
    generated_us: int
    routes: _containers.RepeatedCompositeFieldContainer[ModelRoute]
    def __init__(self, version: _Optional[int] = ..., generated_us: _Optional[int] = ..., routes: _Optional[_Iterable[_Union[ModelRoute, _Mapping]]] = ...) -> None: ...

class RouteVariant(_message.Message):
    __slots__ = ("name", "weight", "model_name", "model_version", "upstream")
    NAME_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    UPSTREAM_FIELD_NUMBER: _ClassVar[int]
    name: str
    weight: float
    model_name: str
    model_version: str
    upstream: str
    def __init__(self, name: _Optional[str] = ..., weight: _Optional[float] = ..., model_name: _Optional[str] = ..., model_version: _Optional[str] = ..., upstream: _Optional[str] = ...) -> None: ...

class ShadowTarget(_message.Message):
    __slots__ = ("shadow_id", "model_name", "model_version", "upstream", "percentage")
    SHADOW_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    UPSTREAM_FIELD_NUMBER: _ClassVar[int]
    PERCENTAGE_FIELD_NUMBER: _ClassVar[int]
    shadow_id: str
    model_name: str
    model_version: str
    upstream: str
    percentage: float
    def __init__(self, shadow_id: _Optional[str] = ..., model_name: _Optional[str] = ..., model_version: _Optional[str] = ..., upstream: _Optional[str] = ..., percentage: _Optional[float] = ...) -> None: ...

class ForcedVariant(_message.Message):
    __slots__ = ("unit_id", "variant")
    UNIT_ID_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    unit_id: str
    variant: str
    def __init__(self, unit_id: _Optional[str] = ..., variant: _Optional[str] = ...) -> None: ...

class ModelRoute(_message.Message):
    __slots__ = ("model_name", "route_id", "kind", "strategy", "variants", "shadows", "forced_variants", "layer_id", "range_start", "range_end", "targeting", "header_routes")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    ROUTE_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    VARIANTS_FIELD_NUMBER: _ClassVar[int]
    SHADOWS_FIELD_NUMBER: _ClassVar[int]
    FORCED_VARIANTS_FIELD_NUMBER: _ClassVar[int]
    LAYER_ID_FIELD_NUMBER: _ClassVar[int]
    RANGE_START_FIELD_NUMBER: _ClassVar[int]
    RANGE_END_FIELD_NUMBER: _ClassVar[int]
    TARGETING_FIELD_NUMBER: _ClassVar[int]
    HEADER_ROUTES_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    route_id: str
    kind: RouteKind
    strategy: AssignmentStrategy
    variants: _containers.RepeatedCompositeFieldContainer[RouteVariant]
    shadows: _containers.RepeatedCompositeFieldContainer[ShadowTarget]
    forced_variants: _containers.RepeatedCompositeFieldContainer[ForcedVariant]
    layer_id: str
    range_start: float
    range_end: float
    targeting: _containers.RepeatedCompositeFieldContainer[_targeting_pb2.Condition]
    header_routes: _containers.RepeatedCompositeFieldContainer[_targeting_pb2.HeaderRoute]
    def __init__(self, model_name: _Optional[str] = ..., route_id: _Optional[str] = ..., kind: _Optional[_Union[RouteKind, str]] = ..., strategy: _Optional[_Union[AssignmentStrategy, str]] = ..., variants: _Optional[_Iterable[_Union[RouteVariant, _Mapping]]] = ..., shadows: _Optional[_Iterable[_Union[ShadowTarget, _Mapping]]] = ..., forced_variants: _Optional[_Iterable[_Union[ForcedVariant, _Mapping]]] = ..., layer_id: _Optional[str] = ..., range_start: _Optional[float] = ..., range_end: _Optional[float] = ..., targeting: _Optional[_Iterable[_Union[_targeting_pb2.Condition, _Mapping]]] = ..., header_routes: _Optional[_Iterable[_Union[_targeting_pb2.HeaderRoute, _Mapping]]] = ...) -> None: ...

class Moments(_message.Message):
    __slots__ = ("n", "sum", "sum_squares")
    N_FIELD_NUMBER: _ClassVar[int]
    SUM_FIELD_NUMBER: _ClassVar[int]
    SUM_SQUARES_FIELD_NUMBER: _ClassVar[int]
    n: int
    sum: float
    sum_squares: float
    def __init__(self, n: _Optional[int] = ..., sum: _Optional[float] = ..., sum_squares: _Optional[float] = ...) -> None: ...

class VariantWindow(_message.Message):
    __slots__ = ("route_id", "variant", "window_start_us", "window_us", "count", "errors", "successes", "status_codes", "latency_seconds", "latency_buckets", "custom", "model_name", "latency_min_seconds", "latency_max_seconds", "units")
    class StatusCodesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class CustomEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: Moments
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[Moments, _Mapping]] = ...) -> None: ...
    ROUTE_ID_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    WINDOW_START_US_FIELD_NUMBER: _ClassVar[int]
    WINDOW_US_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    SUCCESSES_FIELD_NUMBER: _ClassVar[int]
    STATUS_CODES_FIELD_NUMBER: _ClassVar[int]
    LATENCY_SECONDS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_BUCKETS_FIELD_NUMBER: _ClassVar[int]
    CUSTOM_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MIN_SECONDS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MAX_SECONDS_FIELD_NUMBER: _ClassVar[int]
    UNITS_FIELD_NUMBER: _ClassVar[int]
    route_id: str
    variant: str
    window_start_us: int
    window_us: int
    count: int
    errors: int
    successes: int
    status_codes: _containers.ScalarMap[str, int]
    latency_seconds: Moments
    latency_buckets: _containers.RepeatedScalarFieldContainer[int]
    custom: _containers.MessageMap[str, Moments]
    model_name: str
    latency_min_seconds: float
    latency_max_seconds: float
    units: UnitBreakdown
    def __init__(self, route_id: _Optional[str] = ..., variant: _Optional[str] = ..., window_start_us: _Optional[int] = ..., window_us: _Optional[int] = ..., count: _Optional[int] = ..., errors: _Optional[int] = ..., successes: _Optional[int] = ..., status_codes: _Optional[_Mapping[str, int]] = ..., latency_seconds: _Optional[_Union[Moments, _Mapping]] = ..., latency_buckets: _Optional[_Iterable[int]] = ..., custom: _Optional[_Mapping[str, Moments]] = ..., model_name: _Optional[str] = ..., latency_min_seconds: _Optional[float] = ..., latency_max_seconds: _Optional[float] = ..., units: _Optional[_Union[UnitBreakdown, _Mapping]] = ...) -> None: ...

class UnitBreakdown(_message.Message):
    __slots__ = ("keys", "requests", "errors", "latency_seconds", "overflow_requests", "custom")
    class CustomEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: UnitMetric
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[UnitMetric, _Mapping]] = ...) -> None: ...
    KEYS_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_SECONDS_FIELD_NUMBER: _ClassVar[int]
    OVERFLOW_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    CUSTOM_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedScalarFieldContainer[int]
    requests: _containers.RepeatedScalarFieldContainer[int]
    errors: _containers.RepeatedScalarFieldContainer[int]
    latency_seconds: _containers.RepeatedScalarFieldContainer[float]
    overflow_requests: int
    custom: _containers.MessageMap[str, UnitMetric]
    def __init__(self, keys: _Optional[_Iterable[int]] = ..., requests: _Optional[_Iterable[int]] = ..., errors: _Optional[_Iterable[int]] = ..., latency_seconds: _Optional[_Iterable[float]] = ..., overflow_requests: _Optional[int] = ..., custom: _Optional[_Mapping[str, UnitMetric]] = ...) -> None: ...

class UnitMetric(_message.Message):
    __slots__ = ("n", "sum")
    N_FIELD_NUMBER: _ClassVar[int]
    SUM_FIELD_NUMBER: _ClassVar[int]
    n: _containers.RepeatedScalarFieldContainer[int]
    sum: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, n: _Optional[_Iterable[int]] = ..., sum: _Optional[_Iterable[float]] = ...) -> None: ...

class ShadowWindow(_message.Message):
    __slots__ = ("route_id", "shadow_id", "window_start_us", "window_us", "mirrored", "agreed", "disagreed", "errors", "dropped", "latency_seconds", "latency_buckets", "primary_latency_seconds", "samples", "primary_latency_buckets", "model_name")
    ROUTE_ID_FIELD_NUMBER: _ClassVar[int]
    SHADOW_ID_FIELD_NUMBER: _ClassVar[int]
    WINDOW_START_US_FIELD_NUMBER: _ClassVar[int]
    WINDOW_US_FIELD_NUMBER: _ClassVar[int]
    MIRRORED_FIELD_NUMBER: _ClassVar[int]
    AGREED_FIELD_NUMBER: _ClassVar[int]
    DISAGREED_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    DROPPED_FIELD_NUMBER: _ClassVar[int]
    LATENCY_SECONDS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_BUCKETS_FIELD_NUMBER: _ClassVar[int]
    PRIMARY_LATENCY_SECONDS_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    PRIMARY_LATENCY_BUCKETS_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    route_id: str
    shadow_id: str
    window_start_us: int
    window_us: int
    mirrored: int
    agreed: int
    disagreed: int
    errors: int
    dropped: int
    latency_seconds: Moments
    latency_buckets: _containers.RepeatedScalarFieldContainer[int]
    primary_latency_seconds: Moments
    samples: _containers.RepeatedCompositeFieldContainer[ShadowSample]
    primary_latency_buckets: _containers.RepeatedScalarFieldContainer[int]
    model_name: str
    def __init__(self, route_id: _Optional[str] = ..., shadow_id: _Optional[str] = ..., window_start_us: _Optional[int] = ..., window_us: _Optional[int] = ..., mirrored: _Optional[int] = ..., agreed: _Optional[int] = ..., disagreed: _Optional[int] = ..., errors: _Optional[int] = ..., dropped: _Optional[int] = ..., latency_seconds: _Optional[_Union[Moments, _Mapping]] = ..., latency_buckets: _Optional[_Iterable[int]] = ..., primary_latency_seconds: _Optional[_Union[Moments, _Mapping]] = ..., samples: _Optional[_Iterable[_Union[ShadowSample, _Mapping]]] = ..., primary_latency_buckets: _Optional[_Iterable[int]] = ..., model_name: _Optional[str] = ...) -> None: ...

class ShadowSample(_message.Message):
    __slots__ = ("at_us", "request_id", "primary_json", "shadow_json", "reason")
    AT_US_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PRIMARY_JSON_FIELD_NUMBER: _ClassVar[int]
    SHADOW_JSON_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    at_us: int
    request_id: str
    primary_json: str
    shadow_json: str
    reason: str
    def __init__(self, at_us: _Optional[int] = ..., request_id: _Optional[str] = ..., primary_json: _Optional[str] = ..., shadow_json: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class MetricsBatch(_message.Message):
    __slots__ = ("sidecar_id", "sequence", "created_us", "windows", "shadows", "session")
    SIDECAR_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    CREATED_US_FIELD_NUMBER: _ClassVar[int]
    WINDOWS_FIELD_NUMBER: _ClassVar[int]
    SHADOWS_FIELD_NUMBER: _ClassVar[int]
    SESSION_FIELD_NUMBER: _ClassVar[int]
    sidecar_id: str
    sequence: int
    created_us: int
    windows: _containers.RepeatedCompositeFieldContainer[VariantWindow]
    shadows: _containers.RepeatedCompositeFieldContainer[ShadowWindow]
    session: str
    def __init__(self, sidecar_id: _Optional[str] = ..., sequence: _Optional[int] = ..., created_us: _Optional[int] = ..., windows: _Optional[_Iterable[_Union[VariantWindow, _Mapping]]] = ..., shadows: _Optional[_Iterable[_Union[ShadowWindow, _Mapping]]] = ..., session: _Optional[str] = ...) -> None: ...

class MetricsAck(_message.Message):
    __slots__ = ("sidecar_id", "sequence", "duplicate", "error")
    SIDECAR_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    sidecar_id: str
    sequence: int
    duplicate: bool
    error: str
    def __init__(self, sidecar_id: _Optional[str] = ..., sequence: _Optional[int] = ..., duplicate: _Optional[bool] = ..., error: _Optional[str] = ...) -> None: ...
