"""AuditService over gRPC: convert, call the domain, convert back."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from neural.mlops.server.audit import convert
from neural.mlops.server.clock import to_us
from neural.mlops.server.errors import InvalidArgument
from neural.mlops.server.pagination import decode_key, keyset, next_token, page_size
from neural.mlops.server.services import Services
from neural.mlops.server.timestamps import optional_us
from neural.mlops.v1 import audit_pb2 as pb
from neural.mlops.v1 import audit_pb2_grpc

STREAM_CHUNK = 500


class AuditServicer(audit_pb2_grpc.AuditServiceServicer):
    def __init__(self, services: Services) -> None:
        self.audit = services.audit

    async def LogEvent(self, request: pb.LogEventRequest, context: Any) -> pb.AuditEvent:
        ev = await self.audit.log_event(convert.input_from_pb(request.event))
        return convert.event_to_pb(ev)

    async def LogEvents(self, request: pb.LogEventsRequest, context: Any) -> pb.LogEventsResponse:
        batch = await self.audit.log_batch([convert.input_from_pb(e) for e in request.events])
        return pb.LogEventsResponse(first_seq=batch.first_seq, last_seq=batch.last_seq,
                                    event_ids=batch.event_ids, last_hash=batch.last_hash)

    async def QueryEvents(
        self, request: pb.QueryEventsRequest, context: Any
    ) -> AsyncIterator[pb.QueryEventsChunk]:
        page = await self.audit.query_events(convert.query_from_pb(request))
        events = page.events
        for i in range(0, max(len(events), 1), STREAM_CHUNK):
            last = i + STREAM_CHUNK >= len(events)
            yield pb.QueryEventsChunk(
                events=[convert.event_to_pb(e) for e in events[i : i + STREAM_CHUNK]],
                next_page_token=page.next_page_token if last else "",
            )

    async def GenerateComplianceReport(
        self, request: pb.GenerateReportRequest, context: Any
    ) -> pb.ComplianceReportMessage:
        start = optional_us(request, "start_time")
        end = optional_us(request, "end_time")
        if start is None or end is None:
            raise InvalidArgument("start_time and end_time are required",
                                  field="start_date" if start is None else "end_date")
        return convert.report_to_pb(await self.audit.generate_compliance_report(start, end))

    async def GetReport(
        self, request: pb.GetReportRequest, context: Any
    ) -> pb.ComplianceReportMessage:
        return convert.report_to_pb(await self.audit.get_report(request.report_id))

    async def ListReports(
        self, request: pb.ListReportsRequest, context: Any
    ) -> pb.ListReportsResponse:
        size = page_size(request.page_size)
        after = decode_key(request.page_token, "reports", (int, str))
        infos = await self.audit.list_reports(
            size + 1, None if after is None else (int(after[0]), str(after[1])))
        token = next_token("reports", [(to_us(i.generated_at), i.report_id) for i in infos],
                           size)
        return pb.ListReportsResponse(
            reports=[convert.report_info_to_pb(i) for i in infos[:size]],
            next_page_token=token)

    async def ExportAuditTrail(
        self, request: pb.ExportRequest, context: Any
    ) -> AsyncIterator[pb.ExportChunk]:
        stream = self.audit.export_stream(
            convert.format_from_pb(request.format),
            optional_us(request, "start_time"),
            optional_us(request, "end_time"),
            destination=request.destination,
        )
        async for item in stream:
            if isinstance(item, dict):
                yield pb.ExportChunk(seal_json=json.dumps(item))
            elif item:
                yield pb.ExportChunk(data=item)

    async def VerifyChain(
        self, request: pb.VerifyChainRequest, context: Any
    ) -> pb.ChainVerification:
        return convert.verification_to_pb(await self.audit.verify_chain())

    async def CreateCheckpoint(
        self, request: pb.CheckpointRequest, context: Any
    ) -> pb.CheckpointResponse:
        cp = await self.audit.checkpoint("manual")
        return pb.CheckpointResponse(checkpoint=convert.optional_checkpoint_to_pb(cp))

    async def ListCheckpoints(
        self, request: pb.ListCheckpointsRequest, context: Any
    ) -> pb.ListCheckpointsResponse:
        cps, token = keyset(await self.audit.list_checkpoints(), request.page_size,
                            request.page_token, listing="checkpoints",
                            key=lambda c: (c.seq, c.created_us, c.signature),
                            kinds=(int, int, str))
        return pb.ListCheckpointsResponse(checkpoints=[convert.checkpoint_to_pb(c) for c in cps],
                                          next_page_token=token)

    async def Purge(self, request: pb.PurgeRequest, context: Any) -> pb.PurgeResponse:
        before = optional_us(request, "before")
        if before is None:
            raise InvalidArgument("before is required", field="before")
        result = await self.audit.purge(before, request.archive_path or None)
        return convert.purge_to_pb(result)

    async def RotateKey(self, request: pb.RotateKeyRequest, context: Any) -> pb.RotateKeyResponse:
        return convert.rotation_to_pb(await self.audit.rotate_key(request.reason))

    async def GetPublicKey(
        self, request: pb.GetPublicKeyRequest, context: Any
    ) -> pb.GetPublicKeyResponse:
        key = self.audit.current_key()
        return pb.GetPublicKeyResponse(key_id=key.key_id, public_key_pem=key.public_pem)
