"""Audit logging for compliance: tamper-evident, append-only events.

``AuditLogger("./audit_logs")`` opens the embedded store in that folder;
``AuditLogger("grpc://HOST:PORT")`` talks to a control plane. Both behave identically and
raise the same exceptions (:mod:`neural.mlops.errors`).

Every state change made through any neural-mlops API is logged automatically, in the
same transaction as the change. This class adds explicit events (``log_*``), queries,
compliance reports, exports, retention and verification. Events are hash-chained and the
chain head is signed with an Ed25519 key kept outside the database, so
:meth:`AuditLogger.verify_chain` detects edited, deleted, inserted, reordered and
rewritten events; :func:`verify_export` checks an export file with no server at all.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from datetime import date, datetime, time
from typing import Any

from neural.mlops._remote.audit import PublishedKey, RemoteAudit
from neural.mlops._runtime import ServiceClient
from neural.mlops.server.audit.checkpoints import Checkpoint
from neural.mlops.server.audit.events import (
    AuditEvent,
    EventInput,
    EventQuery,
    EventSeverity,
    EventType,
    LoggedBatch,
    parse_event_type,
    parse_severity,
)
from neural.mlops.server.audit.export import parse_format, verify_export_file
from neural.mlops.server.audit.exporter import ExportResult
from neural.mlops.server.audit.notary import KeyRotation
from neural.mlops.server.audit.report import ComplianceReport
from neural.mlops.server.audit.retention import PurgeResult
from neural.mlops.server.audit.service import AuditService
from neural.mlops.server.audit.signing import SigningKey
from neural.mlops.server.audit.verify import ChainVerification
from neural.mlops.server.clock import to_us
from neural.mlops.server.errors import InvalidArgument

__all__ = [
    "AuditEvent",
    "AuditLogger",
    "ChainVerification",
    "Checkpoint",
    "ComplianceReport",
    "EventInput",
    "EventList",
    "EventSeverity",
    "EventType",
    "ExportResult",
    "LoggedBatch",
    "KeyRotation",
    "PurgeResult",
    "verify_export",
]

DateLike = datetime | date | str | None


class EventList(list[AuditEvent]):
    """The events of one page (newest first); ``next_page_token`` continues the query."""

    next_page_token: str = ""


def _us(value: DateLike, field: str) -> int | None:
    """µs since the epoch; naive datetimes are local time, like ``datetime.now()``."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidArgument(
                f"{field} is not an ISO date or datetime: {value!r}", field=field
            ) from None
    if isinstance(value, datetime):
        return to_us(value)
    if isinstance(value, date):
        return to_us(datetime.combine(value, time()))
    raise InvalidArgument(f"{field} must be a datetime, a date or an ISO string", field=field)


def _types(
    value: EventType | str | Sequence[EventType | str] | None, field: str
) -> list[EventType]:
    if value is None:
        return []
    if isinstance(value, str | EventType):
        value = [value]
    return [parse_event_type(v, field=field) for v in value]


def _severities(
    value: EventSeverity | str | Sequence[EventSeverity | str] | None,
) -> list[EventSeverity]:
    if value is None:
        return []
    if isinstance(value, str | EventSeverity):
        value = [value]
    return [parse_severity(v) for v in value]


def _input(item: EventInput | Mapping[str, Any]) -> EventInput:
    if isinstance(item, EventInput):
        return item
    try:
        return EventInput(**item)
    except TypeError as exc:
        raise InvalidArgument(f"not an event: {exc}", field="events") from None


def verify_export(
    path: str | os.PathLike[str], public_key: str | bytes | os.PathLike[str] | None = None
) -> ChainVerification:
    """Verify an export file offline. ``public_key`` is the store's public key (PEM text,
    or the path of ``keys/audit_ed25519.pub``) to prove the file came from that store."""
    pem: str | bytes | None = None
    if public_key is not None:
        text = os.fspath(public_key) if isinstance(public_key, os.PathLike) else public_key
        is_pem = (b"BEGIN" in text) if isinstance(text, bytes) else ("BEGIN" in text)
        pem = text if is_pem else open(text, "rb").read()  # noqa: SIM115
    return verify_export_file(path, public_key_pem=pem)


