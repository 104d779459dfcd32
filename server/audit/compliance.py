"""Computing, saving and reading compliance reports (:class:`ComplianceReport`).

A report covers the events of a time range: counts by type, severity and user; the
security violations, approval decisions, deployments and rollbacks; the changes to
production with no approval of the same model version before them; and the verification
of the whole chain at the time of the report. The model change entries (deployments and
unapproved production changes) carry the changed version's ``lineage`` as its
registration event recorded it (None when the trail holds no registration of it). Lists
hold at most ``list_limit`` events (the oldest); the summary's counts are exact.
"""

from __future__ import annotations

import json
import statistics
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from neural.mlops.server.audit import store
from neural.mlops.server.audit.eventlog import check_range
from neural.mlops.server.audit.events import AuditEvent, EventType, row_to_event
from neural.mlops.server.audit.hashchain import canonical_json
from neural.mlops.server.audit.report import (
    ApprovalDecision,
    ComplianceReport,
    Decision,
    ReportInfo,
    event_summary,
)
from neural.mlops.server.audit.verification import ChainVerifier
from neural.mlops.server.audit.verify import ChainVerification
from neural.mlops.server.clock import Clock, from_us, to_us
from neural.mlops.server.errors import NotFound
from neural.mlops.server.identity import current_call
from neural.mlops.server.storage import Database

REPORT_LIST_LIMIT = 1000
REQUESTS_SEARCHED = 20  # promotion requests looked at to time a decision
PRODUCTION = "production"
APPROVAL_TYPES = (EventType.PROMOTION_APPROVED, EventType.APPROVAL_GRANTED)
DECISION_TYPES = (*APPROVAL_TYPES, EventType.PROMOTION_REJECTED)
DEPLOYMENT_TYPES = (
    EventType.MODEL_DEPLOYED, EventType.DEPLOYMENT_CREATED, EventType.DEPLOYMENT_PROMOTED
)
PRODUCTION_CHANGE_TYPES = (
    EventType.MODEL_STAGE_CHANGED, EventType.MODEL_DEPLOYED, EventType.DEPLOYMENT_PROMOTED
)
NOT_CHANGES = (str(EventType.ACCESS_DENIED),)  # refusals: not counted as changes


@dataclass(slots=True)
class Findings:
    """What the events of a time range show (lists cut at the report's list limit)."""

    total: int
    by_type: dict[str, int]
    by_severity: dict[str, int]
    by_user: dict[str, int]
    violations: list[AuditEvent]
    violation_count: int
    approvals: list[ApprovalDecision]
    deployments: list[AuditEvent]
    deployment_count: int
    rollbacks: list[AuditEvent]
    rollback_count: int
    unapproved: list[AuditEvent]
    unauthenticated: list[AuditEvent]
    unauthenticated_count: int


