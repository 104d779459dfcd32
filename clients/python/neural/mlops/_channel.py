"""The one place a gRPC channel to a control plane is opened (Python API and CLI).

``grpc://HOST:PORT`` is a plaintext channel. A ``token`` goes with every call as
``authorization: Bearer <token>``; on a plaintext channel gRPC refuses call credentials,
so a client interceptor adds the header.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, NamedTuple, overload

import grpc
import grpc.aio

from neural.mlops.server.errors import InvalidArgument

GRPC_SCHEME = "grpc://"
# Artifacts travel in 1 MiB chunks; the limit is for large analysis and audit pages.
MAX_MESSAGE = 64 * 1024 * 1024
_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE),
    ("grpc.max_send_message_length", MAX_MESSAGE),
]


def address(location: str) -> str:
    """``HOST:PORT`` of a ``grpc://HOST:PORT`` location."""
    if not location.startswith(GRPC_SCHEME) or len(location) == len(GRPC_SCHEME):
        raise InvalidArgument(
            f"a control plane is addressed as grpc://HOST:PORT, got {location!r}", field="location"
        )
    return location[len(GRPC_SCHEME) :]


@overload
def open_channel(location: str, *, token: str | None, aio: Literal[True]) -> grpc.aio.Channel: ...
@overload
def open_channel(location: str, *, token: str | None, aio: Literal[False]) -> grpc.Channel: ...
def open_channel(location: str, *, token: str | None, aio: bool) -> grpc.Channel | grpc.aio.Channel:
    """A channel to the control plane at ``location``. With ``aio`` a grpc.aio channel,
    which must be opened on the event loop that will use it."""
    target = address(location)
    header = ("authorization", f"Bearer {token}") if token else None
    if aio:
        interceptors = _aio_interceptors(header) if header else None
        return grpc.aio.insecure_channel(target, options=_OPTIONS, interceptors=interceptors)
    channel = grpc.insecure_channel(target, options=_OPTIONS)
    return grpc.intercept_channel(channel, _Header(header)) if header else channel


class _Details(NamedTuple):
    method: str
    timeout: float | None
    metadata: Any
    credentials: Any
    wait_for_ready: bool | None
    compression: Any


class _Header(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Adds one metadata entry to every call of a blocking channel."""

    def __init__(self, header: tuple[str, str]) -> None:
        self.header = header

    def _details(self, d: Any) -> _Details:
        return _Details(d.method, d.timeout, [*(d.metadata or ()), self.header], d.credentials,
                        getattr(d, "wait_for_ready", None), getattr(d, "compression", None))

    def intercept_unary_unary(self, continuation: Callable[..., Any], d: Any, request: Any) -> Any:
        return continuation(self._details(d), request)

    def intercept_unary_stream(self, continuation: Callable[..., Any], d: Any, request: Any) -> Any:
        return continuation(self._details(d), request)

    def intercept_stream_unary(self, continuation: Callable[..., Any], d: Any, requests: Any) -> Any:
        return continuation(self._details(d), requests)

    def intercept_stream_stream(self, continuation: Callable[..., Any], d: Any, requests: Any) -> Any:
        return continuation(self._details(d), requests)


def _aio_interceptors(header: tuple[str, str]) -> list[grpc.aio.ClientInterceptor]:
    """grpc.aio files an interceptor under the first call kind it implements, so each
    kind needs its own object."""

    def details(d: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        return d._replace(metadata=grpc.aio.Metadata(*(d.metadata or ()), header))

    class UnaryUnary(grpc.aio.UnaryUnaryClientInterceptor):
        async def intercept_unary_unary(self, continuation: Any, d: Any, request: Any) -> Any:
            return await continuation(details(d), request)

    class UnaryStream(grpc.aio.UnaryStreamClientInterceptor):
        async def intercept_unary_stream(self, continuation: Any, d: Any, request: Any) -> Any:
            return await continuation(details(d), request)

    class StreamUnary(grpc.aio.StreamUnaryClientInterceptor):
        async def intercept_stream_unary(self, continuation: Any, d: Any, requests: Any) -> Any:
            return await continuation(details(d), requests)

    class StreamStream(grpc.aio.StreamStreamClientInterceptor):
        async def intercept_stream_stream(self, continuation: Any, d: Any, requests: Any) -> Any:
            return await continuation(details(d), requests)

    return [UnaryUnary(), UnaryStream(), StreamUnary(), StreamStream()]
