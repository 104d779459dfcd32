"""Event types, severities, the record a state change leaves behind, and the shapes in
which events are logged and queried."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from neural.mlops.server.clock import from_us, to_us
from neural.mlops.server.errors import InvalidArgument


class EventType(StrEnum):
    MODEL_REGISTERED = "model_registered"
    MODEL_UPDATED = "model_updated"
    MODEL_DELETED = "model_deleted"
    MODEL_STAGE_CHANGED = "model_stage_changed"
    MODEL_ALIAS_MOVED = "model_alias_moved"
    PROMOTION_REQUESTED = "promotion_requested"
    PROMOTION_APPROVED = "promotion_approved"
    PROMOTION_REJECTED = "promotion_rejected"
    PROMOTION_CANCELLED = "promotion_cancelled"
    APPROVAL_GRANTED = "approval_granted"
    MODEL_DEPLOYED = "model_deployed"
    DEPLOYMENT_CREATED = "deployment_created"
    DEPLOYMENT_ADVANCED = "deployment_advanced"
    DEPLOYMENT_PROMOTED = "deployment_promoted"
    DEPLOYMENT_ROLLED_BACK = "deployment_rolled_back"
    DEPLOYMENT_PAUSED = "deployment_paused"
    DEPLOYMENT_RESUMED = "deployment_resumed"
    DEPLOYMENT_ABORTED = "deployment_aborted"
    SHADOW_STARTED = "shadow_started"
    SHADOW_STOPPED = "shadow_stopped"
    AB_TEST_CREATED = "ab_test_created"
    AB_TEST_STARTED = "ab_test_started"
    AB_TEST_PAUSED = "ab_test_paused"
    AB_TEST_RESUMED = "ab_test_resumed"
    AB_TEST_UPDATED = "ab_test_updated"
    AB_TEST_STOPPED = "ab_test_stopped"
    AB_TEST_CONCLUDED = "ab_test_concluded"
    SECURITY_VIOLATION = "security_violation"
    CONFIGURATION_CHANGED = "configuration_changed"
    AUDIT_EXPORTED = "audit_exported"
    AUDIT_PURGED = "audit_purged"
    COMPLIANCE_REPORT_GENERATED = "compliance_report_generated"
    ACCESS_DENIED = "access_denied"
    CUSTOM = "custom"


class EventSeverity(StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {s: i for i, s in enumerate(EventSeverity)}


@dataclass(slots=True)
class AuditRecord:
    """What a domain change records; the chain writer adds time, actor, request and chain fields."""

    event_type: EventType
    resource_type: str
    resource_id: str
    action: str
    details: dict[str, Any] = field(default_factory=dict)
    severity: EventSeverity = EventSeverity.INFO
    actor: str | None = None  # overrides the call's actor (e.g. the seed's explicit user=)
    details_text: str | None = None  # canonical_json(details), when the caller already has it


@dataclass(slots=True)
class AuditEvent:
    """One stored event, as queries and exports return it.

    ``event_type`` is an :class:`EventType` (or the raw string for a type this version
    does not know). ``actor`` is who did it: the authenticated principal, else the call's
    user field. ``seq``, ``prev_hash`` and ``hash`` are the chain fields.
    """

    event_id: str
    seq: int
    timestamp: datetime
    event_type: EventType | str
    severity: EventSeverity | str
    actor: str
    resource_type: str
    resource_id: str
    action: str
    details: dict[str, Any]
    request_id: str
    peer: str
    prev_hash: str
    hash: str
    hash_version: int = 1  # how ``hash`` is computed (AUDIT.md): 1 or 2

    @property
    def user(self) -> str:
        return self.actor

    @property
    def time_us(self) -> int:
        return to_us(self.timestamp)


def row_to_event(row: Mapping[str, Any]) -> AuditEvent:
    """The event of a stored row (``details`` as stored JSON text or already parsed)."""
    details = row["details"]
    return AuditEvent(
        event_id=row["event_id"],
        seq=row["seq"],
        timestamp=from_us(row["ts_us"]),
        event_type=known_type(row["event_type"]),
        severity=known_severity(row["severity"]),
        actor=row["actor"],
        resource_type=row["resource_type"],
        resource_id=row["resource_id"],
        action=row["action"],
        details=json.loads(details) if isinstance(details, str) else dict(details),
        request_id=row["request_id"],
        peer=row["peer"],
        prev_hash=row["prev_hash"],
        hash=row["hash"],
        hash_version=int(row.get("hash_version") or 1),  # none: stored before 0012
    )


@dataclass(slots=True)
class EventInput:
    """One explicit event to log (the generic ``log_event`` and the batch form)."""

    event_type: EventType | str
    resource_type: str = ""
    resource_id: str = ""
    action: str = ""
    details: dict[str, Any] | None = None
    severity: EventSeverity | str = EventSeverity.INFO
    user: str | None = None


@dataclass(slots=True)
class LoggedBatch:
    """What a batch append stored: seqs ``first_seq..last_seq`` in one transaction."""

    first_seq: int
    last_seq: int
    event_ids: list[str]
    last_hash: str

    def __len__(self) -> int:
        return len(self.event_ids)


@dataclass(slots=True)
class EventQuery:
    """Filters of a query; every given filter must match. Results are newest first."""

    event_types: Sequence[EventType | str] = ()
    severities: Sequence[EventSeverity | str] = ()
    min_severity: EventSeverity | str | None = None
    user: str = ""
    resource_type: str = ""
    resource_id: str = ""
    start_us: int | None = None
    end_us: int | None = None
    text: str = ""
    page_size: int = 0
    page_token: str = ""


@dataclass(slots=True)
class EventPage:
    """One page of a query; ``next_page_token`` continues it (empty: no more)."""

    events: list[AuditEvent]
    next_page_token: str = ""


def parse_event_type(value: EventType | str, *, field: str = "event_type") -> EventType:
    """The EventType named by ``value`` (its value or its NAME); a clear error otherwise."""
    if isinstance(value, EventType):
        return value
    text = str(value).strip()
    try:
        return EventType(text.lower())
    except ValueError:
        pass
    member = EventType.__members__.get(text.upper())
    if member is None:
        raise InvalidArgument(
            f"unknown event type {value!r}; known types: {', '.join(e.value for e in EventType)}",
            field=field,
        )
    return member


def parse_severity(value: EventSeverity | str, *, field: str = "severity") -> EventSeverity:
    if isinstance(value, EventSeverity):
        return value
    text = str(value).strip()
    try:
        return EventSeverity(text.lower())
    except ValueError:
        raise InvalidArgument(
            f"unknown severity {value!r}; use one of {', '.join(s.value for s in EventSeverity)}",
            field=field,
        ) from None


def known_type(value: str) -> EventType | str:
    try:
        return EventType(value)
    except ValueError:
        return value


def known_severity(value: str) -> EventSeverity | str:
    try:
        return EventSeverity(value)
    except ValueError:
        return value
