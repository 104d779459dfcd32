"""AuditService's public methods over gRPC (the mirror of the audit servicer)."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from neural.mlops._remote.connection import RemoteConnection
from neural.mlops.server.audit import convert as c
from neural.mlops.server.audit.checkpoints import Checkpoint
from neural.mlops.server.audit.events import (
    AuditEvent,
    EventInput,
    EventPage,
    EventQuery,
    LoggedBatch,
)
from neural.mlops.server.audit.export import parse_format
from neural.mlops.server.audit.exporter import ExportResult, write_export
from neural.mlops.server.audit.notary import KeyRotation
from neural.mlops.server.audit.report import ComplianceReport, ReportInfo
from neural.mlops.server.audit.retention import PurgeResult
from neural.mlops.server.audit.verify import ChainVerification
from neural.mlops.server.errors import InvalidArgument
from neural.mlops.server.pagination import MAX_PAGE_SIZE
from neural.mlops.server.timestamps import us_to_timestamp
from neural.mlops.v1 import audit_pb2 as pb
from neural.mlops.v1.audit_pb2_grpc import AuditServiceStub


@dataclass(frozen=True, slots=True)
class PublishedKey:
    """The public half of a control plane's checkpoint key."""

    key_id: str
    public_pem: str


class RemoteAudit:
    def __init__(self, conn: RemoteConnection) -> None:
        self._conn = conn
        self._stub = conn.stub(AuditServiceStub)

    async def log_event(self, item: EventInput) -> AuditEvent:
        req = pb.LogEventRequest(event=c.input_to_pb(item))
        return c.event_from_pb(await self._conn.unary(self._stub.LogEvent, req))

    async def log_batch(self, items: Sequence[EventInput]) -> LoggedBatch:
        req = pb.LogEventsRequest(events=[c.input_to_pb(i) for i in items])
        resp = await self._conn.unary(self._stub.LogEvents, req)
        return LoggedBatch(resp.first_seq, resp.last_seq, list(resp.event_ids), resp.last_hash)

    async def query_events(self, q: EventQuery) -> EventPage:
        page = EventPage([])
        async for chunk in self._conn.stream(self._stub.QueryEvents, c.query_to_pb(q)):
            page.events.extend(c.event_from_pb(e) for e in chunk.events)
            page.next_page_token = chunk.next_page_token or page.next_page_token
        return page

    async def checkpoint(self, kind: str = "manual") -> Checkpoint | None:
        """A manual checkpoint (the only kind a caller may ask a control plane for)."""
        if kind != "manual":
            raise InvalidArgument("a control plane takes manual checkpoints only", field="kind")
        resp = await self._conn.unary(self._stub.CreateCheckpoint, pb.CheckpointRequest())
        return c.checkpoint_from_pb(resp.checkpoint) if resp.HasField("checkpoint") else None

    async def list_checkpoints(self) -> list[Checkpoint]:
        found: list[Checkpoint] = []
        token = ""
        while True:  # every page: the method's documented result is every checkpoint
            req = pb.ListCheckpointsRequest(page_size=MAX_PAGE_SIZE, page_token=token)
            resp = await self._conn.unary(self._stub.ListCheckpoints, req)
            found += [c.checkpoint_from_pb(cp) for cp in resp.checkpoints]
            if not (token := resp.next_page_token):
                return found

    async def public_key(self) -> PublishedKey:
        resp = await self._conn.unary(self._stub.GetPublicKey, pb.GetPublicKeyRequest())
        return PublishedKey(resp.key_id, resp.public_key_pem)

    async def rotate_key(self, reason: str = "") -> KeyRotation:
        req = pb.RotateKeyRequest(reason=reason)
        return c.rotation_from_pb(await self._conn.unary(self._stub.RotateKey, req))

    async def verify_chain(self) -> ChainVerification:
        resp = await self._conn.unary(self._stub.VerifyChain, pb.VerifyChainRequest())
        return c.verification_from_pb(resp)

    async def export_stream(
        self, fmt: str, start_us: int | None = None, end_us: int | None = None, *,
        destination: str = "",
    ) -> AsyncIterator[dict[str, Any] | bytes]:
        """The seal (a dict), then the bytes of the export file, as the server sends them."""
        req = pb.ExportRequest(format=c.format_to_pb(parse_format(fmt)),
                               destination=destination)
        if start_us is not None:
            req.start_time.CopyFrom(us_to_timestamp(start_us))
        if end_us is not None:
            req.end_time.CopyFrom(us_to_timestamp(end_us))
        async for chunk in self._conn.stream(self._stub.ExportAuditTrail, req):
            if chunk.seal_json:
                yield json.loads(chunk.seal_json)
            if chunk.data:
                yield chunk.data

    async def export_to_file(self, path: str | os.PathLike[str], fmt: str,
                             start_us: int | None = None,
                             end_us: int | None = None) -> ExportResult:
        """Write the export where this program runs, not where the server does."""
        return await write_export(path, fmt, lambda destination: self.export_stream(
            fmt, start_us, end_us, destination=destination))

    async def purge(self, before_us: int, archive_path: str | None = None) -> PurgeResult:
        req = pb.PurgeRequest(before=us_to_timestamp(before_us), archive_path=archive_path or "")
        return c.purge_from_pb(await self._conn.unary(self._stub.Purge, req), before_us)

    async def generate_compliance_report(self, start_us: int, end_us: int) -> ComplianceReport:
        req = pb.GenerateReportRequest(
            start_time=us_to_timestamp(start_us), end_time=us_to_timestamp(end_us)
        )
        return c.report_from_pb(await self._conn.unary(self._stub.GenerateComplianceReport, req))

    async def get_report(self, report_id: str) -> ComplianceReport:
        req = pb.GetReportRequest(report_id=report_id)
        return c.report_from_pb(await self._conn.unary(self._stub.GetReport, req))

    async def list_reports(self, limit: int = 100) -> list[ReportInfo]:
        found: list[ReportInfo] = []
        token = ""
        while len(found) < limit:  # pages until ``limit`` reports or the last page
            size = min(limit - len(found), MAX_PAGE_SIZE)
            resp = await self._conn.unary(self._stub.ListReports,
                                          pb.ListReportsRequest(page_size=size, page_token=token))
            found += [c.report_info_from_pb(r) for r in resp.reports]
            if not (token := resp.next_page_token):
                break
        return found
