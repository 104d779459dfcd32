"""How a Python API object reaches its domain: in process (embedded) or over gRPC (remote).

``location`` is a folder for the embedded store (``"./models"``) or ``grpc://HOST:PORT``
for a control plane. Either way an API method is written once, as one call on its domain
service, e.g. ``self._call(lambda r: r.get_model_version(name, version))``: embedded, the
call runs on the store's own domain service (objects on the same folder share one store
and one private event-loop thread); remote, on an adapter with the same methods that
speaks gRPC (every remote object has its own channel, all on one shared loop thread).
"""

from __future__ import annotations

import atexit
import os
import threading
import uuid
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

import structlog

from neural.mlops._channel import is_remote
from neural.mlops._loop import LoopThread
from neural.mlops._remote.connection import RemoteConnection, calling_as, error_from_rpc
from neural.mlops.server.identity import CallContext, reset_call, set_call
from neural.mlops.server.logging import configure_logging

if TYPE_CHECKING:
    from neural.mlops.server.services import Services

__all__ = ["EmbeddedRuntime", "ServiceClient", "error_from_rpc", "is_remote"]

T = TypeVar("T")
S = TypeVar("S")


@contextmanager
def _embedded_caller(actor: str | None) -> Iterator[None]:
    """The call context a servicer would set, for a call made in this process."""
    token = set_call(
        CallContext(actor=actor or "anonymous", request_id=uuid.uuid4().hex, peer="embedded")
    )
    try:
        yield
    finally:
        reset_call(token)


class EmbeddedRuntime:
    """One store opened in this process, driven from a private event-loop thread."""

    _instances: ClassVar[dict[Path, EmbeddedRuntime]] = {}
    _guard = threading.Lock()

    def __init__(self, path: Path) -> None:
        if not structlog.is_configured():
            # A library stays quiet unless its host application configures logging.
            configure_logging("warning")
        self.path = path
        self.thread = LoopThread(f"neural-mlops:{path.name}")
        self.loop = self.thread.loop
        # Imported here: remote clients never open a store.
        from neural.mlops.server.services import Services

        self.services: Services = self.thread.run(Services.open(path))
        # Periodic checkpoints as a control plane signs them: a long-lived embedded process
        # keeps its events covered (docs/audit.md, the coverage rule).
        self.thread.run(self.services.audit.start())

    @classmethod
    def for_path(cls, location: str | os.PathLike[str]) -> EmbeddedRuntime:
        path = Path(location).expanduser().resolve()
        with cls._guard:
            rt = cls._instances.get(path)
            if rt is None:
                rt = cls._instances[path] = cls(path)
            return rt

    def call(self, fn: Callable[[Services], Awaitable[T]], *, actor: str | None = None) -> T:
        """Run ``fn(services)`` on the store's loop with an embedded call context."""

        async def run() -> T:
            with _embedded_caller(actor):
                return await fn(self.services)

        return self.thread.run(run())

    def close(self) -> None:
        if not self.thread.running:
            return
        self.thread.run(self.services.close())
        self.thread.stop()

    @classmethod
    def close_all(cls) -> None:
        with cls._guard:
            for rt in cls._instances.values():
                rt.close()
            cls._instances.clear()


class _RemoteLoop:
    """The loop thread every remote API object shares, and the channels open on it."""

    _thread: LoopThread | None = None
    _guard = threading.Lock()
    _open: weakref.WeakSet[RemoteConnection] = weakref.WeakSet()

    @classmethod
    def connect(cls, location: str, *, token: str | None, timeout: float) -> RemoteConnection:
        with cls._guard:
            if cls._thread is None or not cls._thread.running:
                cls._thread = LoopThread("neural-mlops:remote")
            thread = cls._thread
        conn = RemoteConnection.open(location, token=token, timeout=timeout, thread=thread)
        cls._open.add(conn)
        return conn

    @classmethod
    def close(cls, conn: RemoteConnection) -> None:
        cls._open.discard(conn)
        if conn.thread.running:
            conn.thread.run(conn.close())

    @classmethod
    def close_all(cls) -> None:
        for conn in list(cls._open):
            cls.close(conn)
        if cls._thread is not None:
            cls._thread.stop()


def _close_everything() -> None:
    _RemoteLoop.close_all()
    EmbeddedRuntime.close_all()


atexit.register(_close_everything)


class ServiceClient(Generic[S]):
    """Base of the Python API objects: one location, embedded or remote, same methods.

    ``S`` is the domain service (``RegistryService | RemoteRegistry``...): a subclass
    names its :class:`Services` attribute (``service``) and its remote adapter
    (``remote``), and writes each method once as ``self._call(lambda svc: ...)``."""

    service: ClassVar[str] = ""
    remote: ClassVar[type[Any]]  # the adapter class, built with a RemoteConnection

    def __init__(self, location: str | os.PathLike[str], *, token: str | None = None,
                 timeout: float = 60.0) -> None:
        self.location = str(location)
        self._embedded: EmbeddedRuntime | None = None
        self._remote: RemoteConnection | None = None
        self._service: S
        self._scope: Callable[[str | None], AbstractContextManager[None]]
        if is_remote(self.location):
            self._remote = _RemoteLoop.connect(self.location, token=token, timeout=timeout)
            self._thread = self._remote.thread
            self._service = type(self).remote(self._remote)
            self._scope = calling_as
        else:
            self._embedded = EmbeddedRuntime.for_path(self.location)
            self._thread = self._embedded.thread
            self._service = getattr(self._embedded.services, self.service)
            self._scope = _embedded_caller

    @property
    def is_remote(self) -> bool:
        return self._remote is not None

    @property
    def _unnamed_actor(self) -> str:
        """What an actor argument left empty becomes. Embedded: the anonymous caller.
        Remote: empty, so the server names the caller (its authenticated principal)."""
        return "" if self.is_remote else "anonymous"

    def _call(self, fn: Callable[[S], Awaitable[T]], actor: str | None = None) -> T:
        """``fn(service)`` on the service's loop, as ``actor`` (a declared identity)."""

        async def run() -> T:
            with self._scope(actor):
                return await fn(self._service)

        return self._thread.run(run())

    def _iterate(self, fn: Callable[[S], AsyncIterator[T]], *, actor: str | None = None,
                 timeout: float | None = None) -> Iterator[T]:
        """The items of ``fn(service)`` (an async iterator) until it ends or ``timeout``."""
        return self._thread.iterate(fn(self._service), timeout=timeout,
                                    scope=lambda: self._scope(actor))

    def close(self) -> None:
        if self._remote is not None:
            _RemoteLoop.close(self._remote)

    def __enter__(self: T) -> T:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
