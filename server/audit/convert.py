"""Audit domain objects <-> protobuf, shared by the servicer and the remote client."""

from __future__ import annotations

import json
from dataclasses import asdict

from neural.mlops.server.audit.checkpoints import Checkpoint
from neural.mlops.server.audit.events import (
    AuditEvent,
    EventInput,
    EventQuery,
    EventSeverity,
    EventType,
    parse_event_type,
    parse_severity,
)
from neural.mlops.server.audit.hashchain import canonical_details
from neural.mlops.server.audit.notary import KeyRotation
from neural.mlops.server.audit.report import ComplianceReport, ReportInfo
from neural.mlops.server.audit.retention import PurgeResult
from neural.mlops.server.audit.verify import ChainVerification
from neural.mlops.server.clock import from_us, to_us
from neural.mlops.server.errors import InvalidArgument
from neural.mlops.server.timestamps import from_timestamp, timestamp_to_us
from neural.mlops.server.timestamps import optional_us as ts_to_us
from neural.mlops.server.timestamps import to_timestamp as dt_to_ts
from neural.mlops.server.timestamps import us_to_timestamp as us_to_ts
from neural.mlops.v1 import audit_pb2 as pb

# EVENT_TYPE_MODEL_DEPLOYED <-> EventType.MODEL_DEPLOYED: the enum value's name without its
# prefix is the Python member's name (and, in lower case, the hashed string). Read from the
# module's constants, typed as the enum (EnumTypeWrapper.Value is typed int); keyed by str,
# as the enums are StrEnums and an event from a newer store may hold an unknown string.
TYPE_TO_PB: dict[str, pb.EventType] = {t: getattr(pb, f"EVENT_TYPE_{t.name}") for t in EventType}
TYPE_FROM_PB: dict[int, EventType] = {int(v): EventType(k) for k, v in TYPE_TO_PB.items()}
SEVERITY_TO_PB: dict[str, pb.Severity] = {
    s: getattr(pb, f"SEVERITY_{s.name}") for s in EventSeverity
}
SEVERITY_FROM_PB: dict[int, EventSeverity] = {
    int(v): EventSeverity(k) for k, v in SEVERITY_TO_PB.items()
}
_SIGNATURE_TO_PB = {None: pb.SIGNATURE_STATE_NOT_CHECKED, True: pb.SIGNATURE_STATE_VALID,
                    False: pb.SIGNATURE_STATE_INVALID}


def _type_to_pb(value: EventType | str, field: str = "event_type") -> pb.EventType:
    return TYPE_TO_PB[parse_event_type(value, field=field)]


def _severity_to_pb(value: EventSeverity | str, field: str = "severity") -> pb.Severity:
    return SEVERITY_TO_PB[parse_severity(value, field=field)]


def _type_from_pb(value: int, field: str) -> EventType:
    found = TYPE_FROM_PB.get(int(value))
    if found is None:
        raise InvalidArgument(f"{field} is required", field=field)
    return found


def _severity_from_pb(value: int, field: str) -> EventSeverity:
    found = SEVERITY_FROM_PB.get(int(value))
    if found is None:
        raise InvalidArgument(f"{field} is required", field=field)
    return found


def event_to_pb(ev: AuditEvent) -> pb.AuditEvent:
    # A type or severity this build does not know (a newer store) is sent as UNSPECIFIED.
    return pb.AuditEvent(
        event_id=ev.event_id, seq=ev.seq, time=us_to_ts(to_us(ev.timestamp)),
        event_type=TYPE_TO_PB.get(ev.event_type, pb.EVENT_TYPE_UNSPECIFIED),
        severity=SEVERITY_TO_PB.get(ev.severity, pb.SEVERITY_UNSPECIFIED),
        actor=ev.actor,
        resource_type=ev.resource_type, resource_id=ev.resource_id, action=ev.action,
        # As hashed (the event's version's canonical form), so that a verifier in any
        # language can recompute ``hash`` from this message alone (AUDIT.md).
        details_json=canonical_details(ev.details, ev.hash_version),
        request_id=ev.request_id, peer=ev.peer, prev_hash=ev.prev_hash, hash=ev.hash,
        hash_version=ev.hash_version,
    )


