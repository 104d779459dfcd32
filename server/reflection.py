"""Server reflection under both protocol versions: ``grpc.reflection.v1``, which newer
clients (grpcurl 1.9+, ``buf curl``, Postman) try first, and ``v1alpha`` for older ones.

grpcio-reflection (1.81) ships only v1alpha. v1 is the same protocol published under a
new package: grpc-proto's ``reflection/v1/reflection.proto`` is v1alpha's with the package
renamed, same messages, field numbers and semantics. So one v1alpha servicer answers
both names (its messages are wire-identical to v1's), and the v1 file descriptor, derived
from v1alpha's by renaming the package, joins the default pool so a client can describe
the v1 service too.
"""

from __future__ import annotations

from collections.abc import Iterable

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection, reflection_pb2

V1_SERVICE_NAME = "grpc.reflection.v1.ServerReflection"
V1ALPHA_SERVICE_NAME: str = reflection.SERVICE_NAME
_V1_FILE = "grpc/reflection/v1/reflection.proto"
_V1ALPHA_PREFIX = ".grpc.reflection.v1alpha."
_V1_PREFIX = ".grpc.reflection.v1."


def _renamed(type_name: str) -> str:
    if type_name.startswith(_V1ALPHA_PREFIX):
        return _V1_PREFIX + type_name[len(_V1ALPHA_PREFIX):]
    return type_name


def _rename_fields(messages: Iterable[descriptor_pb2.DescriptorProto]) -> None:
    for msg in messages:
        for field in msg.field:
            if field.HasField("type_name"):
                field.type_name = _renamed(field.type_name)
        _rename_fields(msg.nested_type)


def register_v1_descriptor(pool: descriptor_pool.DescriptorPool | None = None) -> None:
    """Add ``grpc/reflection/v1/reflection.proto`` to ``pool`` (the default one) unless a
    library already registered it."""
    pool = pool or descriptor_pool.Default()
    try:
        pool.FindFileByName(_V1_FILE)
        return
    except KeyError:
        pass
    proto = descriptor_pb2.FileDescriptorProto.FromString(reflection_pb2.DESCRIPTOR.serialized_pb)
    proto.name = _V1_FILE
    proto.package = "grpc.reflection.v1"
    _rename_fields(proto.message_type)
    for service in proto.service:
        for method in service.method:
            method.input_type = _renamed(method.input_type)
            method.output_type = _renamed(method.output_type)
    pool.AddSerializedFile(proto.SerializeToString())


def enable_reflection(server: grpc.aio.Server, service_names: Iterable[str]) -> None:
    """Serve reflection v1 and v1alpha on ``server``, listing ``service_names`` and both
    reflection services."""
    register_v1_descriptor()
    names = [*service_names, V1_SERVICE_NAME, V1ALPHA_SERVICE_NAME]
    servicer = reflection.aio.ReflectionServicer(names)
    info = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers(tuple(
        grpc.method_handlers_generic_handler(name, {"ServerReflectionInfo": info})
        for name in (V1_SERVICE_NAME, V1ALPHA_SERVICE_NAME)
    ))
