"""The one place a gRPC channel to a control plane is opened (Python API and CLI).

``grpc://HOST:PORT`` is a plaintext channel, ``grpcs://HOST:PORT`` a TLS channel.
``grpc://a:1,b:2,c:3`` names several replicas of one control plane: one channel over all
of them, gRPC failing over between them (:mod:`neural.mlops.v1.replicas`: reads retried
on another replica on UNAVAILABLE, writes only when they never left this process). A
``token`` goes with every call as ``authorization: Bearer <token>``; on a plaintext
channel gRPC refuses call credentials, so a client interceptor adds the header (on both,
so there is one path). A token is never sent in the clear to another machine: over
``grpc://`` it is refused unless the host is loopback.

Credentials not passed as arguments come from :class:`ChannelSettings`: the CLI's
``--token``/``--ca-cert``/``--client-cert``/``--client-key`` flags, else the environment
(``NEURAL_MLOPS_TOKEN``, ``NEURAL_MLOPS_CA_CERT``, ``NEURAL_MLOPS_CLIENT_CERT``,
``NEURAL_MLOPS_CLIENT_KEY``). Without a CA the system's trust store verifies the server.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, ClassVar, Literal, NamedTuple, overload

import grpc
import grpc.aio

from neural.mlops.server.errors import InvalidArgument
from neural.mlops.server.tls import is_loopback
from neural.mlops.v1.limits import MAX_MESSAGE_BYTES
from neural.mlops.v1.replicas import channel_target, split_addresses

GRPC_SCHEME = "grpc://"
TLS_SCHEME = "grpcs://"
REMOTE_SCHEMES = (GRPC_SCHEME, TLS_SCHEME)
# Artifacts travel in 1 MiB chunks; the limit is for large analysis and audit pages.
MAX_MESSAGE = MAX_MESSAGE_BYTES

_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE),
    ("grpc.max_send_message_length", MAX_MESSAGE),
]


def is_remote(location: str | os.PathLike[str]) -> bool:
    """A control plane's address (``grpc://`` or ``grpcs://``) rather than a store folder."""
    return str(location).startswith(REMOTE_SCHEMES)


def address(location: str) -> str:
    """``HOST:PORT`` (or ``HOST:PORT,HOST:PORT...``) of a ``grpc://`` or ``grpcs://``
    location."""
    for scheme in REMOTE_SCHEMES:
        if location.startswith(scheme) and len(location) > len(scheme):
            return location[len(scheme) :]
    raise InvalidArgument(
        f"a control plane is addressed as grpc://HOST:PORT or grpcs://HOST:PORT, got {location!r}",
        field="location",
    )


def addresses(location: str) -> list[str]:
    """Every replica's ``HOST:PORT`` in a location."""
    try:
        return split_addresses(address(location))
    except ValueError as exc:
        raise InvalidArgument(f"location {location!r}: {exc}", field="location") from None


@dataclass(frozen=True)
class ChannelSettings:
    """Client credentials: CLI flags (:meth:`set_flags`) over ``NEURAL_MLOPS_*`` environment."""

    token: str | None = None
    ca_cert: str | None = None
    client_cert: str | None = None
    client_key: str | None = None

    _flags: ClassVar[ChannelSettings | None] = None

    @classmethod
    def set_flags(cls, **values: str | None) -> None:
        """The command line's credentials (None: not given), for every channel opened
        until the next call; the CLI sets them once per command."""
        cls._flags = cls(**values)

    @classmethod
    def current(cls) -> ChannelSettings:
        env = cls(**{f.name: os.environ.get(f"NEURAL_MLOPS_{f.name.upper()}") or None
                     for f in fields(cls)})
        return env.over(cls._flags) if cls._flags else env

    def over(self, other: ChannelSettings) -> ChannelSettings:
        """These settings with every one ``other`` sets replaced."""
        return replace(self, **{f.name: getattr(other, f.name) for f in fields(self)
                                if getattr(other, f.name) is not None})

    def credentials(self) -> grpc.ChannelCredentials:
        if bool(self.client_cert) != bool(self.client_key):
            raise InvalidArgument("a client certificate needs its key and the key its certificate "
                                  "(NEURAL_MLOPS_CLIENT_CERT / NEURAL_MLOPS_CLIENT_KEY)",
                                  field="client_cert")

        def read(path: str | None, what: str) -> bytes | None:
            if not path:
                return None
            try:
                return Path(path).expanduser().read_bytes()
            except OSError as exc:
                raise InvalidArgument(f"cannot read {what} {path}: {exc.strerror}",
                                      field=what) from None

        return grpc.ssl_channel_credentials(
            root_certificates=read(self.ca_cert, "ca_cert"),
            private_key=read(self.client_key, "client_key"),
            certificate_chain=read(self.client_cert, "client_cert"),
        )


@overload
def open_channel(location: str, *, token: str | None, aio: Literal[True],
                 ca_cert: str | None = None, client_cert: str | None = None,
                 client_key: str | None = None) -> grpc.aio.Channel: ...
@overload
def open_channel(location: str, *, token: str | None, aio: Literal[False],
                 ca_cert: str | None = None, client_cert: str | None = None,
                 client_key: str | None = None) -> grpc.Channel: ...
def open_channel(location: str, *, token: str | None, aio: bool, ca_cert: str | None = None,
                 client_cert: str | None = None,
                 client_key: str | None = None) -> grpc.Channel | grpc.aio.Channel:
    """A channel to the control plane at ``location``. With ``aio`` a grpc.aio channel,
    which must be opened on the event loop that will use it. Arguments left None come
    from :class:`ChannelSettings`."""
    replicas = addresses(location)
    try:
        target, options = channel_target(replicas, _OPTIONS)
    except ValueError as exc:
        raise InvalidArgument(f"location {location!r}: {exc}", field="location") from None
    settings = ChannelSettings.current().over(
        ChannelSettings(token, ca_cert, client_cert, client_key)
    )
    tls = location.startswith(TLS_SCHEME)
    remote = [a for a in replicas if not is_loopback(a)]
    if settings.token and not tls and remote:
        raise InvalidArgument(
            f"refusing to send a token in the clear to {remote[0]}: "
            f"use grpcs://{address(location)}",
            field="location",
        )
    header = ("authorization", f"Bearer {settings.token}") if settings.token else None
    credentials = settings.credentials() if tls else None
    if aio:
        interceptors = _aio_interceptors(header) if header else None
        if credentials is not None:
            return grpc.aio.secure_channel(target, credentials, options=options,
                                           interceptors=interceptors)
        return grpc.aio.insecure_channel(target, options=options, interceptors=interceptors)
    channel = (grpc.secure_channel(target, credentials, options=options) if credentials
               else grpc.insecure_channel(target, options=options))
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

    def intercept_stream_unary(
        self, continuation: Callable[..., Any], d: Any, requests: Any
    ) -> Any:
        return continuation(self._details(d), requests)

    def intercept_stream_stream(
        self, continuation: Callable[..., Any], d: Any, requests: Any
    ) -> Any:
        return continuation(self._details(d), requests)


def _aio_interceptors(header: tuple[str, str]) -> list[grpc.aio.ClientInterceptor]:
    """grpc.aio files an interceptor under the first call kind it implements, so each
    kind needs its own object."""

    def details(d: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        metadata = grpc.aio.Metadata(*(d.metadata or ()), header)
        return grpc.aio.ClientCallDetails(
            d.method, d.timeout, metadata, d.credentials, d.wait_for_ready
        )

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
