"""How a Python API object reaches the domain: in process (embedded) or over gRPC (remote).

``location`` is a folder for the embedded store (``"./models"``) or ``grpc://HOST:PORT``
for a control plane. Embedded objects that point at the same folder share one store and
one background event loop; remote objects share nothing but the address.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import threading
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import grpc
import structlog

from neural.mlops.server.errors import BY_STATUS, MLOpsError, Unavailable
from neural.mlops.server.grpc_errors import ERROR_FIELD_KEY, REQUEST_ID_KEY, USER_KEY
from neural.mlops.server.identity import CallContext, reset_call, set_call
from neural.mlops.server.logging import configure_logging

if TYPE_CHECKING:
    from neural.mlops.server.services import Services

T = TypeVar("T")

GRPC_SCHEME = "grpc://"


def is_remote(location: str | os.PathLike[str]) -> bool:
    return str(location).startswith(GRPC_SCHEME)


class EmbeddedRuntime:
    """One store opened in this process, driven from a private event-loop thread."""

    _instances: dict[Path, EmbeddedRuntime] = {}
    _guard = threading.Lock()

    def __init__(self, path: Path) -> None:
        if not structlog.is_configured():
            # A library stays quiet unless its host application configures logging.
            configure_logging("warning")
        self.path = path
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name=f"neural-mlops:{path.name}", daemon=True
        )
        self._thread.start()
        # Imported here: remote clients never need the domain (numpy, scipy, SQLAlchemy).
        from neural.mlops.server.services import Services

        self.services: Services = self._submit(Services.open(path))

    @classmethod
    def for_path(cls, location: str | os.PathLike[str]) -> EmbeddedRuntime:
        path = Path(location).expanduser().resolve()
        with cls._guard:
            rt = cls._instances.get(path)
            if rt is None:
                rt = cls._instances[path] = cls(path)
            return rt

    def _submit(self, coro: Awaitable[T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()  # type: ignore[arg-type]

    def call(self, fn: Callable[[Services], Awaitable[T]], *, actor: str | None = None) -> T:
        """Run ``fn(services)`` on the store's loop with an embedded call context."""

        async def run() -> T:
            token = set_call(
                CallContext(actor=actor or "anonymous", request_id=uuid.uuid4().hex, peer="embedded")
            )
            try:
                return await fn(self.services)
            finally:
                reset_call(token)

        return self._submit(run())

    def close(self) -> None:
        if self.loop.is_closed():
            return
        self._submit(self.services.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)

    @classmethod
    def close_all(cls) -> None:
        with cls._guard:
            for rt in cls._instances.values():
                rt.close()
            cls._instances.clear()


atexit.register(EmbeddedRuntime.close_all)


def error_from_rpc(err: grpc.RpcError) -> MLOpsError:
    """Rebuild the domain exception the server raised (same class, message and field)."""
    code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
    details = err.details() if hasattr(err, "details") else str(err)
    field = None
    trailers = err.trailing_metadata() if hasattr(err, "trailing_metadata") else None
    for key, value in trailers or ():
        if key == ERROR_FIELD_KEY:
            field = value
    cls = BY_STATUS.get(code.name, MLOpsError)
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        cls = Unavailable
    return cls(details or code.name, field=field)


class RemoteConnection:
    """A gRPC channel to a control plane, with identity metadata and error mapping."""

    def __init__(self, location: str, *, token: str | None = None, timeout: float = 60.0) -> None:
        self.address = location[len(GRPC_SCHEME) :] if is_remote(location) else location
        self.token = token
        self.timeout = timeout
        self.channel = grpc.insecure_channel(
            self.address,
            options=[
                ("grpc.max_receive_message_length", 64 * 1024 * 1024),
                ("grpc.max_send_message_length", 64 * 1024 * 1024),
            ],
        )
        self._stubs: dict[type, Any] = {}

    def stub(self, stub_cls: type[T]) -> T:
        if stub_cls not in self._stubs:
            self._stubs[stub_cls] = stub_cls(self.channel)  # type: ignore[call-arg]
        return self._stubs[stub_cls]  # type: ignore[no-any-return]

    def metadata(self, actor: str | None) -> list[tuple[str, str]]:
        md = [(REQUEST_ID_KEY, uuid.uuid4().hex)]
        if actor:
            md.append((USER_KEY, actor))
        if self.token:
            md.append(("authorization", f"Bearer {self.token}"))
        return md

    def call(self, method: Callable[..., T], request: Any, *, actor: str | None = None,
             timeout: float | None = None) -> T:
        try:
            return method(request, metadata=self.metadata(actor), timeout=timeout or self.timeout)
        except grpc.RpcError as err:
            raise error_from_rpc(err) from None

    def stream(self, method: Callable[..., Iterator[T]], request: Any, *, actor: str | None = None,
               timeout: float | None = None) -> Iterator[T]:
        try:
            yield from method(request, metadata=self.metadata(actor), timeout=timeout)
        except grpc.RpcError as err:
            raise error_from_rpc(err) from None

    def close(self) -> None:
        self.channel.close()


class ServiceClient:
    """Base of the Python API objects: one location, embedded or remote, same methods.

    A subclass names the :class:`Services` attribute of its domain (``service``) and its
    generated gRPC stub (``stub_class``); its methods then call ``self._local(fn)`` with
    ``fn(domain_service)`` in embedded mode, or ``self._rpc("Method", request)`` remotely.
    """

    service: str = ""
    stub_class: type = object

    def __init__(self, location: str | os.PathLike[str], *, token: str | None = None,
                 timeout: float = 60.0) -> None:
        self.location = str(location)
        self._remote: RemoteConnection | None = None
        self._embedded: EmbeddedRuntime | None = None
        if is_remote(self.location):
            self._remote = RemoteConnection(self.location, token=token, timeout=timeout)
            self._stub = self._remote.stub(self.stub_class)
        else:
            self._embedded = EmbeddedRuntime.for_path(self.location)

    @property
    def is_remote(self) -> bool:
        return self._remote is not None

    def _local(self, fn: Callable[[Any], Awaitable[Any]], actor: str | None = None) -> Any:
        assert self._embedded is not None
        service = self.service
        return self._embedded.call(lambda s: fn(getattr(s, service)), actor=actor)

    def _rpc(self, method: str, request: Any, actor: str | None = None,
             timeout: float | None = None) -> Any:
        assert self._remote is not None
        return self._remote.call(getattr(self._stub, method), request, actor=actor, timeout=timeout)

    def _stream(self, method: str, request: Any, actor: str | None = None,
                timeout: float | None = None) -> Iterator[Any]:
        assert self._remote is not None
        return self._remote.stream(getattr(self._stub, method), request, actor=actor, timeout=timeout)

    def close(self) -> None:
        if self._remote is not None:
            self._remote.close()

    def __enter__(self: T) -> T:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
