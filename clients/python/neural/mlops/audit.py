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

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from datetime import date, datetime, time
from typing import Any

from neural.mlops._runtime import ServiceClient
from neural.mlops.server.audit import convert as c
from neural.mlops.server.audit.events import (
    AuditEvent,
    EventSeverity,
    EventType,
    parse_event_type,
    parse_severity,
)
from neural.mlops.server.audit.export import AtomicOutput, parse_format, verify_export_file
from neural.mlops.server.audit.report import ComplianceReport
from neural.mlops.server.audit.service import (
    Checkpoint,
    EventInput,
    EventQuery,
    ExportResult,
    KeyRotation,
    LoggedBatch,
    PurgeResult,
)
from neural.mlops.server.audit.verify import ChainVerification
from neural.mlops.server.clock import to_us
from neural.mlops.server.errors import InvalidArgument
from neural.mlops.v1 import audit_pb2 as pb
from neural.mlops.v1.audit_pb2_grpc import AuditServiceStub

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
            raise InvalidArgument(f"{field} is not an ISO date or datetime: {value!r}", field=field) from None
    if isinstance(value, datetime):
        return to_us(value)
    if isinstance(value, date):
        return to_us(datetime.combine(value, time()))
    raise InvalidArgument(f"{field} must be a datetime, a date or an ISO string", field=field)


def _types(value: EventType | str | Sequence[EventType | str] | None, field: str) -> list[EventType]:
    if value is None:
        return []
    if isinstance(value, str | EventType):
        value = [value]
    return [parse_event_type(v, field=field) for v in value]


def _severities(value: EventSeverity | str | Sequence[EventSeverity | str] | None) -> list[EventSeverity]:
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


def verify_export(path: str | os.PathLike[str], public_key: str | bytes | os.PathLike[str] | None = None) -> ChainVerification:
    """Verify an export file offline. ``public_key`` is the store's public key (PEM text,
    or the path of ``keys/audit_ed25519.pub``) to prove the file came from that store."""
    pem: str | bytes | None = None
    if public_key is not None:
        text = os.fspath(public_key) if isinstance(public_key, os.PathLike) else public_key
        is_pem = (b"BEGIN" in text) if isinstance(text, bytes) else ("BEGIN" in text)
        pem = text if is_pem else open(text, "rb").read()  # noqa: SIM115
    return verify_export_file(path, public_key_pem=pem)


