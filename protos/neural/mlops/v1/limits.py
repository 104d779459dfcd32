"""Size limits of the wire contract: one definition for the control plane, the sidecar and
the clients, and one check that every request passes before any domain code runs.

A single request must not be able to stall the server (the probe's
``SearchModelVersions(tags=["a"] * 100000)`` ran for 55 s), so every repeated field and
every string of every request message is bounded:

* a repeated or map field holds at most :data:`MAX_REPEATED` elements unless
  :data:`REPEATED_LIMITS` names a larger bound for it;
* a string holds at most :data:`MAX_TEXT` characters unless :data:`STRING_LIMITS`
  names another bound (prefix searches are kept short: SQLite refuses LIKE patterns
  past 50,000 bytes);
* an element of a bulk field (:data:`REPEATED_LIMITS`) is at most
  :data:`MAX_BULK_ELEMENT_BYTES` encoded; its domain checks its fields as it ingests it;
* a google.protobuf.Timestamp lies in its specified range (years 1-9999, valid nanos);
* an enum field holds a value its enum declares (proto3 enums are open: an unknown number
  survives parsing, and the domain would read it as "unset" or fail on it);
* a whole message is at most :data:`MAX_MESSAGE_BYTES` on the wire (gRPC enforces it).

Names, versions and ids (:data:`MAX_NAME`) and identities (:data:`MAX_IDENTITY`) are
checked tighter by the domain. The same numbers are written beside the fields in the
``.proto`` files.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
MAX_NAME = 128
MAX_IDENTITY = 320
MAX_TEXT = 64 * 1024
MAX_JSON = 1024 * 1024
MAX_REPEATED = 1_000
MAX_BULK_ELEMENT_BYTES = 64 * 1024
MIN_TIMESTAMP_SECONDS = -62_135_596_800  # 0001-01-01T00:00:00Z
MAX_TIMESTAMP_SECONDS = 253_402_300_799  # 9999-12-31T23:59:59Z

_PKG = "neural.mlops.v1."

REPEATED_LIMITS: dict[str, int] = {
    _PKG + "LogEventsRequest.events": 100_000,
    _PKG + "RecordRequestsRequest.records": 10_000,
    _PKG + "SetCovariatesRequest.covariates": 100_000,
    _PKG + "MetricsBatch.windows": 10_000,
    _PKG + "MetricsBatch.shadows": 10_000,
}

STRING_LIMITS: dict[str, int] = {
    _PKG + "ListModelsRequest.name_prefix": MAX_NAME,
    _PKG + "SearchModelVersionsRequest.name_prefix": MAX_NAME,
    _PKG + "QueryEventsRequest.text": 1_000,
    _PKG + "SearchModelVersionsRequest.filter": 4_096,
    _PKG + "RegisterModelMetadata.config_json": MAX_JSON,
    _PKG + "RecordShadowComparisonRequest.primary_result_json": MAX_JSON,
    _PKG + "RecordShadowComparisonRequest.shadow_result_json": MAX_JSON,
    _PKG + "PurgeRequest.archive_path": 4_096,
    _PKG + "ExportRequest.destination": 4_096,
}


class LimitExceeded(ValueError):
    """A request field outside the contract; ``field`` is the dotted path inside the
    request, ``reason`` the stable error reason (docs/errors.md): LIMIT_EXCEEDED,
    TIMESTAMP_OUT_OF_RANGE or UNKNOWN_ENUM_VALUE."""

    def __init__(self, message: str, field: str, reason: str = "LIMIT_EXCEEDED") -> None:
        super().__init__(message)
        self.field = field
        self.reason = reason


def check_message(msg: Message, _path: str = "") -> None:
    """Raise :class:`LimitExceeded` for the first field of ``msg`` (recursively) over its
    bound. Only fields that are set are visited, so a small request costs microseconds."""
    for fd, value in msg.ListFields():
        path = f"{_path}{fd.name}"
        if fd.is_repeated:
            _check_repeated(fd, value, path)
        elif fd.type == FieldDescriptor.TYPE_MESSAGE:
            # A message field always has its message type.
            if fd.message_type.full_name == "google.protobuf.Timestamp":  # type: ignore[union-attr]
                _check_timestamp(value, path)
            else:
                check_message(value, f"{path}.")
        elif fd.type == FieldDescriptor.TYPE_STRING:
            _check_string(fd, value, path)
        elif fd.type == FieldDescriptor.TYPE_ENUM:
            _check_enum(fd, value, path)


def _check_repeated(fd: FieldDescriptor, value: Any, path: str) -> None:
    """The element count of a repeated field or map, then each element."""
    limit = REPEATED_LIMITS.get(fd.full_name, MAX_REPEATED)
    if len(value) > limit:
        raise LimitExceeded(f"{path} has {len(value)} elements; at most {limit} are accepted", path)
    if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
        _check_map(fd, value, path)
    elif fd.full_name in REPEATED_LIMITS:
        _check_bulk(value, path)
    elif fd.message_type is not None:
        for item in value:
            check_message(item, f"{path}.")
    elif fd.type == FieldDescriptor.TYPE_STRING:
        for item in value:
            _check_string(fd, item, path)
    elif fd.type == FieldDescriptor.TYPE_ENUM:
        for item in value:
            _check_enum(fd, item, path)


def _check_bulk(items: list[Message], path: str) -> None:
    """Bulk fields (thousands of records, windows or events a call) are bounded per element
    by encoded size, which costs C time only; their domain validates each element's fields
    as it ingests them."""
    for i, item in enumerate(items):
        size = item.ByteSize()
        if size > MAX_BULK_ELEMENT_BYTES:
            raise LimitExceeded(
                f"{path}[{i}] is {size} bytes; at most {MAX_BULK_ELEMENT_BYTES} per element", path
            )


def _check_map(fd: FieldDescriptor, value: object, path: str) -> None:
    entry = fd.message_type
    assert entry is not None  # the caller checked: a map's entries are messages
    key_fd = entry.fields_by_name["key"]
    value_fd = entry.fields_by_name["value"]
    for key, item in value.items():  # type: ignore[attr-defined]
        if isinstance(key, str):
            _check_string(key_fd, key, f"{path} key")
        if isinstance(item, Message):
            check_message(item, f"{path}.")
        elif isinstance(item, str):
            _check_string(value_fd, item, path)
        elif value_fd.type == FieldDescriptor.TYPE_ENUM:
            _check_enum(value_fd, item, path)


def _check_timestamp(ts: Message, path: str) -> None:
    """The range google.protobuf.Timestamp itself specifies (years 1-9999)."""
    if not MIN_TIMESTAMP_SECONDS <= ts.seconds <= MAX_TIMESTAMP_SECONDS:  # type: ignore[attr-defined]
        raise LimitExceeded(f"{path} must lie between years 1 and 9999", path,
                            "TIMESTAMP_OUT_OF_RANGE")
    if not 0 <= ts.nanos <= 999_999_999:  # type: ignore[attr-defined]
        raise LimitExceeded(f"{path}.nanos must be in [0, 999999999]", path,
                            "TIMESTAMP_OUT_OF_RANGE")


def _check_enum(fd: FieldDescriptor, value: int, path: str) -> None:
    enum = fd.enum_type
    if enum is not None and value not in enum.values_by_number:
        raise LimitExceeded(f"{path} = {value} is not a value of {enum.name}", path,
                            "UNKNOWN_ENUM_VALUE")


def _check_string(fd: FieldDescriptor, value: str, path: str) -> None:
    limit = STRING_LIMITS.get(fd.full_name, MAX_TEXT)
    if len(value) > limit:
        raise LimitExceeded(
            f"{path} is {len(value)} characters long; at most {limit} are accepted", path
        )
