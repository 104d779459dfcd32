"""Call any RPC of a control plane by its path, with or without a bearer token (tests)."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

import grpc
from google.protobuf import descriptor_pool, message_factory
from grpc_health.v1 import health_pb2  # noqa: F401  (registers the descriptors)
from grpc_reflection.v1alpha import reflection_pb2  # noqa: F401

import neural.mlops.v1 as v1
from neural.mlops.server.reflection import register_v1_descriptor

for _m in pkgutil.iter_modules(v1.__path__):
    if _m.name.endswith("_pb2"):
        importlib.import_module(f"{v1.__name__}.{_m.name}")
register_v1_descriptor()  # grpc.reflection.v1 is in the permission table too


def method_descriptor(path: str) -> Any:
    service, method = path.strip("/").split("/")
    return descriptor_pool.Default().FindServiceByName(service).methods_by_name[method]


def message(path: str, **fields: Any) -> Any:
    """The request message of ``path``, built from ``fields``."""
    cls = message_factory.GetMessageClass(method_descriptor(path).input_type)
    return cls(**fields)


def call(channel: grpc.Channel, path: str, request: Any = None, *, token: str | None = None,
         metadata: tuple[tuple[str, str], ...] = (), timeout: float = 10.0) -> Any:
    """The first response (streams: the first message, or None when empty); raises
    grpc.RpcError."""
    desc = method_descriptor(path)
    req_cls = message_factory.GetMessageClass(desc.input_type)
    resp_cls = message_factory.GetMessageClass(desc.output_type)
    request = request if request is not None else req_cls()
    md = (*metadata, ("authorization", f"Bearer {token}")) if token else metadata
    kw = {"request_serializer": req_cls.SerializeToString,
          "response_deserializer": resp_cls.FromString}
    args = {"metadata": md, "timeout": timeout}
    if desc.client_streaming and desc.server_streaming:
        stream = channel.stream_stream(path, **kw)(iter([request]), **args)
        return next(stream, None)
    if desc.client_streaming:
        requests = request if isinstance(request, list) else [request]
        return channel.stream_unary(path, **kw)(iter(requests), **args)
    if desc.server_streaming:
        stream = channel.unary_stream(path, **kw)(request, **args)
        try:
            return next(stream, None)
        finally:
            stream.cancel()
    return channel.unary_unary(path, **kw)(request, **args)


def status(channel: grpc.Channel, path: str, request: Any = None, **kw: Any) -> grpc.StatusCode:
    try:
        call(channel, path, request, **kw)
    except grpc.RpcError as err:
        return err.code()
    return grpc.StatusCode.OK
