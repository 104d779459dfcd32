"""``neural-mlops rpc``: call any RPC of a running server through gRPC server reflection.

The typed commands (``registry``, ``ab``, ``deploy``, ``audit`` ...) cover the everyday
work; ``rpc`` makes every method of every service reachable with the same target, token,
exit codes and JSON output, without .proto files (the server describes itself)::

    neural-mlops rpc list
    neural-mlops rpc describe neural.mlops.v1.ExperimentService
    neural-mlops rpc call neural.mlops.v1.RegistryService/ListModels -d '{"page_size": 10}'
    neural-mlops rpc call neural.mlops.v1.AuditService/QueryEvents -d '{"limit": 5}'   # streams

Request and response use the .proto field names. A client-streaming method takes a JSON
list (one object per message); a server-streaming one prints one JSON document per
message (``--json``: a single JSON list).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import Any

from neural.mlops.cli._output import DEFAULT_TARGET, print_json
from neural.mlops.server.errors import InvalidArgument, NotFound


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "rpc",
        help="call any RPC of a server through gRPC reflection",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    rpc = p.add_subparsers(dest="rpc_command", metavar="ACTION", required=True)

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument(
            "--target",
            default=os.environ.get("NEURAL_MLOPS_TARGET", DEFAULT_TARGET),
            help="grpc://HOST:PORT of a server with reflection (env NEURAL_MLOPS_TARGET)",
        )
        q.add_argument(
            "--token",
            default=os.environ.get("NEURAL_MLOPS_TOKEN"),
            help="API token (env NEURAL_MLOPS_TOKEN)",
        )
        q.add_argument("--json", action="store_true", help="print JSON for scripts")

    ls = rpc.add_parser("list", help="services and their methods")
    ls.add_argument("service", nargs="?", help="only this service")
    common(ls)
    ls.set_defaults(handler=cmd_list)

    ds = rpc.add_parser("describe", help="a service, method or message, as the server describes it")
    ds.add_argument(
        "symbol", help="e.g. neural.mlops.v1.ExperimentService or neural.mlops.v1.ABTest"
    )
    common(ds)
    ds.set_defaults(handler=cmd_describe)

    call = rpc.add_parser("call", help="call SERVICE/METHOD with a JSON request")
    call.add_argument(
        "method", help="full name, e.g. neural.mlops.v1.RegistryService/GetModelVersion"
    )
    call.add_argument(
        "-d", "--data", default="{}", help="request as JSON ('@FILE' reads a file, '-' stdin)"
    )
    call.add_argument(
        "-H",
        "--header",
        action="append",
        default=[],
        metavar="KEY: VALUE",
        help="request metadata (repeat)",
    )
    call.add_argument("--user", help="caller identity (x-neural-user metadata)")
    call.add_argument("--timeout", type=float, default=60.0, help="deadline in seconds")
    common(call)
    call.set_defaults(handler=cmd_call)


class Reflection:
    """Descriptors of a live server, fetched on demand through server reflection."""

    def __init__(self, target: str) -> None:
        from google.protobuf import descriptor_pool
        from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
            ProtoReflectionDescriptorDatabase,
        )

        from neural.mlops._channel import address, is_remote, open_channel

        if not is_remote(target):
            raise InvalidArgument(
                "rpc needs a running server: --target grpc://HOST:PORT (or grpcs://)",
                field="target",
            )
        self.address = address(target)
        # token="": the rpc command sends its own authorization header with each call.
        self.channel = open_channel(target, token="", aio=False)
        self.db = ProtoReflectionDescriptorDatabase(self.channel)
        self.pool = descriptor_pool.DescriptorPool(self.db)

    def services(self) -> list[str]:
        return sorted(self._guard(self.db.get_services))

    def service(self, name: str) -> Any:
        try:
            return self._guard(lambda: self.pool.FindServiceByName(name))
        except KeyError:
            raise NotFound(
                f"the server has no service {name!r} (see `neural-mlops rpc list`)"
            ) from None

    def _guard(self, fn: Any) -> Any:
        import grpc

        from neural.mlops._runtime import error_from_rpc

        try:
            return fn()
        except grpc.RpcError as err:
            raise error_from_rpc(err) from None

    def close(self) -> None:
        self.channel.close()


def _method_signature(m: Any) -> str:
    req = ("stream " if m.client_streaming else "") + m.input_type.full_name
    resp = ("stream " if m.server_streaming else "") + m.output_type.full_name
    return f"{m.name}({req}) returns ({resp})"


def cmd_list(args: argparse.Namespace) -> int:
    refl = Reflection(args.target)
    try:
        names = [args.service] if args.service else refl.services()
        listing = {}
        for name in names:
            if name == "grpc.reflection.v1alpha.ServerReflection":
                listing[name] = ["ServerReflectionInfo(stream ...) returns (stream ...)"]
                continue
            svc = refl.service(name)
            listing[name] = [_method_signature(m) for m in svc.methods]
    finally:
        refl.close()
    if args.json:
        print_json(listing)
    else:
        for name, methods in listing.items():
            print(name)
            for m in methods:
                print(f"  {m}")
    return 0


def _describe_message(desc: Any) -> dict[str, Any]:
    from google.protobuf.descriptor import FieldDescriptor

    fields = []
    for f in desc.fields:
        kind = (
            f.message_type.full_name
            if f.message_type
            else (
                f.enum_type.full_name
                if f.enum_type
                else {v: k for k, v in vars(FieldDescriptor).items() if k.startswith("TYPE_")}[
                    f.type
                ][5:].lower()
            )
        )
        label = "repeated " if f.label == FieldDescriptor.LABEL_REPEATED else ""
        fields.append(f"{label}{kind} {f.name} = {f.number}")
    return {"message": desc.full_name, "fields": fields}


def cmd_describe(args: argparse.Namespace) -> int:
    refl = Reflection(args.target)
    try:
        symbol = args.symbol
        try:
            found: dict[str, Any] = {
                "service": symbol,
                "methods": [
                    _method_signature(m)
                    for m in refl._guard(lambda: refl.pool.FindServiceByName(symbol)).methods
                ],
            }
        except KeyError:
            try:
                found = _describe_message(
                    refl._guard(lambda: refl.pool.FindMessageTypeByName(symbol))
                )
            except KeyError:
                try:
                    enum = refl._guard(lambda: refl.pool.FindEnumTypeByName(symbol))
                    found = {
                        "enum": symbol,
                        "values": [f"{v.name} = {v.number}" for v in enum.values],
                    }
                except KeyError:
                    raise NotFound(
                        f"the server describes no service, message or enum {symbol!r}"
                    ) from None
    finally:
        refl.close()
    if args.json:
        print_json(found)
    else:
        kind = next(iter(found))
        print(f"{kind} {found[kind]}")
        for line in found.get("methods") or found.get("fields") or found.get("values") or []:
            print(f"  {line}")
    return 0


def _read_data(raw: str) -> Any:
    if raw == "-":
        raw = sys.stdin.read()
    elif raw.startswith("@"):
        try:
            with open(raw[1:], encoding="utf-8") as fh:
                raw = fh.read()
        except OSError as exc:
            raise InvalidArgument(
                f"--data: cannot read {raw[1:]}: {exc.strerror}", field="data"
            ) from None
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidArgument(f"--data is not valid JSON: {exc}", field="data") from None


def _call_metadata(args: argparse.Namespace) -> list[tuple[str, str]]:
    """--header, --user and --token as the call's metadata."""
    metadata = []
    for header in args.header:
        key, colon, value = header.partition(":")
        if not colon or not key.strip():
            raise InvalidArgument(f"--header expects 'KEY: VALUE', got {header!r}", field="header")
        metadata.append((key.strip().lower(), value.strip()))
    if args.user:
        metadata.append(("x-neural-user", args.user))
    if args.token:
        metadata.append(("authorization", f"Bearer {args.token}"))
    return metadata