async def _public_key(audit: AuditService | RemoteAudit) -> SigningKey | PublishedKey:
    return await audit.public_key()


class AuditLogger(ServiceClient[AuditService | RemoteAudit]):
    """The seed's audit API, embedded or remote."""

    service = "audit"
    remote = RemoteAudit

    def __init__(self, location: str | os.PathLike[str] = "./audit_logs", *,
                 token: str | None = None, timeout: float = 60.0) -> None:
        super().__init__(location, token=token, timeout=timeout)

    # -- logging ----------------------------------------------------------------

    def log_event(
        self,
        event_type: EventType | str,
        *,
        user: str | None = None,
        resource_type: str = "",
        resource_id: str = "",
        action: str = "",
        details: dict[str, Any] | None = None,
        severity: EventSeverity | str = EventSeverity.INFO,
    ) -> AuditEvent:
        """Append one event. ``user`` is the actor unless the call is authenticated."""
        item = EventInput(parse_event_type(event_type), resource_type, resource_id, action,
                          details, parse_severity(severity), user)
        return self._call(lambda a: a.log_event(item), user)

    def log_events(self, events: Sequence[EventInput | Mapping[str, Any]]) -> LoggedBatch:
        """Append many events in one transaction (all or none): the fast path for ingest."""
        items = [_input(e) for e in events]
        for item in items:
            item.event_type = parse_event_type(item.event_type)
            item.severity = parse_severity(item.severity)
        return self._call(lambda a: a.log_batch(items))

    def log_model_deployment(
        self,
        model_name: str,
        version: str,
        user: str,
        environment: str,
        strategy: str = "",
        details: dict[str, Any] | None = None,
        severity: EventSeverity | str = EventSeverity.INFO,
    ) -> AuditEvent:
        return self.log_event(
            EventType.MODEL_DEPLOYED, user=user, resource_type="model",
            resource_id=f"{model_name}:{version}", action="deploy", severity=severity,
            details={**(details or {}), "model_name": model_name, "version": version,
                     "environment": environment, "strategy": strategy},
        )

    def log_approval_granted(
        self,
        model_name: str,
        version: str,
        approver: str,
        comment: str = "",
        details: dict[str, Any] | None = None,
    ) -> AuditEvent:
        return self.log_event(
            EventType.APPROVAL_GRANTED, user=approver, resource_type="model",
            resource_id=f"{model_name}:{version}", action="approve",
            details={**(details or {}), "model_name": model_name, "version": version,
                     "comment": comment},
        )

    def log_security_violation(
        self,
        user: str,
        resource_type: str,
        resource_id: str,
        action: str,
        details: dict[str, Any] | None = None,
        ip_address: str | None = None,
        severity: EventSeverity | str = EventSeverity.WARNING,
    ) -> AuditEvent:
        """Record a violation by ``user`` (kept in the details as ``user`` too, so it stays
        visible when an authenticated caller reports someone else's violation)."""
        extra: dict[str, Any] = {"user": user}
        if ip_address is not None:
            extra["ip_address"] = ip_address
        return self.log_event(
            EventType.SECURITY_VIOLATION, user=user, resource_type=resource_type,
            resource_id=resource_id, action=action, severity=severity,
            details={**(details or {}), **extra},
        )

    # -- queries ------------------------------------------------------------------

    def query_events(
        self,
        event_type: EventType | str | Sequence[EventType | str] | None = None,
        start_date: DateLike = None,
        end_date: DateLike = None,
        severity: EventSeverity | str | Sequence[EventSeverity | str] | None = None,
        user: str | None = None,
        resource_type: str | None = None,
        resource_id: str | None = None,
        text: str | None = None,
        min_severity: EventSeverity | str | None = None,
        limit: int = 1000,
        page_token: str = "",
    ) -> EventList:
        """Events matching every given filter, newest first, at most ``limit`` (≤ 10000);
        ``result.next_page_token`` fetches the next page. ``severity`` matches exactly,
        ``min_severity`` matches that level and above, ``text`` searches the details."""
        q = EventQuery(
            event_types=_types(event_type, "event_type"),
            severities=_severities(severity),
            min_severity=parse_severity(min_severity, field="min_severity")
            if min_severity
            else None,
            user=user or "",
            resource_type=resource_type or "",
            resource_id=resource_id or "",
            start_us=_us(start_date, "start_date"),
            end_us=_us(end_date, "end_date"),
            text=text or "",
            page_size=limit,
            page_token=page_token,
        )
        page = self._call(lambda a: a.query_events(q))
        out = EventList(page.events)
        out.next_page_token = page.next_page_token
        return out

    def iter_events(self, page_size: int = 1000, **filters: Any) -> Iterator[AuditEvent]:
        """Every matching event, newest first, fetched a page at a time."""
        token = ""
        while True:
            page = self.query_events(limit=page_size, page_token=token, **filters)
            yield from page
            token = page.next_page_token
            if not token:
                return

    # -- reports --------------------------------------------------------------------

    def generate_compliance_report(self, start_date: DateLike,
                                   end_date: DateLike) -> ComplianceReport:
        """Compute, save and return the compliance report of the period."""
        start, end = _us(start_date, "start_date"), _us(end_date, "end_date")
        if start is None or end is None:
            raise InvalidArgument("start_date and end_date are required",
                                  field="start_date" if start is None else "end_date")
        return self._call(lambda a: a.generate_compliance_report(start, end))

    def get_report(self, report_id: str) -> ComplianceReport:
        return self._call(lambda a: a.get_report(report_id))

    def list_reports(self, limit: int = 100) -> list[dict[str, Any]]:
        """The newest saved reports: ``report_id``, ``generated_at``, ``start_date``,
        ``end_date`` (ISO strings) and ``generated_by``."""
        return [r.to_dict() for r in self._call(lambda a: a.list_reports(limit))]

    # -- export -----------------------------------------------------------------------

    def export_audit_trail(
        self,
        output_path: str | os.PathLike[str],
        format: str = "json",  # noqa: A002 (the seed's keyword)
        start_date: DateLike = None,
        end_date: DateLike = None,
    ) -> ExportResult:
        """Write the events of the period, with their chain fields and a signed seal, to
        ``output_path`` where this program runs. The file appears only when complete."""
        fmt = parse_format(format)
        start, end = _us(start_date, "start_date"), _us(end_date, "end_date")
        if start is not None and end is not None and end < start:
            raise InvalidArgument("end_date is before start_date", field="end_date")
        return self._call(lambda a: a.export_to_file(output_path, fmt, start, end))

    # -- integrity ------------------------------------------------------------------

    def verify_chain(self) -> ChainVerification:
        """Verify the stored chain: ``result.valid``, else ``first_bad_event_id`` and ``reason``."""
        return self._call(lambda a: a.verify_chain())

    @staticmethod
    def verify_export(
        path: str | os.PathLike[str], public_key: str | bytes | os.PathLike[str] | None = None
    ) -> ChainVerification:
        return verify_export(path, public_key)

    def checkpoint(self) -> Checkpoint | None:
        """Sign the current chain head now (after verifying the events since the last one)."""
        return self._call(lambda a: a.checkpoint("manual"))

    def list_checkpoints(self) -> list[Checkpoint]:
        return self._call(lambda a: a.list_checkpoints())

    def public_key(self) -> str:
        """The PEM public key that verifies this store's checkpoints and export seals."""
        return self._call(_public_key).public_pem

    def rotate_key(self, reason: str = "", actor: str | None = None) -> KeyRotation:
        """Replace the store's checkpoint key: the old key signs the chain head and endorses
        the new one, the rotation is audited, and the new key signs the head after it. The
        old public key is kept, so earlier checkpoints still verify."""
        if not isinstance(reason, str):
            raise InvalidArgument("reason must be a string", field="reason")
        return self._call(lambda a: a.rotate_key(reason), actor)

    def purge(self, before: DateLike,
              archive_path: str | os.PathLike[str] | None = None) -> PurgeResult:
        """Delete events older than ``before`` after archiving them to a sealed ``jsonl``
        export in the store's ``audit/archive/`` folder (``archive_path``: a file name
        there); a signed checkpoint keeps the remaining chain verifiable."""
        before_us = _us(before, "before")
        if before_us is None:
            raise InvalidArgument("before is required", field="before")
        path = os.fspath(archive_path) if archive_path is not None else None
        return self._call(lambda a: a.purge(before_us, path))