class ComplianceReporter:
    def __init__(
        self, db: Database, clock: Clock, verifier: ChainVerifier,
        *, list_limit: int = REPORT_LIST_LIMIT,
    ) -> None:
        self.db = db
        self.clock = clock
        self.verifier = verifier
        self.list_limit = list_limit

    async def generate(self, start_us: int, end_us: int) -> ComplianceReport:
        """Compute the report of ``start_us..end_us``, save it (an audited change) and
        return it."""
        check_range(start_us, end_us)
        verification = await self.verifier.verify_chain()
        async with self.db.read() as conn:
            found = await self._findings(conn, start_us, end_us)
            lineages = await _lineages(conn, [*found.deployments, *found.unapproved])
        now_us = to_us(self.clock.now())
        report = ComplianceReport(
            report_id=f"report_{from_us(now_us).strftime('%Y%m%d_%H%M%S')}_{uuid.uuid4().hex[:6]}",
            generated_at=from_us(now_us),
            generated_by=current_call().actor,
            start_date=from_us(start_us),
            end_date=from_us(end_us),
            total_events=found.total,
            events_by_type=found.by_type,
            events_by_severity=found.by_severity,
            events_by_user=found.by_user,
            security_violations=[event_summary(e) for e in found.violations],
            approvals=[a.to_dict() for a in found.approvals],
            deployments=[_model_change(e, lineages) for e in found.deployments],
            rollbacks=[event_summary(e) for e in found.rollbacks],
            unapproved_production_changes=[_model_change(e, lineages)
                                           for e in found.unapproved],
            unauthenticated_changes=[event_summary(e) for e in found.unauthenticated],
            chain_verification=asdict(verification),
            summary=_summary(found, verification, self.list_limit),
            list_limit=self.list_limit,
        )
        await self._save(report, now_us, start_us, end_us)
        return report

    async def load(self, report_id: str) -> ComplianceReport:
        async with self.db.read() as conn:
            body = await store.report_body(conn, report_id)
        if body is None:
            raise NotFound(f"no compliance report {report_id!r}", field="report_id")
        return ComplianceReport.from_dict(json.loads(body))

    async def saved(self, limit: int = 100,
                    after: tuple[int, str] | None = None) -> list[ReportInfo]:
        """The newest ``limit`` saved reports, newest first (after the key ``after``:
        created_us, report_id)."""
        async with self.db.read() as conn:
            rows = await store.report_rows(conn, limit, after)
        return [ReportInfo(r.report_id, from_us(r.created_us), from_us(r.start_us),
                           from_us(r.end_us), r.created_by) for r in rows]

    async def _findings(self, conn: AsyncConnection, start_us: int, end_us: int) -> Findings:
        async def events(types: Sequence[EventType]) -> list[AuditEvent]:
            rows = await store.events_of_types(
                conn, _names(types), start_us, end_us, self.list_limit)
            return [row_to_event(r) for r in rows]

        async def count(types: Sequence[EventType]) -> int:
            return await store.count_events(conn, start_us, end_us, _names(types))

        violations = (EventType.SECURITY_VIOLATION,)
        rollbacks = (EventType.DEPLOYMENT_ROLLED_BACK,)
        return Findings(
            total=await store.count_events(conn, start_us, end_us),
            by_type=await store.counts_by(conn, "event_type", start_us, end_us),
            by_severity=await store.counts_by(conn, "severity", start_us, end_us),
            by_user=await store.counts_by(conn, "actor", start_us, end_us),
            violations=await events(violations),
            violation_count=await count(violations),
            approvals=[await _decision(conn, e) for e in await events(DECISION_TYPES)],
            deployments=await events(DEPLOYMENT_TYPES),
            deployment_count=await count(DEPLOYMENT_TYPES),
            rollbacks=await events(rollbacks),
            rollback_count=await count(rollbacks),
            unapproved=[e for e in await events(PRODUCTION_CHANGE_TYPES)
                        if _is_production_change(e) and not await _approved_before(conn, e)],
            unauthenticated=[row_to_event(r) for r in await store.unauthenticated_events(
                conn, start_us, end_us, NOT_CHANGES, self.list_limit)],
            unauthenticated_count=await store.count_unauthenticated(
                conn, start_us, end_us, NOT_CHANGES),
        )

    async def _save(self, report: ComplianceReport, now_us: int, start_us: int,
                    end_us: int) -> None:
        async with self.db.change() as ch:
            await store.insert_report(ch.conn, {
                "report_id": report.report_id, "created_us": now_us, "start_us": start_us,
                "end_us": end_us, "created_by": report.generated_by,
                "body": canonical_json(report.to_dict()),
            })
            ch.record(
                EventType.COMPLIANCE_REPORT_GENERATED,
                resource_type="compliance_report",
                resource_id=report.report_id,
                action="generate",
                details={"start_us": start_us, "end_us": end_us,
                         "total_events": report.total_events, "chain_valid": report.chain_valid},
            )


def _names(types: Sequence[EventType]) -> list[str]:
    return [str(t) for t in types]


def _summary(found: Findings, verification: ChainVerification, limit: int) -> dict[str, Any]:
    by_user = found.by_user
    most_active = max(sorted(by_user), key=lambda u: by_user[u]) if by_user else None
    waits = [a.seconds_to_decision for a in found.approvals
             if a.seconds_to_decision is not None]
    granted = sum(1 for a in found.approvals if a.decision is Decision.GRANTED)
    return {
        "total_events": found.total,
        "most_active_user": most_active,
        "most_active_user_events": by_user.get(most_active, 0) if most_active else 0,
        "unique_users": len(by_user),
        "security_violation_count": found.violation_count,
        "approvals_granted": granted,
        "approvals_rejected": len(found.approvals) - granted,
        "mean_seconds_to_decision": statistics.fmean(waits) if waits else None,
        "median_seconds_to_decision": statistics.median(waits) if waits else None,
        "deployment_count": found.deployment_count,
        "rollback_count": found.rollback_count,
        "unapproved_production_change_count": len(found.unapproved),
        "unauthenticated_change_count": found.unauthenticated_count,
        "chain_valid": verification.valid,
        "lists_truncated_at": limit,
    }


