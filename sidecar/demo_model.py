"""A small Open Inference Protocol model server (numpy only) for tours, tests and benchmarks.

It answers ModelInfer for any version of its one model name and echoes the version it
was asked for in the response's ``model_version``, so routing is visible end to end.
The model: every input tensor ``x`` yields an FP32 output ``<name>_out = 2*x + bias`` and
one FP32 output ``score`` (the row sums of the first input), returned as raw contents.
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, TypeAlias

import grpc
import numpy as np
import structlog

from neural.mlops.sidecar.oip import METHODS, SERVICE, SHADOW_PARAMETER, request_tensors
from neural.mlops.v1 import oip_pb2
from neural.mlops.v1.limits import MAX_MESSAGE_BYTES

# One context type for all the methods: their request and response messages differ.
Ctx: TypeAlias = grpc.aio.ServicerContext[Any, Any]

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class DemoModelConfig:
    listen: str = "127.0.0.1:8001"
    name: str = "demo"
    latency_ms: float = 0.0
    error_rate: float = 0.0
    bias: float = 0.0
    seed: int | None = None
    emit_metric: bool = False  # trailing x-neural-metric-output_mean (sidecar custom metrics)
    headers: tuple[tuple[str, str], ...] = ()  # initial metadata on every answer
    # Append each ModelInfer call's request metadata to this file as a JSON line (tests
    # check what a sidecar forwards, e.g. that a shadow never receives credentials).
    record_metadata: str = ""
    # HOST:PORT to serve the REST form on too (sidecar/rest_demo.py); "" = gRPC only.
    http_listen: str = ""


class DemoModel:
    """The handlers, transport-free apart from the status they return."""

    def __init__(self, config: DemoModelConfig) -> None:
        self.config = config
        self._rng = random.Random(config.seed)
        self.calls = 0
        self.last_request: oip_pb2.ModelInferRequest | None = None

    def _known(self, name: str) -> bool:
        return name == self.config.name

    async def ServerLive(
        self, req: oip_pb2.ServerLiveRequest, ctx: Ctx
    ) -> oip_pb2.ServerLiveResponse:  # noqa: N802
        return oip_pb2.ServerLiveResponse(live=True)

    async def ServerReady(
        self, req: oip_pb2.ServerReadyRequest, ctx: Ctx
    ) -> oip_pb2.ServerReadyResponse:  # noqa: N802
        return oip_pb2.ServerReadyResponse(ready=True)

    async def ModelReady(
        self, req: oip_pb2.ModelReadyRequest, ctx: Ctx
    ) -> oip_pb2.ModelReadyResponse:  # noqa: N802
        return oip_pb2.ModelReadyResponse(ready=self._known(req.name))

    async def ServerMetadata(
        self, req: oip_pb2.ServerMetadataRequest, ctx: Ctx
    ) -> oip_pb2.ServerMetadataResponse:  # noqa: N802
        if self.config.headers:
            await ctx.send_initial_metadata(self.config.headers)
        return oip_pb2.ServerMetadataResponse(name="neural-mlops-demo", version="1", extensions=[])

    async def ModelMetadata(
        self, req: oip_pb2.ModelMetadataRequest, ctx: Ctx
    ) -> oip_pb2.ModelMetadataResponse:  # noqa: N802
        if not self._known(req.name):
            await ctx.abort(grpc.StatusCode.NOT_FOUND, f"unknown model {req.name!r}")
        meta = oip_pb2.ModelMetadataResponse.TensorMetadata
        return oip_pb2.ModelMetadataResponse(
            name=req.name,
            versions=[req.version] if req.version else [],
            platform="numpy",
            inputs=[meta(name="input", datatype="FP32", shape=[-1, -1])],
            outputs=[meta(name="score", datatype="FP32", shape=[-1])],
        )

    async def ModelInfer(
        self, req: oip_pb2.ModelInferRequest, ctx: Ctx
    ) -> oip_pb2.ModelInferResponse:  # noqa: N802
        self.calls += 1
        self.last_request = req
        if self.config.record_metadata:
            self._record(req, ctx)
        if self.config.headers:
            await ctx.send_initial_metadata(self.config.headers)
        if not self._known(req.model_name):
            await ctx.abort(grpc.StatusCode.NOT_FOUND, f"unknown model {req.model_name!r}")
        if self.config.latency_ms > 0:
            await asyncio.sleep(self.config.latency_ms / 1000.0)
        if self.config.error_rate > 0 and self._rng.random() < self.config.error_rate:
            await ctx.abort(grpc.StatusCode.INTERNAL, "injected error (--error-rate)")
        try:
            tensors = request_tensors(req)
        except (ValueError, TypeError) as exc:
            await ctx.abort(grpc.StatusCode.INVALID_ARGUMENT, f"inputs: {exc}")
        resp = oip_pb2.ModelInferResponse(
            model_name=req.model_name, model_version=req.model_version, id=req.id
        )
        outputs, mean = self.compute(tensors)
        for name, arr in outputs:
            resp.outputs.add(name=name, datatype="FP32", shape=list(arr.shape))
            resp.raw_output_contents.append(arr.astype("<f4").tobytes())
        if mean is not None and self.config.emit_metric:
            ctx.set_trailing_metadata((("x-neural-metric-output_mean", repr(mean)),))
        return resp

    def compute(
        self, tensors: dict[str, np.ndarray]
    ) -> tuple[list[tuple[str, np.ndarray]], float | None]:
        """The model, transport-free (the gRPC and REST forms share it): the outputs by
        name, and the mean of the first output (its custom metric; None without input)."""
        bias = np.float32(self.config.bias)
        outputs: list[tuple[str, np.ndarray]] = []
        first: np.ndarray | None = None
        for name, arr in tensors.items():
            if arr.dtype == object:
                continue
            x = arr.astype(np.float32, copy=False)
            first = x if first is None else first
            outputs.append((f"{name}_out", x * np.float32(2) + bias))
        if first is None:
            return outputs, None
        score = (
            first.reshape(first.shape[0], -1).sum(axis=1)
            if first.ndim > 1
            else first.sum(keepdims=True)
        )
        outputs.append(("score", (score + bias).astype(np.float32)))
        return outputs, float((first * np.float32(2) + bias).mean())

    def _record(self, req: oip_pb2.ModelInferRequest, ctx: Ctx) -> None:
        md = ctx.invocation_metadata() or ()
        mark = req.parameters.get(SHADOW_PARAMETER)
        line = {
            "model_name": req.model_name,
            "model_version": req.model_version,
            "shadow": bool(mark is not None and mark.bool_param),
            "metadata": [[k, v if isinstance(v, str) else v.hex()] for k, v in md],
        }
        with open(self.config.record_metadata, "a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")

    async def ModelStreamInfer(  # noqa: N802
        self, requests: AsyncIterator[oip_pb2.ModelInferRequest], ctx: Ctx
    ) -> AsyncIterator[oip_pb2.ModelStreamInferResponse]:
        """Triton's bidirectional streaming form: one response (or error message) per request."""
        async for req in requests:
            if not self._known(req.model_name):
                yield oip_pb2.ModelStreamInferResponse(
                    error_message=f"unknown model {req.model_name!r}"
                )
                continue
            yield oip_pb2.ModelStreamInferResponse(infer_response=await self.ModelInfer(req, ctx))