def event_from_pb(msg: pb.AuditEvent) -> AuditEvent:
    return AuditEvent(
        event_id=msg.event_id, seq=msg.seq, timestamp=from_us(timestamp_to_us(msg.time, "time")),
        event_type=TYPE_FROM_PB.get(msg.event_type, ""),
        severity=SEVERITY_FROM_PB.get(msg.severity, ""),
        actor=msg.actor, resource_type=msg.resource_type, resource_id=msg.resource_id,
        action=msg.action, details=json.loads(msg.details_json or "{}"),
        request_id=msg.request_id, peer=msg.peer, prev_hash=msg.prev_hash, hash=msg.hash,
        hash_version=msg.hash_version or 1,
    )


def input_to_pb(item: EventInput) -> pb.EventInput:
    try:
        details = json.dumps(item.details or {}, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(
            f"details are not JSON-serialisable: {exc}", field="details"
        ) from None
    return pb.EventInput(
        event_type=_type_to_pb(item.event_type), severity=_severity_to_pb(item.severity),
        user=item.user or "",
        resource_type=item.resource_type, resource_id=item.resource_id, action=item.action,
        details_json=details,
    )


def input_from_pb(msg: pb.EventInput) -> EventInput:
    try:
        details = json.loads(msg.details_json) if msg.details_json else {}
    except ValueError:
        raise InvalidArgument("details_json is not valid JSON", field="details") from None
    return EventInput(
        event_type=_type_from_pb(msg.event_type, "event_type"), resource_type=msg.resource_type,
        resource_id=msg.resource_id, action=msg.action, details=details,
        severity=SEVERITY_FROM_PB.get(msg.severity, EventSeverity.INFO), user=msg.user or None,
    )


def query_to_pb(q: EventQuery) -> pb.QueryEventsRequest:
    msg = pb.QueryEventsRequest(
        event_types=[_type_to_pb(t, "event_types") for t in q.event_types],
        severities=[_severity_to_pb(s, "severities") for s in q.severities],
        min_severity=(_severity_to_pb(q.min_severity, "min_severity") if q.min_severity
                      else pb.SEVERITY_UNSPECIFIED),
        user=q.user, resource_type=q.resource_type,
        resource_id=q.resource_id, text=q.text, page_size=q.page_size, page_token=q.page_token,
    )
    if q.start_us is not None:
        msg.start_time.CopyFrom(us_to_ts(q.start_us))
    if q.end_us is not None:
        msg.end_time.CopyFrom(us_to_ts(q.end_us))
    return msg


def query_from_pb(msg: pb.QueryEventsRequest) -> EventQuery:
    return EventQuery(
        event_types=[_type_from_pb(t, f"event_types[{i}]") for i, t in enumerate(msg.event_types)],
        severities=[_severity_from_pb(s, f"severities[{i}]") for i, s in enumerate(msg.severities)],
        min_severity=SEVERITY_FROM_PB.get(msg.min_severity), user=msg.user,
        resource_type=msg.resource_type, resource_id=msg.resource_id,
        start_us=ts_to_us(msg, "start_time"), end_us=ts_to_us(msg, "end_time"),
        text=msg.text, page_size=msg.page_size, page_token=msg.page_token,
    )


def report_to_pb(report: ComplianceReport) -> pb.ComplianceReportMessage:
    return pb.ComplianceReportMessage(
        report_id=report.report_id, total_events=report.total_events,
        chain_valid=report.chain_valid, report_json=json.dumps(report.to_dict()),
    )


def report_from_pb(msg: pb.ComplianceReportMessage) -> ComplianceReport:
    return ComplianceReport.from_dict(json.loads(msg.report_json))


def report_info_to_pb(info: ReportInfo) -> pb.ReportInfo:
    return pb.ReportInfo(report_id=info.report_id, generated_by=info.generated_by,
                         generated_at=dt_to_ts(info.generated_at),
                         start_time=dt_to_ts(info.start_date), end_time=dt_to_ts(info.end_date))


def report_info_from_pb(msg: pb.ReportInfo) -> ReportInfo:
    return ReportInfo(msg.report_id, from_timestamp(msg.generated_at),
                      from_timestamp(msg.start_time), from_timestamp(msg.end_time),
                      msg.generated_by)


def verification_to_pb(v: ChainVerification) -> pb.ChainVerification:
    d = asdict(v)
    sig = d.pop("signature_valid")
    return pb.ChainVerification(**d, signature_state=_SIGNATURE_TO_PB[sig])


def verification_from_pb(msg: pb.ChainVerification) -> ChainVerification:
    return ChainVerification(
        valid=msg.valid, events_checked=msg.events_checked, first_seq=msg.first_seq,
        last_seq=msg.last_seq, last_hash=msg.last_hash,
        first_bad_event_id=msg.first_bad_event_id, first_bad_seq=msg.first_bad_seq,
        reason=msg.reason, checkpoints_checked=msg.checkpoints_checked,
        signature_valid={pb.SIGNATURE_STATE_VALID: True, pb.SIGNATURE_STATE_INVALID: False}.get(
            msg.signature_state),
        key_id=msg.key_id, notes=list(msg.notes),
    )


def _kind_to_pb(kind: str) -> str:
    name = f"CHECKPOINT_KIND_{kind.upper()}"
    # A kind this build does not know goes as UNSPECIFIED.
    return name if name in pb.CheckpointKind.keys() else "CHECKPOINT_KIND_UNSPECIFIED"


def _kind_from_pb(kind: int) -> str:
    if kind == pb.CHECKPOINT_KIND_UNSPECIFIED or kind not in pb.CheckpointKind.values():
        return ""
    return pb.CheckpointKind.Name(kind).removeprefix("CHECKPOINT_KIND_").lower()


def checkpoint_to_pb(cp: Checkpoint) -> pb.Checkpoint:
    return pb.Checkpoint(seq=cp.seq, hash=cp.hash, created_at=us_to_ts(cp.created_us),
                         kind=_kind_to_pb(cp.kind), key_id=cp.key_id, signature=cp.signature)


def format_to_pb(fmt: str) -> str:
    """The wire name of an export format (one export.parse_format accepted)."""
    return f"EXPORT_FORMAT_{fmt.upper()}"


def format_from_pb(value: int) -> str:
    """The export format a request names; UNSPECIFIED is refused naming ``format``."""
    if value == pb.EXPORT_FORMAT_UNSPECIFIED or value not in pb.ExportFormat.values():
        raise InvalidArgument("format is required: EXPORT_FORMAT_JSON, EXPORT_FORMAT_JSONL or "
                              "EXPORT_FORMAT_CSV", field="format")
    return pb.ExportFormat.Name(value).removeprefix("EXPORT_FORMAT_").lower()


def optional_checkpoint_to_pb(cp: Checkpoint | None) -> pb.Checkpoint | None:
    """None stays None: a message field left unset means no checkpoint."""
    return None if cp is None else checkpoint_to_pb(cp)


def checkpoint_from_pb(msg: pb.Checkpoint) -> Checkpoint:
    return Checkpoint(
        msg.seq,
        msg.hash,
        timestamp_to_us(msg.created_at, "created_at"),
        _kind_from_pb(msg.kind),
        msg.key_id,
        msg.signature,
    )


def _checkpoint_field(msg: pb.RotateKeyResponse | pb.PurgeResponse) -> Checkpoint | None:
    return checkpoint_from_pb(msg.checkpoint) if msg.HasField("checkpoint") else None


def rotation_to_pb(r: KeyRotation) -> pb.RotateKeyResponse:
    return pb.RotateKeyResponse(old_key_id=r.old_key_id, new_key_id=r.new_key_id,
                                public_key_pem=r.public_key_pem, endorsement=r.endorsement,
                                checkpoint=optional_checkpoint_to_pb(r.checkpoint))


def rotation_from_pb(msg: pb.RotateKeyResponse) -> KeyRotation:
    return KeyRotation(msg.old_key_id, msg.new_key_id, msg.public_key_pem, msg.endorsement,
                       _checkpoint_field(msg))


def purge_to_pb(r: PurgeResult) -> pb.PurgeResponse:
    return pb.PurgeResponse(purged_count=r.purged_count, first_seq=r.first_seq,
                            last_seq=r.last_seq, archive_path=r.archive_path,
                            checkpoint=optional_checkpoint_to_pb(r.checkpoint))


def purge_from_pb(msg: pb.PurgeResponse, before_us: int) -> PurgeResult:
    return PurgeResult(msg.purged_count, msg.first_seq, msg.last_seq, before_us,
                       msg.archive_path, _checkpoint_field(msg))
