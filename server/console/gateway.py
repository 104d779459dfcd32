"""The transcoding gateway: ``POST /api/v1/<full service name>/<Method>`` with the request
message as protobuf JSON, answered with the response message as protobuf JSON.

Generic over the descriptors: every method of every service the control plane registers
is reachable, with no per-RPC code. The call goes to the server's own gRPC listener on
loopback with the session's credential, so authentication, the permission table, actor
binding, validation, the audit trail and the error details are exactly those of a gRPC
client. Mapping (protobuf's canonical JSON, ``google.protobuf.json_format``):

* request: unknown fields are refused (400 INVALID_ARGUMENT naming the field); enums by
  name or number; int64 as strings or numbers; Timestamps in RFC 3339;
* response: field names as in the .proto (snake_case), fields at their default values
  included, enums by name, int64 as strings, Timestamps in RFC 3339, bytes in base64;
* a server-streaming RPC (QueryEvents, ExportAuditTrail, DownloadArtifact) answers with
  its messages merged into one (protobuf merge: repeated fields concatenated, the last
  set scalar wins), at most :data:`MAX_RESPONSE_BYTES`; ``Watch*`` streams never end and
  are not transcoded (``GET /api/events`` carries live changes); client-streaming RPCs
  are not transcoded either (404);
* errors: the google.rpc.Status JSON and HTTP status of :mod:`.status`.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import grpc
from aiohttp import web
from google.protobuf import descriptor_pool, json_format, message, message_factory

from neural.mlops.server.auth.permissions import RULES, Rule
from neural.mlops.server.auth.policy import bind_actors
from neural.mlops.server.auth.principal import Principal
from neural.mlops.server.console import status as st
from neural.mlops.server.console.sessions import Session
from neural.mlops.server.errors import MLOpsError

MAX_REQUEST_BYTES = 4 * 1024 * 1024  # JSON is larger than the binary message it encodes
MAX_RESPONSE_BYTES = 32 * 1024 * 1024
CALL_TIMEOUT_SECONDS = 60.0
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")  # what gRPC metadata carries as is


@dataclass(frozen=True, slots=True)
class Method:
    service: str
    name: str
    request: type[message.Message]
    response: type[message.Message]
    server_streaming: bool

    @property
    def path(self) -> str:
        return f"/{self.service}/{self.name}"


def _transcodable(method: Any) -> str:
    """'' when the gateway serves the method, else why not."""
    if method.client_streaming:
        return "is a client-streaming RPC; use a gRPC client"
    if method.server_streaming and method.name.startswith("Watch"):
        return "is a live stream; GET /api/events carries changes to the console"
    return ""


class MethodIndex:
    """The methods of the given services, from the default descriptor pool."""

    def __init__(self, services: Iterable[str]) -> None:
        self.methods: dict[tuple[str, str], Method] = {}
        self.refused: dict[tuple[str, str], str] = {}
        pool = descriptor_pool.Default()
        for name in services:
            service = pool.FindServiceByName(name)
            for m in service.methods:
                why = _transcodable(m)
                if why:
                    self.refused[(name, m.name)] = why
                    continue
                self.methods[(name, m.name)] = Method(
                    name, m.name, message_factory.GetMessageClass(m.input_type),
                    message_factory.GetMessageClass(m.output_type), m.server_streaming)

    def get(self, service: str, name: str) -> Method | None:
        return self.methods.get((service, name))


def to_json(msg: message.Message) -> dict[str, Any]:
    return json_format.MessageToDict(
        msg, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)


def _parse(method: Method, body: bytes) -> message.Message | web.Response:
    """The request message, or the 400 answer saying what is wrong with the body."""
    try:
        data = json.loads(body.decode("utf-8")) if body.strip() else {}
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return st.error(grpc.StatusCode.INVALID_ARGUMENT, f"the body is not JSON: {exc}",
                        "MALFORMED_REQUEST")
    if not isinstance(data, dict):
        return st.error(grpc.StatusCode.INVALID_ARGUMENT,
                        f"the body must be a JSON object ({method.request.DESCRIPTOR.full_name})",
                        "MALFORMED_REQUEST")
    request = method.request()
    try:
        json_format.ParseDict(data, request, ignore_unknown_fields=False)
    except json_format.ParseError as exc:
        return st.error(grpc.StatusCode.INVALID_ARGUMENT,
                        f"{method.request.DESCRIPTOR.full_name}: {exc}", "MALFORMED_REQUEST")
    return request


class Gateway:
    def __init__(self, channel: grpc.aio.Channel, index: MethodIndex) -> None:
        self.channel = channel
        self.index = index

    def metadata(self, session: Session, request_id: str) -> tuple[tuple[str, str], ...]:
        return (*session.credential, ("x-request-id", request_id))

    async def handle(self, request: web.Request, session: Session) -> web.Response:
        service, name = request.match_info["service"], request.match_info["method"]
        method = self.index.get(service, name)
        if method is None:
            why = self.index.refused.get((service, name))
            text = f"{service}/{name} {why}" if why else f"no RPC {service}/{name}"
            return st.error(grpc.StatusCode.NOT_FOUND, text, "UNKNOWN_METHOD")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return st.error(grpc.StatusCode.INVALID_ARGUMENT,
                            f"the request body is larger than {MAX_REQUEST_BYTES} bytes",
                            "REQUEST_TOO_LARGE", http=413)
        parsed = _parse(method, body)
        if isinstance(parsed, web.Response):
            return parsed
        if session.method == "none":
            # The server binds actor fields only for authenticated calls; a console
            # session acts as its declared name all the same (no acting as another).
            try:
                bind_actors(RULES.get(method.path) or _NO_RULE,
                            Principal(session.subject, "none"), parsed)
            except MLOpsError as exc:
                return st.error(grpc.StatusCode.PERMISSION_DENIED, exc.message, exc.reason,
                                field=exc.field or "")
        asked = request.headers.get("X-Request-Id", "")[:64]
        request_id = asked if _REQUEST_ID.fullmatch(asked) else secrets.token_hex(8)
        try:
            answer = await self.call(method, parsed, self.metadata(session, request_id))
        except grpc.aio.AioRpcError as exc:
            return st.status_response(st.from_rpc_error(exc),
                                      headers={"X-Request-Id": request_id})
        except _TooLarge as exc:
            return st.error(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc), "RESPONSE_TOO_LARGE",
                            http=413)
        return web.json_response(to_json(answer), headers={"X-Request-Id": request_id})

    async def call(self, method: Method, request: message.Message,
                   metadata: tuple[tuple[str, str], ...]) -> message.Message:
        if not method.server_streaming:
            unary = self.channel.unary_unary(
                method.path, request_serializer=method.request.SerializeToString,
                response_deserializer=method.response.FromString)
            answer: message.Message = await unary(request, metadata=metadata,
                                                  timeout=CALL_TIMEOUT_SECONDS)
            return answer
        stream = self.channel.unary_stream(
            method.path, request_serializer=method.request.SerializeToString,
            response_deserializer=method.response.FromString)
        merged = method.response()
        size = 0
        call = stream(request, metadata=metadata, timeout=CALL_TIMEOUT_SECONDS)
        async for part in call:
            size += part.ByteSize()
            if size > MAX_RESPONSE_BYTES:
                call.cancel()
                raise _TooLarge(f"{method.service}/{method.name} answered more than "
                                f"{MAX_RESPONSE_BYTES} bytes; narrow the request or use gRPC")
            merged.MergeFrom(part)
        return merged


class _TooLarge(Exception):
    pass


_NO_RULE = Rule("session")  # a method missing from the table: nothing to bind (refused)
