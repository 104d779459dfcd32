"""Errors as the console API answers them: a google.rpc.Status as JSON with the HTTP
status of its gRPC code (the mapping of google.api's HTTP annotations guide).

The body is ``{"code": <int>, "message": "...", "details": [{"@type": ...}, ...]}``; the
details are the ones the gRPC server sent in ``grpc-status-details-bin``
(:func:`neural.mlops.server.grpc_errors.status_details`), so a console caller reads the
same ``ErrorInfo`` / ``BadRequest`` / ``PreconditionFailure`` as a gRPC caller.
"""

from __future__ import annotations

import json
from typing import Any

import grpc
from aiohttp import web
from google.protobuf import json_format
from google.rpc import error_details_pb2, status_pb2

from neural.mlops.server.grpc_errors import ERROR_DOMAIN, STATUS_DETAILS_KEY

# gRPC status code -> HTTP status (the console contract, docs/security.md).
HTTP_STATUS: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}
_CODES = {code.value[0]: code for code in grpc.StatusCode}


def http_status(code: int) -> int:
    """The HTTP status of a numeric gRPC code (500 for the rest: UNKNOWN, INTERNAL...)."""
    return HTTP_STATUS.get(_CODES.get(code, grpc.StatusCode.UNKNOWN), 500)


def status_json(status: status_pb2.Status) -> dict[str, Any]:
    """google.rpc.Status in the protobuf JSON mapping (details carry ``@type``)."""
    out = json_format.MessageToDict(status, preserving_proto_field_name=True)
    out.setdefault("code", status.code)
    out.setdefault("message", status.message)
    out.setdefault("details", [])
    return out


def status_response(status: status_pb2.Status, http: int | None = None,
                    headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=http if http is not None else http_status(status.code),
        text=json.dumps(status_json(status)), content_type="application/json",
        headers=headers,
    )


def error(code: grpc.StatusCode, message: str, reason: str, *, field: str = "",
          http: int | None = None) -> web.Response:
    """An error the console itself decides (no RPC ran): the same shape as the server's,
    an ``ErrorInfo`` with ``reason`` and, for INVALID_ARGUMENT on a field, a BadRequest."""
    status = status_pb2.Status(code=code.value[0], message=message)
    info = error_details_pb2.ErrorInfo(reason=reason, domain=ERROR_DOMAIN)
    if field:
        info.metadata["field"] = field
    status.details.add().Pack(info)
    if field and code is grpc.StatusCode.INVALID_ARGUMENT:
        violation = error_details_pb2.BadRequest.FieldViolation(
            field=field, description=message, reason=reason)
        status.details.add().Pack(error_details_pb2.BadRequest(field_violations=[violation]))
    return status_response(status, http)


def from_rpc_error(exc: grpc.aio.AioRpcError) -> status_pb2.Status:
    """The Status a failed call carried: its details when the server sent them, else
    the code and message alone."""
    for key, value in exc.trailing_metadata() or ():
        if key == STATUS_DETAILS_KEY and isinstance(value, bytes):
            status = status_pb2.Status()
            try:
                status.ParseFromString(value)
            except Exception:  # noqa: BLE001 - a malformed trailer: fall back below
                break
            return status
    return status_pb2.Status(code=exc.code().value[0], message=exc.details() or "")
