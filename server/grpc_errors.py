"""The gRPC edge of the control plane: one interceptor for identity and error mapping.

Every RPC of every servicer passes through :class:`DomainInterceptor`, which
* builds the :class:`CallContext` (actor from ``x-neural-user`` until authentication
  exists, ``x-request-id`` or a fresh one, the peer address) for the domain to read, and
* maps :class:`MLOpsError` subclasses to their status code, with the offending field in
  the ``x-neural-error-field`` trailer so the client can rebuild the same exception.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import structlog

from neural.mlops.server.errors import MLOpsError
from neural.mlops.server.identity import CallContext, new_request_id, reset_call, set_call

log = structlog.get_logger(__name__)

USER_KEY = "x-neural-user"
REQUEST_ID_KEY = "x-request-id"
ERROR_FIELD_KEY = "x-neural-error-field"


def _call_context(context: grpc.aio.ServicerContext) -> CallContext:
    md = {k: v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}
    return CallContext(
        actor=md.get(USER_KEY) or "anonymous",
        authenticated=False,
        request_id=md.get(REQUEST_ID_KEY) or new_request_id(),
        peer=context.peer() or "",
    )


async def _abort(context: grpc.aio.ServicerContext, exc: MLOpsError) -> None:
    trailer = ((ERROR_FIELD_KEY, exc.field),) if exc.field else ()
    await context.abort(grpc.StatusCode[exc.status], exc.message, trailing_metadata=trailer)


def _wrap_unary(behavior: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    async def handler(request: Any, context: grpc.aio.ServicerContext) -> Any:
        token = set_call(_call_context(context))
        try:
            return await behavior(request, context)
        except MLOpsError as exc:
            await _abort(context, exc)
        finally:
            reset_call(token)

    return handler


def _wrap_streaming(behavior: Callable[..., AsyncIterator[Any]]) -> Callable[..., AsyncIterator[Any]]:
    async def handler(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        token = set_call(_call_context(context))
        try:
            async for item in behavior(request, context):
                yield item
        except MLOpsError as exc:
            await _abort(context, exc)
        finally:
            reset_call(token)

    return handler


class DomainInterceptor(grpc.aio.ServerInterceptor):
    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        kw = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(_wrap_unary(handler.unary_unary), **kw)
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(_wrap_unary(handler.stream_unary), **kw)
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(_wrap_streaming(handler.unary_stream), **kw)
        return grpc.stream_stream_rpc_method_handler(_wrap_streaming(handler.stream_stream), **kw)
