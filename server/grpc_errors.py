"""The gRPC edge of the control plane: one interceptor for identity and error mapping.

Every RPC of every servicer passes through :class:`DomainInterceptor`, which
* builds the :class:`CallContext` for the domain to read: without authentication
  (``--auth none``) the actor is declared in ``x-neural-user`` and the call is marked
  unauthenticated; with a :class:`~neural.mlops.server.auth.guard.CallGuard` the call is
  authenticated and authorized first (docs/security.md), and the actor is the principal;
* bounds every request message (:func:`neural.mlops.v1.limits.check_message`) before
  any domain code runs, so one oversized request cannot stall the server;
* maps :class:`MLOpsError` subclasses to their status code, with google.rpc.Status
  details in ``grpc-status-details-bin`` (:func:`status_details`, docs/errors.md) from
  which any client rebuilds the same exception. A message is cut to
  :data:`MAX_ERROR_MESSAGE` characters; an unexpected exception is logged with its
  request id and answered with that id only, never with SQL, bound parameters or server
  paths; a store that cannot be reached answers UNAVAILABLE.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeAlias

import grpc
import structlog
from google.rpc import error_details_pb2, status_pb2

from neural.mlops.server.errors import Internal, InvalidArgument, MLOpsError, Unavailable
from neural.mlops.server.identity import (
    CallContext,
    current_call,
    new_request_id,
    reset_call,
    set_call,
)
from neural.mlops.server.storage import is_outage
from neural.mlops.v1.limits import LimitExceeded, check_message

if TYPE_CHECKING:
    from neural.mlops.server.auth.guard import CallGuard, MessageCheck

log = structlog.get_logger(__name__)

USER_KEY = "x-neural-user"
REQUEST_ID_KEY = "x-request-id"
STATUS_DETAILS_KEY = "grpc-status-details-bin"
ERROR_DOMAIN = "neural.mlops"
MAX_ERROR_MESSAGE = 500
MAX_ERROR_FIELD = 200

# The grpcio stubs make the context generic in the request and response types; this edge
# serves every method, so both are Any.
Ctx: TypeAlias = grpc.aio.ServicerContext[Any, Any]


def _metadata(context: Ctx) -> dict[str, str]:
    return {k: v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}


def _declared(md: dict[str, str], context: Ctx) -> CallContext:
    return CallContext(
        actor=md.get(USER_KEY) or "anonymous",
        authenticated=False,
        request_id=md.get(REQUEST_ID_KEY) or new_request_id(),
        peer=context.peer() or "",
        auth_method="none",
    )


def status_details(exc: MLOpsError, request_id: str) -> status_pb2.Status:
    """The google.rpc.Status a client decodes ``exc`` from: always an ``ErrorInfo``
    (``reason``, domain :data:`ERROR_DOMAIN`, metadata ``request_id`` and ``field`` when
    there is one); a ``BadRequest`` naming the field for INVALID_ARGUMENT; a
    ``PreconditionFailure`` (type = reason, subject = field) for FAILED_PRECONDITION."""
    code = grpc.StatusCode[exc.status]
    message = exc.message
    if len(message) > MAX_ERROR_MESSAGE:
        message = message[: MAX_ERROR_MESSAGE - 1] + "…"
    field = (exc.field or "")[:MAX_ERROR_FIELD]
    info = error_details_pb2.ErrorInfo(reason=exc.reason, domain=ERROR_DOMAIN,
                                       metadata={"request_id": request_id})
    if field:
        info.metadata["field"] = field
    status = status_pb2.Status(code=code.value[0], message=message)
    status.details.add().Pack(info)
    if field and code is grpc.StatusCode.INVALID_ARGUMENT:
        violation = error_details_pb2.BadRequest.FieldViolation(
            field=field, description=message, reason=exc.reason)
        status.details.add().Pack(error_details_pb2.BadRequest(field_violations=[violation]))
    if code is grpc.StatusCode.FAILED_PRECONDITION:
        failed = error_details_pb2.PreconditionFailure.Violation(
            type=exc.reason, subject=field, description=message)
        status.details.add().Pack(error_details_pb2.PreconditionFailure(violations=[failed]))
    return status


def _request_id(context: Ctx) -> str:
    """The caller's x-request-id, else the one the call context generated."""
    return _metadata(context).get(REQUEST_ID_KEY) or current_call().request_id


async def _abort(context: Ctx, exc: MLOpsError) -> None:
    status = status_details(exc, _request_id(context))
    await context.abort(grpc.StatusCode[exc.status], status.message,
                        trailing_metadata=((STATUS_DETAILS_KEY, status.SerializeToString()),))


async def _unexpected(context: Ctx, exc: Exception) -> None:
    """The answer to a bug or an outage: the details go to the log, not to the caller."""
    request_id = _request_id(context)
    if is_outage(exc):
        log.warning("store unavailable", request_id=request_id, error=type(exc).__name__)
        await _abort(context, Unavailable(
            f"the store is unavailable; retry (request id {request_id})",
            reason="STORE_UNAVAILABLE"))
    log.exception("unexpected error", request_id=request_id)
    await _abort(context, Internal(
        f"internal error (request id {request_id}); see the server log"))


