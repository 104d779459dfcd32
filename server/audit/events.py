"""Event types, severities and the record a state change leaves behind."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


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
    CUSTOM = "custom"


class EventSeverity(StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"


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
