"""One control plane over grpc.aio: who is calling, deadlines, and the error mapping back
to the domain's exceptions (same class, message, field and reason as the server raised,
read from the google.rpc.Status details: docs/errors.md)."""

from __future__ import annotations

import contextvars
import uuid
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
)
from contextlib import contextmanager
from typing import Any, TypeVar

import grpc
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2

from neural.mlops._channel import open_channel
from neural.mlops._loop import LoopThread
from neural.mlops.server.errors import BY_STATUS, MLOpsError, Unavailable
from neural.mlops.server.grpc_errors import (
    ERROR_DOMAIN,
    REQUEST_ID_KEY,
    STATUS_DETAILS_KEY,
    USER_KEY,
)

T = TypeVar("T")

# The identity an API call declares (its ``created_by``, ``actor``...): sent as
# x-neural-user, which the server takes as the actor unless the call is authenticated.
_caller: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "neural_mlops_remote_caller", default=None
)


@contextmanager
def calling_as(actor: str | None) -> Iterator[None]:
    token = _caller.set(actor)
    try:
        yield
    finally:
        _caller.reset(token)


def _status(err: grpc.RpcError) -> status_pb2.Status | None:
    # (key, value) pairs at run time: an aio error's Metadata yields tuples and a sync one's
    # items are namedtuples, which the stubs type as a bare key/value object.
    read = getattr(err, "trailing_metadata", None)
    trailers: Iterable[tuple[str, str | bytes]] = (read() if read is not None else None) or ()
    for key, value in trailers:
        if key == STATUS_DETAILS_KEY and isinstance(value, bytes):
            try:
                return status_pb2.Status.FromString(value)
            except DecodeError:
                return None
    return None


def _reason_and_field(status: status_pb2.Status | None) -> tuple[str | None, str | None]:
    """The ErrorInfo's reason (ours only: another domain's reasons mean something else)
    and the field a BadRequest or the ErrorInfo names."""
    reason = field = None
    for detail in status.details if status is not None else ():
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            if info.domain == ERROR_DOMAIN:
                reason = info.reason or None
                field = field or info.metadata.get("field") or None
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            if bad.field_violations:
                field = bad.field_violations[0].field or field
    return reason, field


def error_from_rpc(err: grpc.RpcError) -> MLOpsError:
    """Rebuild the domain exception the server raised (same class, message, field and
    reason); a status without our details (a proxy, a deadline) keeps the class's default
    reason."""
    code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
    details = err.details() if hasattr(err, "details") else str(err)
    reason, field = _reason_and_field(_status(err))
    cls = BY_STATUS.get(code.name, MLOpsError)
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        cls = Unavailable
    return cls(details or code.name, field=field, reason=reason)


class RemoteConnection:
    """A grpc.aio channel to a control plane, living on ``thread``'s event loop.

    Build it with :meth:`open` (the channel must be created on the loop that uses it)."""

    def __init__(self, channel: grpc.aio.Channel, thread: LoopThread, timeout: float) -> None:
        self.channel = channel
        self.thread = thread
        self.timeout = timeout

    @classmethod
    def open(cls, location: str, *, token: str | None, timeout: float,
             thread: LoopThread) -> RemoteConnection:
        async def connect() -> RemoteConnection:
            return cls(open_channel(location, token=token, aio=True), thread, timeout)

        return thread.run(connect())

    def stub(self, stub_class: Callable[[grpc.aio.Channel], T]) -> T:
        return stub_class(self.channel)

    @staticmethod
    def _metadata() -> list[tuple[str, str]]:
        md = [(REQUEST_ID_KEY, uuid.uuid4().hex)]
        actor = _caller.get()
        if actor:
            md.append((USER_KEY, actor))
        return md

    async def unary(self, method: Callable[..., Awaitable[T]], request: Any) -> T:
        """One answer (``request`` may be an async iterator: a client stream)."""
        try:
            return await method(request, metadata=self._metadata(), timeout=self.timeout)
        except grpc.RpcError as err:
            raise error_from_rpc(err) from None

    async def stream(self, method: Callable[..., Any], request: Any) -> AsyncGenerator[Any, None]:
        """The answers of a server stream, as long as it takes (no deadline: artifacts,
        exports and watches may run long); closing the iterator cancels the call."""
        call = method(request, metadata=self._metadata())
        try:
            async for message in call:
                yield message
        except grpc.RpcError as err:
            raise error_from_rpc(err) from None
        finally:
            call.cancel()

    def blocking(self, items: AsyncIterator[T]) -> Iterator[T]:
        """``items`` for a caller on another thread (a download's chunks)."""
        return self.thread.iterate(items)

    async def close(self) -> None:
        await self.channel.close()