def cmd_call(args: argparse.Namespace) -> int:
    import grpc
    from google.protobuf import json_format, message_factory

    from neural.mlops._runtime import error_from_rpc

    service_name, sep, method_name = args.method.rpartition("/")
    if not sep or not service_name or not method_name:
        raise InvalidArgument(f"method must be SERVICE/METHOD, got {args.method!r}", field="method")
    metadata = _call_metadata(args)
    data = _read_data(args.data)

    refl = Reflection(args.target)
    try:
        svc = refl.service(service_name)
        method = svc.methods_by_name.get(method_name)
        if method is None:
            raise NotFound(
                f"{service_name} has no method {method_name!r}; it has: "
                f"{', '.join(m.name for m in svc.methods)}"
            )
        req_cls = message_factory.GetMessageClass(method.input_type)
        resp_cls = message_factory.GetMessageClass(method.output_type)

        def parse(obj: Any) -> Any:
            try:
                return json_format.ParseDict(obj, req_cls())
            except json_format.ParseError as exc:
                raise InvalidArgument(
                    f"--data does not fit {method.input_type.full_name}: {exc}", field="data"
                ) from None

        if method.client_streaming:
            requests = [parse(o) for o in (data if isinstance(data, list) else [data])]
        else:
            if not isinstance(data, dict):
                raise InvalidArgument(f"{method_name} takes one JSON object", field="data")
            request = parse(data)
        path = f"/{service_name}/{method_name}"
        kinds: dict[tuple[bool, bool], Callable[..., Any]] = {
            (False, False): refl.channel.unary_unary,
            (False, True): refl.channel.unary_stream,
            (True, False): refl.channel.stream_unary,
            (True, True): refl.channel.stream_stream,
        }
        stub = kinds[(method.client_streaming, method.server_streaming)](
            path,
            request_serializer=req_cls.SerializeToString,
            response_deserializer=resp_cls.FromString,
        )

        def to_dict(msg: Any) -> Any:
            return json_format.MessageToDict(msg, preserving_proto_field_name=True)

        try:
            arg = iter(requests) if method.client_streaming else request
            result = stub(arg, metadata=metadata, timeout=args.timeout)
            if method.server_streaming:
                if args.json:
                    print_json([to_dict(m) for m in result])
                else:
                    for m in result:
                        print(json.dumps(to_dict(m), indent=2, sort_keys=True))
            else:
                print(json.dumps(to_dict(result), indent=2, sort_keys=True))
        except grpc.RpcError as err:
            raise error_from_rpc(err) from None
    finally:
        refl.close()
    return 0
