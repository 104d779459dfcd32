import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ModelStage(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MODEL_STAGE_UNSPECIFIED: _ClassVar[ModelStage]
    MODEL_STAGE_DEVELOPMENT: _ClassVar[ModelStage]
    MODEL_STAGE_STAGING: _ClassVar[ModelStage]
    MODEL_STAGE_PRODUCTION: _ClassVar[ModelStage]
    MODEL_STAGE_ARCHIVED: _ClassVar[ModelStage]

class PromotionStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PROMOTION_STATUS_UNSPECIFIED: _ClassVar[PromotionStatus]
    PROMOTION_STATUS_PENDING: _ClassVar[PromotionStatus]
    PROMOTION_STATUS_APPROVED: _ClassVar[PromotionStatus]
    PROMOTION_STATUS_REJECTED: _ClassVar[PromotionStatus]
    PROMOTION_STATUS_CANCELLED: _ClassVar[PromotionStatus]

class TensorDatatype(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TENSOR_DATATYPE_UNSPECIFIED: _ClassVar[TensorDatatype]
    TENSOR_DATATYPE_BOOL: _ClassVar[TensorDatatype]
    TENSOR_DATATYPE_UINT8: _ClassVar[TensorDatatype]
    TENSOR_DATATYPE_UINT16: _ClassVar[TensorDatatype]
    TENSOR_DATATYPE_UINT32: _ClassVar[TensorDatatype]
    TENSOR_DATATYPE_UINT64: _ClassVar[TensorDatatype]
    TENSOR_DATATYPE_INT8: _ClassVar[TensorDatatype]
    TENSOR_DATATYPE_INT16: _ClassVar[TensorDatatype]
    TENSOR_DATATYPE_INT32: _ClassVar[TensorDatatype]
    TENSOR_DATATYPE_INT64: _ClassVar[TensorDatatype]
    TENSOR_DATATYPE_FP16: _ClassVar[TensorDatatype]
    TENSOR_DATATYPE_FP32: _ClassVar[TensorDatatype]
    TENSOR_DATATYPE_FP64: _ClassVar[TensorDatatype]
    TENSOR_DATATYPE_BYTES: _ClassVar[TensorDatatype]

class ComparisonOperator(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    COMPARISON_OPERATOR_UNSPECIFIED: _ClassVar[ComparisonOperator]
    COMPARISON_OPERATOR_GREATER: _ClassVar[ComparisonOperator]
    COMPARISON_OPERATOR_GREATER_OR_EQUAL: _ClassVar[ComparisonOperator]
    COMPARISON_OPERATOR_LESS: _ClassVar[ComparisonOperator]
    COMPARISON_OPERATOR_LESS_OR_EQUAL: _ClassVar[ComparisonOperator]
    COMPARISON_OPERATOR_EQUAL: _ClassVar[ComparisonOperator]
    COMPARISON_OPERATOR_NOT_EQUAL: _ClassVar[ComparisonOperator]

class HistoryKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    HISTORY_KIND_UNSPECIFIED: _ClassVar[HistoryKind]
    HISTORY_KIND_STAGE: _ClassVar[HistoryKind]
    HISTORY_KIND_ALIAS: _ClassVar[HistoryKind]
MODEL_STAGE_UNSPECIFIED: ModelStage
MODEL_STAGE_DEVELOPMENT: ModelStage
MODEL_STAGE_STAGING: ModelStage
MODEL_STAGE_PRODUCTION: ModelStage
MODEL_STAGE_ARCHIVED: ModelStage
PROMOTION_STATUS_UNSPECIFIED: PromotionStatus
PROMOTION_STATUS_PENDING: PromotionStatus
PROMOTION_STATUS_APPROVED: PromotionStatus
PROMOTION_STATUS_REJECTED: PromotionStatus
PROMOTION_STATUS_CANCELLED: PromotionStatus
TENSOR_DATATYPE_UNSPECIFIED: TensorDatatype
TENSOR_DATATYPE_BOOL: TensorDatatype
TENSOR_DATATYPE_UINT8: TensorDatatype
TENSOR_DATATYPE_UINT16: TensorDatatype
TENSOR_DATATYPE_UINT32: TensorDatatype
TENSOR_DATATYPE_UINT64: TensorDatatype
TENSOR_DATATYPE_INT8: TensorDatatype
TENSOR_DATATYPE_INT16: TensorDatatype
TENSOR_DATATYPE_INT32: TensorDatatype
TENSOR_DATATYPE_INT64: TensorDatatype
TENSOR_DATATYPE_FP16: TensorDatatype
TENSOR_DATATYPE_FP32: TensorDatatype
TENSOR_DATATYPE_FP64: TensorDatatype
TENSOR_DATATYPE_BYTES: TensorDatatype
COMPARISON_OPERATOR_UNSPECIFIED: ComparisonOperator
COMPARISON_OPERATOR_GREATER: ComparisonOperator
COMPARISON_OPERATOR_GREATER_OR_EQUAL: ComparisonOperator
COMPARISON_OPERATOR_LESS: ComparisonOperator
COMPARISON_OPERATOR_LESS_OR_EQUAL: ComparisonOperator
COMPARISON_OPERATOR_EQUAL: ComparisonOperator
COMPARISON_OPERATOR_NOT_EQUAL: ComparisonOperator
HISTORY_KIND_UNSPECIFIED: HistoryKind
HISTORY_KIND_STAGE: HistoryKind
HISTORY_KIND_ALIAS: HistoryKind

class TensorSpec(_message.Message):
    __slots__ = ("name", "datatype", "shape")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DATATYPE_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    name: str
    datatype: TensorDatatype
    shape: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, name: _Optional[str] = ..., datatype: _Optional[_Union[TensorDatatype, str]] = ..., shape: _Optional[_Iterable[int]] = ...) -> None: ...

class ModelSignature(_message.Message):
    __slots__ = ("inputs", "outputs")
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    inputs: _containers.RepeatedCompositeFieldContainer[TensorSpec]
    outputs: _containers.RepeatedCompositeFieldContainer[TensorSpec]
    def __init__(self, inputs: _Optional[_Iterable[_Union[TensorSpec, _Mapping]]] = ..., outputs: _Optional[_Iterable[_Union[TensorSpec, _Mapping]]] = ...) -> None: ...

class DataReference(_message.Message):
    __slots__ = ("uri", "digest")
    URI_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    uri: str
    digest: str
    def __init__(self, uri: _Optional[str] = ..., digest: _Optional[str] = ...) -> None: ...

class Lineage(_message.Message):
    __slots__ = ("source_run_id", "source_uri", "code_revision", "training_data", "parent_version", "signature")
    SOURCE_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_URI_FIELD_NUMBER: _ClassVar[int]
    CODE_REVISION_FIELD_NUMBER: _ClassVar[int]
    TRAINING_DATA_FIELD_NUMBER: _ClassVar[int]
    PARENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    source_run_id: str
    source_uri: str
    code_revision: str
    training_data: _containers.RepeatedCompositeFieldContainer[DataReference]
    parent_version: str
    signature: ModelSignature
    def __init__(self, source_run_id: _Optional[str] = ..., source_uri: _Optional[str] = ..., code_revision: _Optional[str] = ..., training_data: _Optional[_Iterable[_Union[DataReference, _Mapping]]] = ..., parent_version: _Optional[str] = ..., signature: _Optional[_Union[ModelSignature, _Mapping]] = ...) -> None: ...

class Artifact(_message.Message):
    __slots__ = ("uri", "sha256", "size_bytes", "filename", "stored")
    URI_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    STORED_FIELD_NUMBER: _ClassVar[int]
    uri: str
    sha256: str
    size_bytes: int
    filename: str
    stored: bool
    def __init__(self, uri: _Optional[str] = ..., sha256: _Optional[str] = ..., size_bytes: _Optional[int] = ..., filename: _Optional[str] = ..., stored: _Optional[bool] = ...) -> None: ...

class ModelVersion(_message.Message):
    __slots__ = ("name", "version", "stage", "framework", "description", "created_by", "created_at", "updated_at", "metrics", "tags", "params", "config_json", "artifact", "aliases", "lineage")
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class ParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    FRAMEWORK_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    CONFIG_JSON_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_FIELD_NUMBER: _ClassVar[int]
    ALIASES_FIELD_NUMBER: _ClassVar[int]
    LINEAGE_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    stage: ModelStage
    framework: str
    description: str
    created_by: str
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    metrics: _containers.ScalarMap[str, float]
    tags: _containers.RepeatedScalarFieldContainer[str]
    params: _containers.ScalarMap[str, str]
    config_json: str
    artifact: Artifact
    aliases: _containers.RepeatedScalarFieldContainer[str]
    lineage: Lineage
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., stage: _Optional[_Union[ModelStage, str]] = ..., framework: _Optional[str] = ..., description: _Optional[str] = ..., created_by: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., metrics: _Optional[_Mapping[str, float]] = ..., tags: _Optional[_Iterable[str]] = ..., params: _Optional[_Mapping[str, str]] = ..., config_json: _Optional[str] = ..., artifact: _Optional[_Union[Artifact, _Mapping]] = ..., aliases: _Optional[_Iterable[str]] = ..., lineage: _Optional[_Union[Lineage, _Mapping]] = ...) -> None: ...

class RegisteredModel(_message.Message):
    __slots__ = ("name", "created_at", "updated_at", "version_count", "aliases", "latest_versions")
    class AliasesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    VERSION_COUNT_FIELD_NUMBER: _ClassVar[int]
    ALIASES_FIELD_NUMBER: _ClassVar[int]
    LATEST_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    name: str
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    version_count: int
    aliases: _containers.ScalarMap[str, str]
    latest_versions: _containers.RepeatedCompositeFieldContainer[ModelVersion]
    def __init__(self, name: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., version_count: _Optional[int] = ..., aliases: _Optional[_Mapping[str, str]] = ..., latest_versions: _Optional[_Iterable[_Union[ModelVersion, _Mapping]]] = ...) -> None: ...

class RegisterModelRequest(_message.Message):
    __slots__ = ("metadata", "chunk")
    METADATA_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    metadata: RegisterModelMetadata
    chunk: bytes
    def __init__(self, metadata: _Optional[_Union[RegisterModelMetadata, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class RegisterModelMetadata(_message.Message):
    __slots__ = ("name", "version", "framework", "created_by", "metrics", "tags", "description", "params", "config_json", "artifact_filename", "artifact_uri", "expected_sha256", "lineage")
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class ParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    FRAMEWORK_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    CONFIG_JSON_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_FILENAME_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_URI_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_SHA256_FIELD_NUMBER: _ClassVar[int]
    LINEAGE_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    framework: str
    created_by: str
    metrics: _containers.ScalarMap[str, float]
    tags: _containers.RepeatedScalarFieldContainer[str]
    description: str
    params: _containers.ScalarMap[str, str]
    config_json: str
    artifact_filename: str
    artifact_uri: str
    expected_sha256: str
    lineage: Lineage
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., framework: _Optional[str] = ..., created_by: _Optional[str] = ..., metrics: _Optional[_Mapping[str, float]] = ..., tags: _Optional[_Iterable[str]] = ..., description: _Optional[str] = ..., params: _Optional[_Mapping[str, str]] = ..., config_json: _Optional[str] = ..., artifact_filename: _Optional[str] = ..., artifact_uri: _Optional[str] = ..., expected_sha256: _Optional[str] = ..., lineage: _Optional[_Union[Lineage, _Mapping]] = ...) -> None: ...

class GetModelVersionRequest(_message.Message):
    __slots__ = ("name", "version")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ("name_prefix", "page_size", "page_token")
    NAME_PREFIX_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    name_prefix: str
    page_size: int
    page_token: str
    def __init__(self, name_prefix: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models", "next_page_token")
    MODELS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[RegisteredModel]
    next_page_token: str
    def __init__(self, models: _Optional[_Iterable[_Union[RegisteredModel, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListVersionsRequest(_message.Message):
    __slots__ = ("name", "stage", "page_size", "page_token", "order_by")
    NAME_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ORDER_BY_FIELD_NUMBER: _ClassVar[int]
    name: str
    stage: ModelStage
    page_size: int
    page_token: str
    order_by: str
    def __init__(self, name: _Optional[str] = ..., stage: _Optional[_Union[ModelStage, str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., order_by: _Optional[str] = ...) -> None: ...

class ModelVersionPage(_message.Message):
    __slots__ = ("versions", "next_page_token")
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    versions: _containers.RepeatedCompositeFieldContainer[ModelVersion]
    next_page_token: str
    def __init__(self, versions: _Optional[_Iterable[_Union[ModelVersion, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetLatestVersionsRequest(_message.Message):
    __slots__ = ("name", "stages")
    NAME_FIELD_NUMBER: _ClassVar[int]
    STAGES_FIELD_NUMBER: _ClassVar[int]
    name: str
    stages: _containers.RepeatedScalarFieldContainer[ModelStage]
    def __init__(self, name: _Optional[str] = ..., stages: _Optional[_Iterable[_Union[ModelStage, str]]] = ...) -> None: ...

class GetLatestVersionsResponse(_message.Message):
    __slots__ = ("versions",)
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    versions: _containers.RepeatedCompositeFieldContainer[ModelVersion]
    def __init__(self, versions: _Optional[_Iterable[_Union[ModelVersion, _Mapping]]] = ...) -> None: ...

class MetricCondition(_message.Message):
    __slots__ = ("metric", "op", "value")
    METRIC_FIELD_NUMBER: _ClassVar[int]
    OP_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    metric: str
    op: ComparisonOperator
    value: float
    def __init__(self, metric: _Optional[str] = ..., op: _Optional[_Union[ComparisonOperator, str]] = ..., value: _Optional[float] = ...) -> None: ...

class SearchModelVersionsRequest(_message.Message):
    __slots__ = ("name_prefix", "tags", "stage", "framework", "metric_conditions", "page_size", "page_token", "filter", "source_run_id", "code_revision", "parent_version", "training_data_uri", "training_data_digest", "order_by")
    NAME_PREFIX_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    FRAMEWORK_FIELD_NUMBER: _ClassVar[int]
    METRIC_CONDITIONS_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    SOURCE_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    CODE_REVISION_FIELD_NUMBER: _ClassVar[int]
    PARENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    TRAINING_DATA_URI_FIELD_NUMBER: _ClassVar[int]
    TRAINING_DATA_DIGEST_FIELD_NUMBER: _ClassVar[int]
    ORDER_BY_FIELD_NUMBER: _ClassVar[int]
    name_prefix: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    stage: ModelStage
    framework: str
    metric_conditions: _containers.RepeatedCompositeFieldContainer[MetricCondition]
    page_size: int
    page_token: str
    filter: str
    source_run_id: str
    code_revision: str
    parent_version: str
    training_data_uri: str
    training_data_digest: str
    order_by: str
    def __init__(self, name_prefix: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ..., stage: _Optional[_Union[ModelStage, str]] = ..., framework: _Optional[str] = ..., metric_conditions: _Optional[_Iterable[_Union[MetricCondition, _Mapping]]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., filter: _Optional[str] = ..., source_run_id: _Optional[str] = ..., code_revision: _Optional[str] = ..., parent_version: _Optional[str] = ..., training_data_uri: _Optional[str] = ..., training_data_digest: _Optional[str] = ..., order_by: _Optional[str] = ...) -> None: ...

class UpdateModelVersionRequest(_message.Message):
    __slots__ = ("name", "version", "updated_by", "description", "add_tags", "remove_tags", "set_metrics", "set_params")
    class SetMetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class SetParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    UPDATED_BY_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    ADD_TAGS_FIELD_NUMBER: _ClassVar[int]
    REMOVE_TAGS_FIELD_NUMBER: _ClassVar[int]
    SET_METRICS_FIELD_NUMBER: _ClassVar[int]
    SET_PARAMS_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    updated_by: str
    description: str
    add_tags: _containers.RepeatedScalarFieldContainer[str]
    remove_tags: _containers.RepeatedScalarFieldContainer[str]
    set_metrics: _containers.ScalarMap[str, float]
    set_params: _containers.ScalarMap[str, str]
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., updated_by: _Optional[str] = ..., description: _Optional[str] = ..., add_tags: _Optional[_Iterable[str]] = ..., remove_tags: _Optional[_Iterable[str]] = ..., set_metrics: _Optional[_Mapping[str, float]] = ..., set_params: _Optional[_Mapping[str, str]] = ...) -> None: ...

class DeleteModelVersionRequest(_message.Message):
    __slots__ = ("name", "version", "deleted_by")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DELETED_BY_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    deleted_by: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., deleted_by: _Optional[str] = ...) -> None: ...

class DeleteModelVersionResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class TransitionStageRequest(_message.Message):
    __slots__ = ("name", "version", "target_stage", "actor", "reason")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TARGET_STAGE_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    target_stage: ModelStage
    actor: str
    reason: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., target_stage: _Optional[_Union[ModelStage, str]] = ..., actor: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class PromotionVote(_message.Message):
    __slots__ = ("approver", "comment", "at")
    APPROVER_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    approver: str
    comment: str
    at: _timestamp_pb2.Timestamp
    def __init__(self, approver: _Optional[str] = ..., comment: _Optional[str] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PromotionRequest(_message.Message):
    __slots__ = ("request_id", "name", "version", "target_stage", "requested_by", "justification", "reviewers", "required_approvals", "status", "approvals", "decided_by", "decision_comment", "created_at", "decided_at", "from_stage")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TARGET_STAGE_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_BY_FIELD_NUMBER: _ClassVar[int]
    JUSTIFICATION_FIELD_NUMBER: _ClassVar[int]
    REVIEWERS_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_APPROVALS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    APPROVALS_FIELD_NUMBER: _ClassVar[int]
    DECIDED_BY_FIELD_NUMBER: _ClassVar[int]
    DECISION_COMMENT_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    DECIDED_AT_FIELD_NUMBER: _ClassVar[int]
    FROM_STAGE_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    name: str
    version: str
    target_stage: ModelStage
    requested_by: str
    justification: str
    reviewers: _containers.RepeatedScalarFieldContainer[str]
    required_approvals: int
    status: PromotionStatus
    approvals: _containers.RepeatedCompositeFieldContainer[PromotionVote]
    decided_by: str
    decision_comment: str
    created_at: _timestamp_pb2.Timestamp
    decided_at: _timestamp_pb2.Timestamp
    from_stage: ModelStage
    def __init__(self, request_id: _Optional[str] = ..., name: _Optional[str] = ..., version: _Optional[str] = ..., target_stage: _Optional[_Union[ModelStage, str]] = ..., requested_by: _Optional[str] = ..., justification: _Optional[str] = ..., reviewers: _Optional[_Iterable[str]] = ..., required_approvals: _Optional[int] = ..., status: _Optional[_Union[PromotionStatus, str]] = ..., approvals: _Optional[_Iterable[_Union[PromotionVote, _Mapping]]] = ..., decided_by: _Optional[str] = ..., decision_comment: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., decided_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., from_stage: _Optional[_Union[ModelStage, str]] = ...) -> None: ...

class RequestPromotionRequest(_message.Message):
    __slots__ = ("name", "version", "target_stage", "requested_by", "justification", "reviewers", "required_approvals")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TARGET_STAGE_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_BY_FIELD_NUMBER: _ClassVar[int]
    JUSTIFICATION_FIELD_NUMBER: _ClassVar[int]
    REVIEWERS_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_APPROVALS_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    target_stage: ModelStage
    requested_by: str
    justification: str
    reviewers: _containers.RepeatedScalarFieldContainer[str]
    required_approvals: int
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., target_stage: _Optional[_Union[ModelStage, str]] = ..., requested_by: _Optional[str] = ..., justification: _Optional[str] = ..., reviewers: _Optional[_Iterable[str]] = ..., required_approvals: _Optional[int] = ...) -> None: ...

class ApprovePromotionRequest(_message.Message):
    __slots__ = ("name", "version", "approver", "comment", "request_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    APPROVER_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    approver: str
    comment: str
    request_id: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., approver: _Optional[str] = ..., comment: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class RejectPromotionRequest(_message.Message):
    __slots__ = ("name", "version", "rejector", "comment", "request_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    REJECTOR_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    rejector: str
    comment: str
    request_id: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., rejector: _Optional[str] = ..., comment: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class CancelPromotionRequest(_message.Message):
    __slots__ = ("name", "version", "cancelled_by", "reason", "request_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CANCELLED_BY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    cancelled_by: str
    reason: str
    request_id: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., cancelled_by: _Optional[str] = ..., reason: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class ListPendingApprovalsRequest(_message.Message):
    __slots__ = ("reviewer", "name", "page_size", "page_token")
    REVIEWER_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    reviewer: str
    name: str
    page_size: int
    page_token: str
    def __init__(self, reviewer: _Optional[str] = ..., name: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListPendingApprovalsResponse(_message.Message):
    __slots__ = ("requests", "next_page_token")
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    requests: _containers.RepeatedCompositeFieldContainer[PromotionRequest]
    next_page_token: str
    def __init__(self, requests: _Optional[_Iterable[_Union[PromotionRequest, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class SetAliasRequest(_message.Message):
    __slots__ = ("name", "alias", "version", "actor", "reason")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    name: str
    alias: str
    version: str
    actor: str
    reason: str
    def __init__(self, name: _Optional[str] = ..., alias: _Optional[str] = ..., version: _Optional[str] = ..., actor: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class DeleteAliasRequest(_message.Message):
    __slots__ = ("name", "alias", "actor", "reason")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    name: str
    alias: str
    actor: str
    reason: str
    def __init__(self, name: _Optional[str] = ..., alias: _Optional[str] = ..., actor: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class RollbackAliasRequest(_message.Message):
    __slots__ = ("name", "alias", "actor", "reason")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    name: str
    alias: str
    actor: str
    reason: str
    def __init__(self, name: _Optional[str] = ..., alias: _Optional[str] = ..., actor: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class AliasResponse(_message.Message):
    __slots__ = ("name", "alias", "version", "previous_version")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_VERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    alias: str
    version: str
    previous_version: str
    def __init__(self, name: _Optional[str] = ..., alias: _Optional[str] = ..., version: _Optional[str] = ..., previous_version: _Optional[str] = ...) -> None: ...

class HistoryEntry(_message.Message):
    __slots__ = ("kind", "name", "version", "alias", "actor", "reason", "promotion_request_id", "at", "from_stage", "to_stage", "from_version", "to_version")
    KIND_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    PROMOTION_REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    FROM_STAGE_FIELD_NUMBER: _ClassVar[int]
    TO_STAGE_FIELD_NUMBER: _ClassVar[int]
    FROM_VERSION_FIELD_NUMBER: _ClassVar[int]
    TO_VERSION_FIELD_NUMBER: _ClassVar[int]
    kind: HistoryKind
    name: str
    version: str
    alias: str
    actor: str
    reason: str
    promotion_request_id: str
    at: _timestamp_pb2.Timestamp
    from_stage: ModelStage
    to_stage: ModelStage
    from_version: str
    to_version: str
    def __init__(self, kind: _Optional[_Union[HistoryKind, str]] = ..., name: _Optional[str] = ..., version: _Optional[str] = ..., alias: _Optional[str] = ..., actor: _Optional[str] = ..., reason: _Optional[str] = ..., promotion_request_id: _Optional[str] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., from_stage: _Optional[_Union[ModelStage, str]] = ..., to_stage: _Optional[_Union[ModelStage, str]] = ..., from_version: _Optional[str] = ..., to_version: _Optional[str] = ...) -> None: ...

class GetHistoryRequest(_message.Message):
    __slots__ = ("name", "version", "page_size", "page_token")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    page_size: int
    page_token: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class GetHistoryResponse(_message.Message):
    __slots__ = ("entries", "next_page_token")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[HistoryEntry]
    next_page_token: str
    def __init__(self, entries: _Optional[_Iterable[_Union[HistoryEntry, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CompareModelsRequest(_message.Message):
    __slots__ = ("name", "version1", "version2")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION1_FIELD_NUMBER: _ClassVar[int]
    VERSION2_FIELD_NUMBER: _ClassVar[int]
    name: str
    version1: str
    version2: str
    def __init__(self, name: _Optional[str] = ..., version1: _Optional[str] = ..., version2: _Optional[str] = ...) -> None: ...

class MetricComparison(_message.Message):
    __slots__ = ("version1", "version2", "difference", "relative_change")
    VERSION1_FIELD_NUMBER: _ClassVar[int]
    VERSION2_FIELD_NUMBER: _ClassVar[int]
    DIFFERENCE_FIELD_NUMBER: _ClassVar[int]
    RELATIVE_CHANGE_FIELD_NUMBER: _ClassVar[int]
    version1: float
    version2: float
    difference: float
    relative_change: float
    def __init__(self, version1: _Optional[float] = ..., version2: _Optional[float] = ..., difference: _Optional[float] = ..., relative_change: _Optional[float] = ...) -> None: ...

class ValueChange(_message.Message):
    __slots__ = ("version1", "version2")
    VERSION1_FIELD_NUMBER: _ClassVar[int]
    VERSION2_FIELD_NUMBER: _ClassVar[int]
    version1: str
    version2: str
    def __init__(self, version1: _Optional[str] = ..., version2: _Optional[str] = ...) -> None: ...

class CompareModelsResponse(_message.Message):
    __slots__ = ("name", "version1", "version2", "metrics_comparison", "tags_only_in_version1", "tags_only_in_version2", "params_diff", "framework", "stage", "size_bytes_version1", "size_bytes_version2", "lineage_version1", "lineage_version2", "lineage_changed")
    class MetricsComparisonEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: MetricComparison
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[MetricComparison, _Mapping]] = ...) -> None: ...
    class ParamsDiffEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: ValueChange
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[ValueChange, _Mapping]] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION1_FIELD_NUMBER: _ClassVar[int]
    VERSION2_FIELD_NUMBER: _ClassVar[int]
    METRICS_COMPARISON_FIELD_NUMBER: _ClassVar[int]
    TAGS_ONLY_IN_VERSION1_FIELD_NUMBER: _ClassVar[int]
    TAGS_ONLY_IN_VERSION2_FIELD_NUMBER: _ClassVar[int]
    PARAMS_DIFF_FIELD_NUMBER: _ClassVar[int]
    FRAMEWORK_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_VERSION1_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_VERSION2_FIELD_NUMBER: _ClassVar[int]
    LINEAGE_VERSION1_FIELD_NUMBER: _ClassVar[int]
    LINEAGE_VERSION2_FIELD_NUMBER: _ClassVar[int]
    LINEAGE_CHANGED_FIELD_NUMBER: _ClassVar[int]
    name: str
    version1: str
    version2: str
    metrics_comparison: _containers.MessageMap[str, MetricComparison]
    tags_only_in_version1: _containers.RepeatedScalarFieldContainer[str]
    tags_only_in_version2: _containers.RepeatedScalarFieldContainer[str]
    params_diff: _containers.MessageMap[str, ValueChange]
    framework: ValueChange
    stage: ValueChange
    size_bytes_version1: int
    size_bytes_version2: int
    lineage_version1: Lineage
    lineage_version2: Lineage
    lineage_changed: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., version1: _Optional[str] = ..., version2: _Optional[str] = ..., metrics_comparison: _Optional[_Mapping[str, MetricComparison]] = ..., tags_only_in_version1: _Optional[_Iterable[str]] = ..., tags_only_in_version2: _Optional[_Iterable[str]] = ..., params_diff: _Optional[_Mapping[str, ValueChange]] = ..., framework: _Optional[_Union[ValueChange, _Mapping]] = ..., stage: _Optional[_Union[ValueChange, _Mapping]] = ..., size_bytes_version1: _Optional[int] = ..., size_bytes_version2: _Optional[int] = ..., lineage_version1: _Optional[_Union[Lineage, _Mapping]] = ..., lineage_version2: _Optional[_Union[Lineage, _Mapping]] = ..., lineage_changed: _Optional[_Iterable[str]] = ...) -> None: ...

class DownloadArtifactRequest(_message.Message):
    __slots__ = ("name", "version")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ...) -> None: ...

class DownloadArtifactResponse(_message.Message):
    __slots__ = ("artifact", "chunk")
    ARTIFACT_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    artifact: Artifact
    chunk: bytes
    def __init__(self, artifact: _Optional[_Union[Artifact, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...