class AuditLogger(ServiceClient):
    """The seed's audit API, embedded or remote."""

    service = "audit"
    stub_class = AuditServiceStub

    def __init__(self, location: str | os.PathLike[str] = "./audit_logs", *, token: str | None = None,
                 timeout: float = 60.0) -> None:
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
        if self._embedded is not None:
            return self._local(lambda a: a.log_event(item), user)  # type: ignore[no-any-return]
        return c.event_from_pb(self._rpc("LogEvent", pb.LogEventRequest(event=c.input_to_pb(item)), user))

    def log_events(self, events: Sequence[EventInput | Mapping[str, Any]]) -> LoggedBatch:
        """Append many events in one transaction (all or none): the fast path for ingest."""
        items = [_input(e) for e in events]
        for item in items:
            item.event_type = parse_event_type(item.event_type)
            item.severity = parse_severity(item.severity)
        if self._embedded is not None:
            return self._local(lambda a: a.log_batch(items))  # type: ignore[no-any-return]
        resp = self._rpc("LogEvents", pb.LogEventsRequest(events=[c.input_to_pb(i) for i in items]))
        return LoggedBatch(resp.first_seq, resp.last_seq, list(resp.event_ids), resp.last_hash)

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
            event_types=_types(event_type, "event_type"), severities=_severities(severity),
            min_severity=parse_severity(min_severity, field="min_severity") if min_severity else None,
            user=user or "", resource_type=resource_type or "", resource_id=resource_id or "",
            start_us=_us(start_date, "start_date"), end_us=_us(end_date, "end_date"),
            text=text or "", page_size=limit, page_token=page_token,
        )
        out = EventList()
        if self._embedded is not None:
            page = self._local(lambda a: a.query_events(q))
            out.extend(page.events)
            out.next_page_token = page.next_page_token
            return out
        for chunk in self._stream("QueryEvents", c.query_to_pb(q)):
            out.extend(c.event_from_pb(e) for e in chunk.events)
            if chunk.next_page_token:
                out.next_page_token = chunk.next_page_token
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

    def generate_compliance_report(self, start_date: DateLike, end_date: DateLike) -> ComplianceReport:
        """Compute, save and return the compliance report of the period."""
        start, end = _us(start_date, "start_date"), _us(end_date, "end_date")
        if start is None or end is None:
            raise InvalidArgument("start_date and end_date are required",
                                  field="start_date" if start is None else "end_date")
        if self._embedded is not None:
            return self._local(lambda a: a.generate_compliance_report(start, end))  # type: ignore[no-any-return]
        req = pb.GenerateReportRequest(start_time=c.us_to_ts(start), end_time=c.us_to_ts(end))
        return c.report_from_pb(self._rpc("GenerateComplianceReport", req))

    def get_report(self, report_id: str) -> ComplianceReport:
        if self._embedded is not None:
            return self._local(lambda a: a.get_report(report_id))  # type: ignore[no-any-return]
        return c.report_from_pb(self._rpc("GetReport", pb.GetReportRequest(report_id=report_id)))

    def list_reports(self, limit: int = 100) -> list[dict[str, Any]]:
        if self._embedded is not None:
            return self._local(lambda a: a.list_reports(limit))  # type: ignore[no-any-return]
        resp = self._rpc("ListReports", pb.ListReportsRequest(limit=limit))
        return [{"report_id": r.report_id, "generated_at": r.generated_at, "start_date": r.start_date,
                 "end_date": r.end_date, "generated_by": r.generated_by} for r in resp.reports]

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
        if self._embedded is not None:
            return self._local(lambda a: a.export_to_file(output_path, fmt, start, end))  # type: ignore[no-any-return]
        out = AtomicOutput(output_path)
        seal: dict[str, Any] = {}
        try:
            req = pb.ExportRequest(format=fmt, destination=str(out.path.resolve()))
            if start is not None:
                req.start_time.CopyFrom(c.us_to_ts(start))
            if end is not None:
                req.end_time.CopyFrom(c.us_to_ts(end))
            for chunk in self._stream("ExportAuditTrail", req):
                if chunk.seal_json:
                    seal = json.loads(chunk.seal_json)
                if chunk.data:
                    out.write(chunk.data)
            if not seal:
                raise InvalidArgument("the server sent no export seal", field="format")
            final = out.commit()
        except BaseException:
            out.abort()
            raise
        return ExportResult(str(final), fmt, seal["count"], seal["first_seq"], seal["last_seq"],
                            out.bytes_written, seal)

    # -- integrity ------------------------------------------------------------------

    def verify_chain(self) -> ChainVerification:
        """Verify the stored chain: ``result.valid``, else ``first_bad_event_id`` and ``reason``."""
        if self._embedded is not None:
            return self._local(lambda a: a.verify_chain())  # type: ignore[no-any-return]
        return c.verification_from_pb(self._rpc("VerifyChain", pb.VerifyChainRequest()))

    @staticmethod
    def verify_export(path: str | os.PathLike[str], public_key: str | bytes | os.PathLike[str] | None = None) -> ChainVerification:
        return verify_export(path, public_key)

    def checkpoint(self) -> Checkpoint | None:
        """Sign the current chain head now (after verifying the events since the last one)."""
        if self._embedded is not None:
            return self._local(lambda a: a.checkpoint("manual"))  # type: ignore[no-any-return]
        resp = self._rpc("CreateCheckpoint", pb.CheckpointRequest())
        return c.checkpoint_from_pb(resp.checkpoint) if resp.HasField("checkpoint") else None

    def list_checkpoints(self) -> list[Checkpoint]:
        if self._embedded is not None:
            return self._local(lambda a: a.list_checkpoints())  # type: ignore[no-any-return]
        resp = self._rpc("ListCheckpoints", pb.ListCheckpointsRequest())
        return [c.checkpoint_from_pb(cp) for cp in resp.checkpoints]

    def public_key(self) -> str:
        """The PEM public key that verifies this store's checkpoints and export seals."""
        if self._embedded is not None:
            return self._local(lambda a: _async_value(a.current_key().public_pem))  # type: ignore[no-any-return]
        return str(self._rpc("GetPublicKey", pb.GetPublicKeyRequest()).public_key_pem)

    def rotate_key(self, reason: str = "", actor: str | None = None) -> KeyRotation:
        """Replace the store's checkpoint key: the old key signs the chain head and endorses
        the new one, the rotation is audited, and the new key signs the head after it. The
        old public key is kept, so earlier checkpoints still verify."""
        if not isinstance(reason, str):
            raise InvalidArgument("reason must be a string", field="reason")
        if self._embedded is not None:
            return self._local(lambda a: a.rotate_key(reason), actor)  # type: ignore[no-any-return]
        return c.rotation_from_pb(self._rpc("RotateKey", pb.RotateKeyRequest(reason=reason), actor))

    def purge(self, before: DateLike, archive_path: str | os.PathLike[str] | None = None) -> PurgeResult:
        """Delete events older than ``before`` after archiving them to a sealed ``jsonl``
        export in the store's ``audit/archive/`` folder (``archive_path``: a file name
        there); a signed checkpoint keeps the remaining chain verifiable."""
        before_us = _us(before, "before")
        if before_us is None:
            raise InvalidArgument("before is required", field="before")
        path = os.fspath(archive_path) if archive_path is not None else None
        if self._embedded is not None:
            return self._local(lambda a: a.purge(before_us, path))  # type: ignore[no-any-return]
        resp = self._rpc("Purge", pb.PurgeRequest(before=c.us_to_ts(before_us), archive_path=path or ""))
        return c.purge_from_pb(resp, before_us)


async def _async_value(value: Any) -> Any:
    return value
