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
