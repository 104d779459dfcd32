import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EventType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EVENT_TYPE_UNSPECIFIED: _ClassVar[EventType]
    EVENT_TYPE_MODEL_REGISTERED: _ClassVar[EventType]
    EVENT_TYPE_MODEL_UPDATED: _ClassVar[EventType]
    EVENT_TYPE_MODEL_DELETED: _ClassVar[EventType]
    EVENT_TYPE_MODEL_STAGE_CHANGED: _ClassVar[EventType]
    EVENT_TYPE_MODEL_ALIAS_MOVED: _ClassVar[EventType]
    EVENT_TYPE_PROMOTION_REQUESTED: _ClassVar[EventType]
    EVENT_TYPE_PROMOTION_APPROVED: _ClassVar[EventType]
    EVENT_TYPE_PROMOTION_REJECTED: _ClassVar[EventType]
    EVENT_TYPE_PROMOTION_CANCELLED: _ClassVar[EventType]
    EVENT_TYPE_APPROVAL_GRANTED: _ClassVar[EventType]
    EVENT_TYPE_MODEL_DEPLOYED: _ClassVar[EventType]
    EVENT_TYPE_DEPLOYMENT_CREATED: _ClassVar[EventType]
    EVENT_TYPE_DEPLOYMENT_ADVANCED: _ClassVar[EventType]
    EVENT_TYPE_DEPLOYMENT_PROMOTED: _ClassVar[EventType]
    EVENT_TYPE_DEPLOYMENT_ROLLED_BACK: _ClassVar[EventType]
    EVENT_TYPE_DEPLOYMENT_PAUSED: _ClassVar[EventType]
    EVENT_TYPE_DEPLOYMENT_RESUMED: _ClassVar[EventType]
    EVENT_TYPE_DEPLOYMENT_ABORTED: _ClassVar[EventType]
    EVENT_TYPE_SHADOW_STARTED: _ClassVar[EventType]
    EVENT_TYPE_SHADOW_STOPPED: _ClassVar[EventType]
    EVENT_TYPE_AB_TEST_CREATED: _ClassVar[EventType]
    EVENT_TYPE_AB_TEST_STARTED: _ClassVar[EventType]
    EVENT_TYPE_AB_TEST_PAUSED: _ClassVar[EventType]
    EVENT_TYPE_AB_TEST_RESUMED: _ClassVar[EventType]
    EVENT_TYPE_AB_TEST_UPDATED: _ClassVar[EventType]
    EVENT_TYPE_AB_TEST_STOPPED: _ClassVar[EventType]
    EVENT_TYPE_AB_TEST_CONCLUDED: _ClassVar[EventType]
    EVENT_TYPE_SECURITY_VIOLATION: _ClassVar[EventType]
    EVENT_TYPE_CONFIGURATION_CHANGED: _ClassVar[EventType]
    EVENT_TYPE_AUDIT_EXPORTED: _ClassVar[EventType]
    EVENT_TYPE_AUDIT_PURGED: _ClassVar[EventType]
    EVENT_TYPE_COMPLIANCE_REPORT_GENERATED: _ClassVar[EventType]
    EVENT_TYPE_ACCESS_DENIED: _ClassVar[EventType]
    EVENT_TYPE_CUSTOM: _ClassVar[EventType]