class _Undecodable:
    """A request body that does not parse as the method's request message. gRPC answers a
    deserializer's exception with UNKNOWN or INTERNAL, so the parse error travels to the
    handler as this value and is refused there as INVALID_ARGUMENT."""

    __slots__ = ("type_name",)

    def __init__(self, type_name: str) -> None:
        self.type_name = type_name


def _lenient(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserializer is None:
        return None
    message_class = getattr(deserializer, "__self__", None)
    descriptor = getattr(message_class, "DESCRIPTOR", None)
    type_name = descriptor.full_name if descriptor is not None else "request"

    def parse(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception:  # noqa: BLE001 - DecodeError, or a C parser's RuntimeError
            return _Undecodable(type_name)

    return parse


def _bounded(msg: Any) -> None:
    if isinstance(msg, _Undecodable):
        raise InvalidArgument(f"the request body is not a valid {msg.type_name} message",
                              reason="MALFORMED_REQUEST")
    try:
        check_message(msg)
    except LimitExceeded as exc:
        raise InvalidArgument(str(exc), field=exc.field, reason=exc.reason) from None


Admit = Callable[
    [Ctx, Any], Awaitable["tuple[CallContext, MessageCheck | None]"]
]


async def _checked(requests: AsyncIterator[Any], check: MessageCheck | None) -> AsyncIterator[Any]:
    async for msg in requests:
        _bounded(msg)
        if check is not None:
            await check(msg)
        yield msg


async def _admitted(request: Any, context: Ctx, admit: Admit,
                    streamed: bool) -> tuple[Any, CallContext] | None:
    """The request as the behaviour gets it (a stream is checked message by message as it
    is read) and the call's context; None when the call was refused and answered."""
    try:
        undecodable = isinstance(request, _Undecodable)
        ctx, check = await admit(context, None if streamed or undecodable else request)
        if not streamed:
            _bounded(request)
    except MLOpsError as exc:
        await _abort(context, exc)
        return None
    return (_checked(request, check) if streamed else request), ctx


async def _answer_failure(context: Ctx, exc: Exception) -> None:
    """A domain error gets its status code; an abort already answered the call and goes
    on up to gRPC; anything else is a bug, answered without internals and logged."""
    if isinstance(exc, grpc.aio.AbortError):
        raise exc
    if isinstance(exc, MLOpsError):
        await _abort(context, exc)
    else:
        await _unexpected(context, exc)


def _wrap_unary(behavior: Callable[..., Awaitable[Any]], admit: Admit,
                streamed: bool) -> Callable[..., Awaitable[Any]]:
    async def handler(request: Any, context: Ctx) -> Any:
        admitted = await _admitted(request, context, admit, streamed)
        if admitted is None:
            return None
        request, ctx = admitted
        token = set_call(ctx)
        try:
            return await behavior(request, context)
        except Exception as exc:  # noqa: BLE001 - each kind answered by _answer_failure
            await _answer_failure(context, exc)
        finally:
            reset_call(token)

    return handler


def _wrap_streaming(behavior: Callable[..., AsyncIterator[Any]], admit: Admit,
                    streamed: bool) -> Callable[..., AsyncIterator[Any]]:
    async def handler(request: Any, context: Ctx) -> AsyncIterator[Any]:
        admitted = await _admitted(request, context, admit, streamed)
        if admitted is None:
            return
        request, ctx = admitted
        token = set_call(ctx)
        try:
            async for item in behavior(request, context):
                yield item
        except Exception as exc:  # noqa: BLE001 - each kind answered by _answer_failure
            await _answer_failure(context, exc)
        finally:
            reset_call(token)

    return handler


class DomainInterceptor(grpc.aio.ServerInterceptor):
    """``guard`` None: declared identities (``--auth none``, today's behaviour)."""

    def __init__(self, guard: CallGuard | None = None) -> None:
        self.guard = guard

    def _admitter(self, method: str) -> Admit:
        guard = self.guard

        async def admit(context: Ctx,
                        request: Any) -> tuple[CallContext, MessageCheck | None]:
            md = _metadata(context)
            base = _declared(md, context)
            if guard is None:
                return base, None
            return await guard.admit(method, md, context, request, base)

        return admit

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        admit = self._admitter(handler_call_details.method)
        kw = {
            "request_deserializer": _lenient(handler.request_deserializer),
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                _wrap_unary(handler.unary_unary, admit, False), **kw)
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(
                _wrap_unary(handler.stream_unary, admit, True), **kw)
        # The stubs type a handler's streaming behaviours as the sync server's (a plain
        # Iterator); under grpc.aio they are async generators, as _wrap_streaming expects.
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                _wrap_streaming(handler.unary_stream, admit, False), **kw)  # type: ignore[arg-type]
        return grpc.stream_stream_rpc_method_handler(
            _wrap_streaming(handler.stream_stream, admit, True), **kw)  # type: ignore[arg-type]
