"""The gRPC edge of the control plane: one interceptor for identity and error mapping.

Every RPC of every servicer passes through :class:`DomainInterceptor`, which
* builds the :class:`CallContext` for the domain to read: without authentication
  (``--auth none``) the actor is declared in ``x-neural-user`` and the call is marked
  unauthenticated; with a :class:`~neural.mlops.server.auth.guard.CallGuard` the call is
  authenticated and authorized first (docs/security.md), and the actor is the principal;
* maps :class:`MLOpsError` subclasses to their status code, with the offending field in
  the ``x-neural-error-field`` trailer so the client can rebuild the same exception.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import grpc
import structlog

from neural.mlops.server.errors import MLOpsError
from neural.mlops.server.identity import CallContext, new_request_id, reset_call, set_call

if TYPE_CHECKING:
    from neural.mlops.server.auth.guard import CallGuard, MessageCheck

log = structlog.get_logger(__name__)

USER_KEY = "x-neural-user"
REQUEST_ID_KEY = "x-request-id"
ERROR_FIELD_KEY = "x-neural-error-field"


def _metadata(context: grpc.aio.ServicerContext) -> dict[str, str]:
    return {k: v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}


def _declared(md: dict[str, str], context: grpc.aio.ServicerContext) -> CallContext:
    return CallContext(
        actor=md.get(USER_KEY) or "anonymous",
        authenticated=False,
        request_id=md.get(REQUEST_ID_KEY) or new_request_id(),
        peer=context.peer() or "",
        auth_method="none",
    )


async def _abort(context: grpc.aio.ServicerContext, exc: MLOpsError) -> None:
    trailer = ((ERROR_FIELD_KEY, exc.field),) if exc.field else ()
    await context.abort(grpc.StatusCode[exc.status], exc.message, trailing_metadata=trailer)


Admit = Callable[[grpc.aio.ServicerContext, Any], Awaitable["tuple[CallContext, MessageCheck | None]"]]


async def _checked(requests: AsyncIterator[Any], check: MessageCheck) -> AsyncIterator[Any]:
    async for msg in requests:
        await check(msg)
        yield msg


def _wrap_unary(behavior: Callable[..., Awaitable[Any]], admit: Admit,
                streamed: bool) -> Callable[..., Awaitable[Any]]:
    async def handler(request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            ctx, check = await admit(context, None if streamed else request)
        except MLOpsError as exc:
            await _abort(context, exc)
            return None
        if check is not None:
            request = _checked(request, check)
        token = set_call(ctx)
        try:
            return await behavior(request, context)
        except MLOpsError as exc:
            await _abort(context, exc)
        finally:
            reset_call(token)

    return handler


def _wrap_streaming(behavior: Callable[..., AsyncIterator[Any]], admit: Admit,
                    streamed: bool) -> Callable[..., AsyncIterator[Any]]:
    async def handler(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        try:
            ctx, check = await admit(context, None if streamed else request)
        except MLOpsError as exc:
            await _abort(context, exc)
            return
        if check is not None:
            request = _checked(request, check)
        token = set_call(ctx)
        try:
            async for item in behavior(request, context):
                yield item
        except MLOpsError as exc:
            await _abort(context, exc)
        finally:
            reset_call(token)

    return handler


class DomainInterceptor(grpc.aio.ServerInterceptor):
    """``guard`` None: declared identities (``--auth none``, today's behaviour)."""

    def __init__(self, guard: CallGuard | None = None) -> None:
        self.guard = guard

    def _admitter(self, method: str) -> Admit:
        guard = self.guard

        async def admit(context: grpc.aio.ServicerContext,
                        request: Any) -> tuple[CallContext, MessageCheck | None]:
            md = _metadata(context)
            base = _declared(md, context)
            if guard is None:
                return base, None
            return await guard.admit(method, md, context, request, base)

        return admit

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        admit = self._admitter(handler_call_details.method)
        kw = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                _wrap_unary(handler.unary_unary, admit, False), **kw)
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(
                _wrap_unary(handler.stream_unary, admit, True), **kw)
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                _wrap_streaming(handler.unary_stream, admit, False), **kw)
        return grpc.stream_stream_rpc_method_handler(
            _wrap_streaming(handler.stream_stream, admit, True), **kw)
