"""Event types, severities and the record a state change leaves behind."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from neural.mlops.server.clock import to_us
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

    @property
    def user(self) -> str:
        return self.actor

    @property
    def time_us(self) -> int:
        return to_us(self.timestamp)


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
