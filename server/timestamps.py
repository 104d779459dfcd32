"""google.protobuf.Timestamp <-> datetime / integer microseconds, exact to the µs.

Every converter uses these, so embedded and remote callers see identical times.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from neural.mlops.server.clock import from_us, to_us


def us_to_timestamp(us: int) -> Timestamp:
    seconds, rem = divmod(us, 1_000_000)
    return Timestamp(seconds=seconds, nanos=rem * 1000)


def timestamp_to_us(value: Timestamp) -> int:
    return value.seconds * 1_000_000 + value.nanos // 1000


def to_timestamp(value: datetime | None) -> Timestamp | None:
    """None stays None (an unset message field)."""
    return None if value is None else us_to_timestamp(to_us(value))


def from_timestamp(value: Timestamp) -> datetime:
    return from_us(timestamp_to_us(value))


def optional_us(msg: Any, field: str) -> int | None:
    """An optional Timestamp field of ``msg`` as µs, None when unset."""
    return timestamp_to_us(getattr(msg, field)) if msg.HasField(field) else None