def handler(model: DemoModel) -> grpc.GenericRpcHandler:
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {
        "ModelStreamInfer": grpc.stream_stream_rpc_method_handler(
            model.ModelStreamInfer,
            request_deserializer=oip_pb2.ModelInferRequest.FromString,
            response_serializer=oip_pb2.ModelStreamInferResponse.SerializeToString,
        )
    }
    for method, (req_cls, resp_cls) in METHODS.items():
        handlers[method] = grpc.unary_unary_rpc_method_handler(
            getattr(model, method),
            request_deserializer=req_cls.FromString,
            response_serializer=resp_cls.SerializeToString,
        )
    return grpc.method_handlers_generic_handler(SERVICE, handlers)


class DemoModelServer:
    def __init__(self, config: DemoModelConfig) -> None:
        self.config = config
        self.model = DemoModel(config)
        self.server: grpc.aio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = grpc.aio.server(
            handlers=[handler(self.model)],
            options=[
                ("grpc.so_reuseport", 0),
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ],
        )
        self.port = self.server.add_insecure_port(self.config.listen)
        if self.port == 0:
            raise OSError(f"cannot listen on {self.config.listen}")
        await self.server.start()

    @property
    def address(self) -> str:
        return f"{self.config.listen.rsplit(':', 1)[0]}:{self.port}"

    async def stop(self, grace: float = 1.0) -> None:
        if self.server is not None:
            await self.server.stop(grace)


async def serve(config: DemoModelConfig) -> int:
    from neural.mlops.sidecar.rest_demo import DemoRestServer

    server = DemoModelServer(config)
    await server.start()
    rest = DemoRestServer(server.model, config.http_listen) if config.http_listen else None
    if rest is not None:
        await rest.start()
    log.info("demo model serving", address=server.address, model=config.name)
    also = f", REST on {rest.url}" if rest is not None else ""
    print(f"demo model {config.name!r} listening on {server.address}{also}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    if rest is not None:
        await rest.stop()
    await server.stop()
    return 0
