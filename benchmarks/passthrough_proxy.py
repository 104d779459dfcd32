"""The floor of this stack: a minimal grpc.aio raw-bytes pass-through proxy.

    python benchmarks/passthrough_proxy.py --listen 127.0.0.1:0 --upstream 127.0.0.1:8001

Every unary method is forwarded as bytes on one reused channel with the caller's
deadline; nothing is parsed, routed, measured or mirrored. The sidecar's per-request
cost is judged against this (benchmarks/sidecar_overhead.py).
"""

from __future__ import annotations

import argparse
import asyncio
import signal

import grpc


class Passthrough(grpc.GenericRpcHandler):
    def __init__(self, upstream: str) -> None:
        self.channel = grpc.aio.insecure_channel(upstream)
        self.calls: dict[str, grpc.RpcMethodHandler] = {}

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        method = details.method
        h = self.calls.get(method)
        if h is None:
            mc = self.channel.unary_unary(method)

            async def forward(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
                try:
                    return await mc(request, timeout=context.time_remaining())
                except grpc.aio.AioRpcError as exc:
                    await context.abort(exc.code(), exc.details() or "")

            h = self.calls[method] = grpc.unary_unary_rpc_method_handler(forward)
        return h


async def main(listen: str, upstream: str) -> None:
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    server.add_generic_rpc_handlers((Passthrough(upstream),))
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
    a = p.parse_args()
    asyncio.run(main(a.listen, a.upstream))