class Severity(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SEVERITY_UNSPECIFIED: _ClassVar[Severity]
    SEVERITY_DEBUG: _ClassVar[Severity]
    SEVERITY_INFO: _ClassVar[Severity]
    SEVERITY_WARNING: _ClassVar[Severity]
    SEVERITY_ERROR: _ClassVar[Severity]
    SEVERITY_CRITICAL: _ClassVar[Severity]

class ExportFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXPORT_FORMAT_UNSPECIFIED: _ClassVar[ExportFormat]
    EXPORT_FORMAT_JSON: _ClassVar[ExportFormat]
    EXPORT_FORMAT_JSONL: _ClassVar[ExportFormat]
    EXPORT_FORMAT_CSV: _ClassVar[ExportFormat]

class CheckpointKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHECKPOINT_KIND_UNSPECIFIED: _ClassVar[CheckpointKind]
    CHECKPOINT_KIND_PERIODIC: _ClassVar[CheckpointKind]
    CHECKPOINT_KIND_SHUTDOWN: _ClassVar[CheckpointKind]
    CHECKPOINT_KIND_MANUAL: _ClassVar[CheckpointKind]
    CHECKPOINT_KIND_EXPORT: _ClassVar[CheckpointKind]
    CHECKPOINT_KIND_ROTATION: _ClassVar[CheckpointKind]
    CHECKPOINT_KIND_PURGE: _ClassVar[CheckpointKind]
    CHECKPOINT_KIND_ACKNOWLEDGED: _ClassVar[CheckpointKind]

class SignatureState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SIGNATURE_STATE_UNSPECIFIED: _ClassVar[SignatureState]
    SIGNATURE_STATE_NOT_CHECKED: _ClassVar[SignatureState]
    SIGNATURE_STATE_VALID: _ClassVar[SignatureState]
    SIGNATURE_STATE_INVALID: _ClassVar[SignatureState]
EVENT_TYPE_UNSPECIFIED: EventType
EVENT_TYPE_MODEL_REGISTERED: EventType
EVENT_TYPE_MODEL_UPDATED: EventType
EVENT_TYPE_MODEL_DELETED: EventType
EVENT_TYPE_MODEL_STAGE_CHANGED: EventType
EVENT_TYPE_MODEL_ALIAS_MOVED: EventType
EVENT_TYPE_PROMOTION_REQUESTED: EventType
EVENT_TYPE_PROMOTION_APPROVED: EventType
EVENT_TYPE_PROMOTION_REJECTED: EventType
EVENT_TYPE_PROMOTION_CANCELLED: EventType
EVENT_TYPE_APPROVAL_GRANTED: EventType
EVENT_TYPE_MODEL_DEPLOYED: EventType
EVENT_TYPE_DEPLOYMENT_CREATED: EventType
EVENT_TYPE_DEPLOYMENT_ADVANCED: EventType
EVENT_TYPE_DEPLOYMENT_PROMOTED: EventType
EVENT_TYPE_DEPLOYMENT_ROLLED_BACK: EventType
EVENT_TYPE_DEPLOYMENT_PAUSED: EventType
EVENT_TYPE_DEPLOYMENT_RESUMED: EventType
EVENT_TYPE_DEPLOYMENT_ABORTED: EventType
EVENT_TYPE_SHADOW_STARTED: EventType
EVENT_TYPE_SHADOW_STOPPED: EventType
EVENT_TYPE_AB_TEST_CREATED: EventType
EVENT_TYPE_AB_TEST_STARTED: EventType
EVENT_TYPE_AB_TEST_PAUSED: EventType
EVENT_TYPE_AB_TEST_RESUMED: EventType
EVENT_TYPE_AB_TEST_UPDATED: EventType
EVENT_TYPE_AB_TEST_STOPPED: EventType
EVENT_TYPE_AB_TEST_CONCLUDED: EventType
EVENT_TYPE_SECURITY_VIOLATION: EventType
EVENT_TYPE_CONFIGURATION_CHANGED: EventType
EVENT_TYPE_AUDIT_EXPORTED: EventType
EVENT_TYPE_AUDIT_PURGED: EventType
EVENT_TYPE_COMPLIANCE_REPORT_GENERATED: EventType
EVENT_TYPE_ACCESS_DENIED: EventType
EVENT_TYPE_CUSTOM: EventType
SEVERITY_UNSPECIFIED: Severity
SEVERITY_DEBUG: Severity
SEVERITY_INFO: Severity
SEVERITY_WARNING: Severity
SEVERITY_ERROR: Severity
SEVERITY_CRITICAL: Severity
EXPORT_FORMAT_UNSPECIFIED: ExportFormat
EXPORT_FORMAT_JSON: ExportFormat
EXPORT_FORMAT_JSONL: ExportFormat
EXPORT_FORMAT_CSV: ExportFormat
CHECKPOINT_KIND_UNSPECIFIED: CheckpointKind
CHECKPOINT_KIND_PERIODIC: CheckpointKind
CHECKPOINT_KIND_SHUTDOWN: CheckpointKind
CHECKPOINT_KIND_MANUAL: CheckpointKind
CHECKPOINT_KIND_EXPORT: CheckpointKind
CHECKPOINT_KIND_ROTATION: CheckpointKind
CHECKPOINT_KIND_PURGE: CheckpointKind
CHECKPOINT_KIND_ACKNOWLEDGED: CheckpointKind
SIGNATURE_STATE_UNSPECIFIED: SignatureState
SIGNATURE_STATE_NOT_CHECKED: SignatureState
SIGNATURE_STATE_VALID: SignatureState
SIGNATURE_STATE_INVALID: SignatureState

class AuditEvent(_message.Message):
    __slots__ = ("event_id", "seq", "time", "event_type", "severity", "actor", "resource_type", "resource_id", "action", "details_json", "request_id", "peer", "prev_hash", "hash", "hash_version")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_TYPE_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    DETAILS_JSON_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PEER_FIELD_NUMBER: _ClassVar[int]
    PREV_HASH_FIELD_NUMBER: _ClassVar[int]
    HASH_FIELD_NUMBER: _ClassVar[int]
    HASH_VERSION_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    seq: int
    time: _timestamp_pb2.Timestamp
    event_type: EventType
    severity: Severity
    actor: str
    resource_type: str
    resource_id: str
    action: str
    details_json: str
    request_id: str
    peer: str
    prev_hash: str
    hash: str
    hash_version: int
    def __init__(self, event_id: _Optional[str] = ..., seq: _Optional[int] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., event_type: _Optional[_Union[EventType, str]] = ..., severity: _Optional[_Union[Severity, str]] = ..., actor: _Optional[str] = ..., resource_type: _Optional[str] = ..., resource_id: _Optional[str] = ..., action: _Optional[str] = ..., details_json: _Optional[str] = ..., request_id: _Optional[str] = ..., peer: _Optional[str] = ..., prev_hash: _Optional[str] = ..., hash: _Optional[str] = ..., hash_version: _Optional[int] = ...) -> None: ...

class EventInput(_message.Message):
    __slots__ = ("event_type", "severity", "user", "resource_type", "resource_id", "action", "details_json")
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_TYPE_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    DETAILS_JSON_FIELD_NUMBER: _ClassVar[int]
    event_type: EventType
    severity: Severity
    user: str
    resource_type: str
    resource_id: str
    action: str
    details_json: str
    def __init__(self, event_type: _Optional[_Union[EventType, str]] = ..., severity: _Optional[_Union[Severity, str]] = ..., user: _Optional[str] = ..., resource_type: _Optional[str] = ..., resource_id: _Optional[str] = ..., action: _Optional[str] = ..., details_json: _Optional[str] = ...) -> None: ...

class LogEventRequest(_message.Message):
    __slots__ = ("event",)
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: EventInput
    def __init__(self, event: _Optional[_Union[EventInput, _Mapping]] = ...) -> None: ...

class LogEventsRequest(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[EventInput]
    def __init__(self, events: _Optional[_Iterable[_Union[EventInput, _Mapping]]] = ...) -> None: ...

class LogEventsResponse(_message.Message):
    __slots__ = ("first_seq", "last_seq", "event_ids", "last_hash")
    FIRST_SEQ_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQ_FIELD_NUMBER: _ClassVar[int]
    EVENT_IDS_FIELD_NUMBER: _ClassVar[int]
    LAST_HASH_FIELD_NUMBER: _ClassVar[int]
    first_seq: int
    last_seq: int
    event_ids: _containers.RepeatedScalarFieldContainer[str]
    last_hash: str
    def __init__(self, first_seq: _Optional[int] = ..., last_seq: _Optional[int] = ..., event_ids: _Optional[_Iterable[str]] = ..., last_hash: _Optional[str] = ...) -> None: ...

class QueryEventsRequest(_message.Message):
    __slots__ = ("event_types", "severities", "min_severity", "user", "resource_type", "resource_id", "start_time", "end_time", "text", "page_size", "page_token")
    EVENT_TYPES_FIELD_NUMBER: _ClassVar[int]
    SEVERITIES_FIELD_NUMBER: _ClassVar[int]
    MIN_SEVERITY_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_TYPE_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    event_types: _containers.RepeatedScalarFieldContainer[EventType]
    severities: _containers.RepeatedScalarFieldContainer[Severity]
    min_severity: Severity
    user: str
    resource_type: str
    resource_id: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    text: str
    page_size: int
    page_token: str
    def __init__(self, event_types: _Optional[_Iterable[_Union[EventType, str]]] = ..., severities: _Optional[_Iterable[_Union[Severity, str]]] = ..., min_severity: _Optional[_Union[Severity, str]] = ..., user: _Optional[str] = ..., resource_type: _Optional[str] = ..., resource_id: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., text: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class QueryEventsChunk(_message.Message):
    __slots__ = ("events", "next_page_token")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[AuditEvent]
    next_page_token: str
    def __init__(self, events: _Optional[_Iterable[_Union[AuditEvent, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GenerateReportRequest(_message.Message):
    __slots__ = ("start_time", "end_time")
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetReportRequest(_message.Message):
    __slots__ = ("report_id",)
    REPORT_ID_FIELD_NUMBER: _ClassVar[int]
    report_id: str
    def __init__(self, report_id: _Optional[str] = ...) -> None: ...

class ComplianceReportMessage(_message.Message):
    __slots__ = ("report_id", "total_events", "chain_valid", "report_json")
    REPORT_ID_FIELD_NUMBER: _ClassVar[int]
    TOTAL_EVENTS_FIELD_NUMBER: _ClassVar[int]
    CHAIN_VALID_FIELD_NUMBER: _ClassVar[int]
    REPORT_JSON_FIELD_NUMBER: _ClassVar[int]
    report_id: str
    total_events: int
    chain_valid: bool
    report_json: str
    def __init__(self, report_id: _Optional[str] = ..., total_events: _Optional[int] = ..., chain_valid: _Optional[bool] = ..., report_json: _Optional[str] = ...) -> None: ...

class ListReportsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ReportInfo(_message.Message):
    __slots__ = ("report_id", "generated_by", "generated_at", "start_time", "end_time")
    REPORT_ID_FIELD_NUMBER: _ClassVar[int]
    GENERATED_BY_FIELD_NUMBER: _ClassVar[int]
    GENERATED_AT_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    report_id: str
    generated_by: str
    generated_at: _timestamp_pb2.Timestamp
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, report_id: _Optional[str] = ..., generated_by: _Optional[str] = ..., generated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListReportsResponse(_message.Message):
    __slots__ = ("reports", "next_page_token")
    REPORTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    reports: _containers.RepeatedCompositeFieldContainer[ReportInfo]
    next_page_token: str
    def __init__(self, reports: _Optional[_Iterable[_Union[ReportInfo, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ExportRequest(_message.Message):
    __slots__ = ("format", "start_time", "end_time", "destination")
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    format: ExportFormat
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    destination: str
    def __init__(self, format: _Optional[_Union[ExportFormat, str]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., destination: _Optional[str] = ...) -> None: ...

class ExportChunk(_message.Message):
    __slots__ = ("seal_json", "data")
    SEAL_JSON_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    seal_json: str
    data: bytes
    def __init__(self, seal_json: _Optional[str] = ..., data: _Optional[bytes] = ...) -> None: ...

class VerifyChainRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ChainVerification(_message.Message):
    __slots__ = ("valid", "events_checked", "first_seq", "last_seq", "last_hash", "first_bad_event_id", "first_bad_seq", "reason", "checkpoints_checked", "signature_state", "key_id", "notes")
    VALID_FIELD_NUMBER: _ClassVar[int]
    EVENTS_CHECKED_FIELD_NUMBER: _ClassVar[int]
    FIRST_SEQ_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQ_FIELD_NUMBER: _ClassVar[int]
    LAST_HASH_FIELD_NUMBER: _ClassVar[int]
    FIRST_BAD_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    FIRST_BAD_SEQ_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINTS_CHECKED_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_STATE_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    valid: bool
    events_checked: int
    first_seq: int
    last_seq: int
    last_hash: str
    first_bad_event_id: str
    first_bad_seq: int
    reason: str
    checkpoints_checked: int
    signature_state: SignatureState
    key_id: str
    notes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, valid: _Optional[bool] = ..., events_checked: _Optional[int] = ..., first_seq: _Optional[int] = ..., last_seq: _Optional[int] = ..., last_hash: _Optional[str] = ..., first_bad_event_id: _Optional[str] = ..., first_bad_seq: _Optional[int] = ..., reason: _Optional[str] = ..., checkpoints_checked: _Optional[int] = ..., signature_state: _Optional[_Union[SignatureState, str]] = ..., key_id: _Optional[str] = ..., notes: _Optional[_Iterable[str]] = ...) -> None: ...

class CheckpointRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Checkpoint(_message.Message):
    __slots__ = ("seq", "hash", "created_at", "kind", "key_id", "signature")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    HASH_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    seq: int
    hash: str
    created_at: _timestamp_pb2.Timestamp
    kind: CheckpointKind
    key_id: str
    signature: str
    def __init__(self, seq: _Optional[int] = ..., hash: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., kind: _Optional[_Union[CheckpointKind, str]] = ..., key_id: _Optional[str] = ..., signature: _Optional[str] = ...) -> None: ...

class CheckpointResponse(_message.Message):
    __slots__ = ("checkpoint",)
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    checkpoint: Checkpoint
    def __init__(self, checkpoint: _Optional[_Union[Checkpoint, _Mapping]] = ...) -> None: ...

class ListCheckpointsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListCheckpointsResponse(_message.Message):
    __slots__ = ("checkpoints", "next_page_token")
    CHECKPOINTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    checkpoints: _containers.RepeatedCompositeFieldContainer[Checkpoint]
    next_page_token: str
    def __init__(self, checkpoints: _Optional[_Iterable[_Union[Checkpoint, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class PurgeRequest(_message.Message):
    __slots__ = ("before", "archive_path")
    BEFORE_FIELD_NUMBER: _ClassVar[int]
    ARCHIVE_PATH_FIELD_NUMBER: _ClassVar[int]
    before: _timestamp_pb2.Timestamp
    archive_path: str
    def __init__(self, before: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., archive_path: _Optional[str] = ...) -> None: ...

class PurgeResponse(_message.Message):
    __slots__ = ("purged_count", "first_seq", "last_seq", "archive_path", "checkpoint")
    PURGED_COUNT_FIELD_NUMBER: _ClassVar[int]
    FIRST_SEQ_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQ_FIELD_NUMBER: _ClassVar[int]
    ARCHIVE_PATH_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    purged_count: int
    first_seq: int
    last_seq: int
    archive_path: str
    checkpoint: Checkpoint
    def __init__(self, purged_count: _Optional[int] = ..., first_seq: _Optional[int] = ..., last_seq: _Optional[int] = ..., archive_path: _Optional[str] = ..., checkpoint: _Optional[_Union[Checkpoint, _Mapping]] = ...) -> None: ...

class GetPublicKeyRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetPublicKeyResponse(_message.Message):
    __slots__ = ("key_id", "public_key_pem")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_PEM_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    public_key_pem: str
    def __init__(self, key_id: _Optional[str] = ..., public_key_pem: _Optional[str] = ...) -> None: ...

class RotateKeyRequest(_message.Message):
    __slots__ = ("reason",)
    REASON_FIELD_NUMBER: _ClassVar[int]
    reason: str
    def __init__(self, reason: _Optional[str] = ...) -> None: ...

class RotateKeyResponse(_message.Message):
    __slots__ = ("old_key_id", "new_key_id", "public_key_pem", "endorsement", "checkpoint")
    OLD_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    NEW_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_PEM_FIELD_NUMBER: _ClassVar[int]
    ENDORSEMENT_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    old_key_id: str
    new_key_id: str
    public_key_pem: str
    endorsement: str
    checkpoint: Checkpoint
    def __init__(self, old_key_id: _Optional[str] = ..., new_key_id: _Optional[str] = ..., public_key_pem: _Optional[str] = ..., endorsement: _Optional[str] = ..., checkpoint: _Optional[_Union[Checkpoint, _Mapping]] = ...) -> None: ...