def _model_key(resource_id: str, details: dict[str, Any]) -> str:
    """``name:version`` of the model an event concerns."""
    name = details.get("model_name") or details.get("name")
    version = details.get("version")
    if name and version:
        return f"{name}:{version}"
    return resource_id


def _changed_version(ev: AuditEvent) -> str:
    """``name:version`` a model change is about: a model event's resource, a deployment's
    model and version."""
    d = ev.details
    if ev.resource_type != "model" and d.get("model") and d.get("version"):
        return f"{d['model']}:{d['version']}"
    return _model_key(ev.resource_id, d)


async def _lineages(conn: AsyncConnection,
                    events: Sequence[AuditEvent]) -> dict[str, dict[str, Any] | None]:
    """The lineage each changed version's latest registration event recorded ({} if none
    was given), None for versions the trail does not show registered."""
    out: dict[str, dict[str, Any] | None] = {}
    for ev in events:
        key = _changed_version(ev)
        if key in out:
            continue
        rows = await store.latest_events_for(
            conn, str(EventType.MODEL_REGISTERED), ev.seq, key, 1)
        out[key] = json.loads(rows[0].details).get("lineage", {}) if rows else None
    return out


def _model_change(ev: AuditEvent, lineages: dict[str, dict[str, Any] | None]) -> dict[str, Any]:
    return {**event_summary(ev), "lineage": lineages.get(_changed_version(ev))}


def _is_production_change(ev: AuditEvent) -> bool:
    d = ev.details
    if ev.event_type == EventType.MODEL_STAGE_CHANGED:
        return str(d.get("to_stage", "")).lower() == PRODUCTION
    if ev.event_type == EventType.MODEL_DEPLOYED:
        return str(d.get("environment", "")).lower() == PRODUCTION
    return ev.event_type == EventType.DEPLOYMENT_PROMOTED


async def _approved_before(conn: AsyncConnection, ev: AuditEvent) -> bool:
    """Whether an approval of the same model version precedes this change."""
    key = _model_key(ev.resource_id, ev.details)
    types = _names(APPROVAL_TYPES)
    if await store.any_event_for(conn, types, ev.seq, key):
        return True
    # Explicit log_approval_granted events may name the model in their details only.
    version = json.dumps(key.rsplit(":", 1)[-1], ensure_ascii=False)
    for text in await store.details_containing(conn, types, ev.seq, f'"version":{version}'):
        if _model_key("", json.loads(text)) == key:
            return True
    return False


async def _decision(conn: AsyncConnection, ev: AuditEvent) -> ApprovalDecision:
    """The decision an approval or rejection event records; the time since its request
    comes from the event, else from the latest matching promotion request before it."""
    d = ev.details
    key = _model_key(ev.resource_id, d)
    wait = d.get("seconds_to_decision")
    requested_by = d.get("requested_by", "")
    if wait is None:
        request_id = d.get("request_id")
        requests = await store.latest_events_for(
            conn, str(EventType.PROMOTION_REQUESTED), ev.seq, key, REQUESTS_SEARCHED)
        for ts_us, actor, text in requests:
            if request_id and json.loads(text).get("request_id") != request_id:
                continue
            wait = (ev.time_us - ts_us) / 1e6
            requested_by = requested_by or actor
            break
    rejected = ev.event_type == EventType.PROMOTION_REJECTED
    return ApprovalDecision(
        time=ev.timestamp,
        decision=Decision.REJECTED if rejected else Decision.GRANTED,
        event_type=str(ev.event_type),
        resource_id=key,
        actor=ev.actor,
        requested_by=requested_by,
        request_id=d.get("request_id", ""),
        seconds_to_decision=wait,
        comment=d.get("comment", ""),
        seq=ev.seq,
    )
