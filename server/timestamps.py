"""google.protobuf.Timestamp <-> datetime / integer microseconds, exact to the µs.

Every converter uses these, so embedded and remote callers see identical times. A
Timestamp from the wire is checked against its own specification (0001-01-01 to
9999-12-31, nanos in [0, 999,999,999]) and refused with INVALID_ARGUMENT naming the
field otherwise: Python's datetime cannot hold it and the answer would be UNKNOWN.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, overload

from google.protobuf.timestamp_pb2 import Timestamp

from neural.mlops.server.clock import from_us, to_us
from neural.mlops.server.errors import InvalidArgument
from neural.mlops.v1.limits import MAX_TIMESTAMP_SECONDS as MAX_SECONDS
from neural.mlops.v1.limits import MIN_TIMESTAMP_SECONDS as MIN_SECONDS


def us_to_timestamp(us: int) -> Timestamp:
    seconds, rem = divmod(us, 1_000_000)
    return Timestamp(seconds=seconds, nanos=rem * 1000)


def timestamp_to_us(value: Timestamp, field: str = "timestamp") -> int:
    if not MIN_SECONDS <= value.seconds <= MAX_SECONDS:
        raise InvalidArgument(f"{field} must lie between years 1 and 9999", field=field)
    if not 0 <= value.nanos <= 999_999_999:
        raise InvalidArgument(f"{field}.nanos must be in [0, 999999999]", field=field)
    return value.seconds * 1_000_000 + value.nanos // 1000


@overload
def to_timestamp(value: datetime) -> Timestamp: ...
@overload
def to_timestamp(value: None) -> None: ...
@overload
def to_timestamp(value: datetime | None) -> Timestamp | None: ...


def to_timestamp(value: datetime | None) -> Timestamp | None:
    """None stays None (an unset message field)."""
    return None if value is None else us_to_timestamp(to_us(value))


def from_timestamp(value: Timestamp, field: str = "timestamp") -> datetime:
    return from_us(timestamp_to_us(value, field))


def optional_us(msg: Any, field: str) -> int | None:
    """An optional Timestamp field of ``msg`` as µs, None when unset."""
    return timestamp_to_us(getattr(msg, field), field) if msg.HasField(field) else None
