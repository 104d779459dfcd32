"""``GET /api/download/audit-export?format=jsonl|csv&start_time=...&end_time=...``: the
audit trail export as a file download.

The console calls ``ExportAuditTrail`` with the session's credential (the server checks
``audit.report`` and records the export with its seal), then streams the file bytes with
``Content-Disposition: attachment``. The signed seal, which the server sends first, goes
in the ``X-Neural-Audit-Seal`` header (base64url of its JSON); ``&part=seal`` downloads
the seal alone as ``<file>.seal.json``.
"""

from __future__ import annotations

import base64
import secrets
from typing import Any

import grpc
from aiohttp import web
from google.protobuf import json_format

from neural.mlops.server.console import status as st
from neural.mlops.server.console.gateway import CALL_TIMEOUT_SECONDS, Gateway
from neural.mlops.server.console.sessions import Session
from neural.mlops.v1 import audit_pb2

EXPORT = "/neural.mlops.v1.AuditService/ExportAuditTrail"
FORMATS = {"jsonl": "application/x-ndjson", "csv": "text/csv", "json": "application/json"}
FILTERS = ("start_time", "end_time")


def _export_request(query: Any) -> audit_pb2.ExportRequest:
    """The request from the query string; ValueError naming the wrong parameter."""
    fmt = query.get("format", "jsonl").lower()
    if fmt not in FORMATS:
        raise ValueError(f"format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
    unknown = sorted(set(query) - {"format", "part", *FILTERS})
    if unknown:
        raise ValueError(f"unknown parameter(s): {', '.join(unknown)}")
    field = audit_pb2.ExportRequest.DESCRIPTOR.fields_by_name["format"]
    data: dict[str, Any] = {k: query[k] for k in FILTERS if query.get(k)}
    if field.enum_type is not None:  # the format as an enum: its value named *_<FORMAT>
        names = [v.name for v in field.enum_type.values if v.name.endswith("_" + fmt.upper())]
        data["format"] = names[0] if names else fmt
    else:
        data["format"] = fmt
    data["destination"] = "console download"
    request = audit_pb2.ExportRequest()
    try:
        json_format.ParseDict(data, request)
    except json_format.ParseError as exc:
        raise ValueError(str(exc)) from None
    return request


async def audit_export(request: web.Request, gateway: Gateway,
                       session: Session) -> web.StreamResponse:
    try:
        export = _export_request(request.query)
    except ValueError as exc:
        return st.error(grpc.StatusCode.INVALID_ARGUMENT, str(exc), "INVALID_FIELD")
    fmt = request.query.get("format", "jsonl").lower()
    stream = gateway.channel.unary_stream(
        EXPORT, request_serializer=audit_pb2.ExportRequest.SerializeToString,
        response_deserializer=audit_pb2.ExportChunk.FromString)
    call = stream(export, metadata=gateway.metadata(session, secrets.token_hex(8)),
                  timeout=CALL_TIMEOUT_SECONDS)
    chunks = call.__aiter__()
    try:
        first = await chunks.__anext__()
    except grpc.aio.AioRpcError as exc:
        return st.status_response(st.from_rpc_error(exc))
    except StopAsyncIteration:
        first = audit_pb2.ExportChunk()
    name = f"audit-export.{fmt}"
    seal = base64.urlsafe_b64encode(first.seal_json.encode()).decode()
    if request.query.get("part") == "seal":
        call.cancel()
        disposition = f'attachment; filename="{name}.seal.json"'
        return web.Response(body=first.seal_json.encode(), content_type="application/json",
                            headers={"Content-Disposition": disposition})
    response = web.StreamResponse(headers={
        "Content-Type": FORMATS[fmt],
        "Content-Disposition": f'attachment; filename="{name}"',
        "X-Neural-Audit-Seal": seal,
    })
    await response.prepare(request)
    if first.data:
        await response.write(first.data)
    async for chunk in chunks:  # a failure past the headers cuts the download short
        await response.write(chunk.data)
    await response.write_eof()
    return response
