"""The floor of this stack: a minimal grpc.aio raw-bytes pass-through proxy.

    python benchmarks/passthrough_proxy.py --listen 127.0.0.1:0 --upstream 127.0.0.1:8001
    python benchmarks/passthrough_proxy.py ... --bytes-only

Every unary method is forwarded as bytes on one reused channel with the caller's
deadline and metadata, and the upstream's answer, status, details, initial and trailing
metadata come back unchanged: what any transparent gRPC proxy must do (and what the
sidecar does), and nothing more. Nothing is parsed, routed, measured or mirrored.
``--bytes-only`` drops the metadata both ways, which no real proxy may do, to show what
forwarding it costs. The sidecar's per-request cost is judged against this
(benchmarks/sidecar_overhead.py).
"""

from __future__ import annotations

import argparse
import asyncio
import signal

import grpc

# Metadata the transport owns; a proxy never copies it onto the next hop.
HOP_BY_HOP = frozenset(
    {"user-agent", "te", "content-type", "grpc-timeout", "grpc-encoding", "grpc-accept-encoding"}
)


class Passthrough(grpc.GenericRpcHandler):
    def __init__(self, upstream: str, *, metadata: bool = True) -> None:
        self.channel = grpc.aio.insecure_channel(upstream)
        self.metadata = metadata
        self.calls: dict[str, grpc.RpcMethodHandler] = {}

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        method = details.method
        h = self.calls.get(method)
        if h is None:
            h = self.calls[method] = grpc.unary_unary_rpc_method_handler(
                self._forwarder(self.channel.unary_unary(method))
            )
        return h

    def _forwarder(self, mc):  # type: ignore[no-untyped-def]
        if not self.metadata:

            async def forward_bytes(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
                try:
                    return await mc(request, timeout=context.time_remaining())
                except grpc.aio.AioRpcError as exc:
                    await context.abort(exc.code(), exc.details() or "")

            return forward_bytes

        async def forward(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
            md = [
                (k, v)
                for k, v in context.invocation_metadata() or ()
                if k[0] != ":" and k not in HOP_BY_HOP
            ]
            call = mc(request, metadata=md, timeout=context.time_remaining())
            try:
                answer = await call
            except grpc.aio.AioRpcError as exc:
                if exc.initial_metadata():
                    await context.send_initial_metadata(tuple(exc.initial_metadata()))
                context.set_trailing_metadata(tuple(exc.trailing_metadata() or ()))
                await context.abort(exc.code(), exc.details() or "")
            initial = await call.initial_metadata()
            if initial:
                await context.send_initial_metadata(tuple(initial))
            trailing = await call.trailing_metadata()
            if trailing:
                context.set_trailing_metadata(tuple(trailing))
            return answer

        return forward


async def main(listen: str, upstream: str, metadata: bool) -> None:
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    server.add_generic_rpc_handlers((Passthrough(upstream, metadata=metadata),))
    port = server.add_insecure_port(listen)
    await server.start()
    print(f"passthrough listening on {listen.rsplit(':', 1)[0]}:{port}", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await server.stop(1)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--listen", default="127.0.0.1:0")
    p.add_argument("--upstream", required=True)
    p.add_argument("--bytes-only", action="store_true", help="drop metadata both ways")
    a = p.parse_args()
    asyncio.run(main(a.listen, a.upstream, not a.bytes_only))
