"""The sidecar's gRPC surface: OIP at its standard paths, everything else as raw bytes.

ModelInfer is the only call the sidecar looks into, and only at the wire level
(:mod:`neural.mlops.sidecar.wire`): read ``model_name``, pick the variant, rewrite
``model_name``/``model_version`` when the variant asks for it, forward with the caller's
metadata and remaining deadline on the upstream's one channel, and return the upstream's
bytes, status, initial and trailing metadata unchanged, plus ``x-neural-variant`` in the
trailing metadata (free: it rides on the status), or in the initial metadata with
``variant_header="initial"`` (one more core batch per call). Every other method (the rest
of OIP, Triton's streaming and repository calls, anything else) is forwarded untouched.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from random import random
from typing import Any, NoReturn, TypeAlias, cast

import grpc
import structlog

from neural.mlops.sidecar.attributes import RequestAttributes
from neural.mlops.sidecar.layers import Recorder
from neural.mlops.sidecar.mirror import Mirror
from neural.mlops.sidecar.oip import MODEL_INFER, PREFIX, VARIANT_HEADER
from neural.mlops.sidecar.router import Router, Shadow
from neural.mlops.sidecar.upstream import Upstreams
from neural.mlops.sidecar.wire import WireError, read_model

log = structlog.get_logger(__name__)

# Metadata the transport owns; never copied to the upstream call.
_HOP_BY_HOP = frozenset(
    {
        "user-agent",
        "te",
        "content-type",
        "grpc-timeout",
        "grpc-encoding",
        "grpc-accept-encoding",
        "host",
        "connection",
        "x-neural-variant",
    }
)
_OIP_UNARY = frozenset(
    f"{PREFIX}{m}"
    for m in ("ServerLive", "ServerReady", "ModelReady", "ServerMetadata", "ModelMetadata")
)
# The proxy handles raw bytes both ways.
Ctx: TypeAlias = grpc.aio.ServicerContext[bytes, bytes]
Handler: TypeAlias = "grpc.RpcMethodHandler[bytes, bytes]"
_perf = time.perf_counter
_ensure_future = asyncio.ensure_future
_MAX_CACHED_METHODS = 1024


def _forwardable(md: Any) -> tuple[tuple[str, Any], ...]:
    return tuple((k, v) for k, v in md if k[0] != ":" and k not in _HOP_BY_HOP)


class Proxy(grpc.GenericRpcHandler):
    """A generic handler: ``service()`` maps every method path to a raw-bytes handler."""

    def __init__(
        self,
        upstreams: Upstreams,
        router: Router,
        mirror: Mirror | None,
        *,
        routing_key_header: str = "x-user-id",
        variant_header: str = "trailing",
    ) -> None:
        if variant_header not in ("initial", "trailing", "off"):
            raise ValueError(f"variant_header: {variant_header!r} is not initial, trailing or off")
        self.variant_header = variant_header
        self.upstreams = upstreams
        self.router = router
        self.mirror = mirror
        self.key_header = routing_key_header.lower()
        self.in_flight = 0
        # Upstreams ("" = the default one) seen sending initial metadata of their own.
        self._sends_headers: set[str] = set()
        self._pumps: set[asyncio.Future[None]] = set()
        self._infer_mc = upstreams.unary("", MODEL_INFER)
        self._handlers: dict[str, Handler] = {
            MODEL_INFER: grpc.unary_unary_rpc_method_handler(self.model_infer)
        }

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> Handler | None:
        method = handler_call_details.method
        h = self._handlers.get(method)
        if h is None:
            h = self._passthrough(method)
            if len(self._handlers) < _MAX_CACHED_METHODS:
                self._handlers[method] = h
        return h

    def _passthrough(self, method: str) -> Handler:
        if method in _OIP_UNARY or not _is_streaming(method):

            async def unary(request: bytes, context: Ctx) -> bytes:
                return await self.forward_unary(method, request, context)

            return grpc.unary_unary_rpc_method_handler(unary)

        # Stream-stream carries client-, server- and bidi-streaming calls alike.
        async def stream(requests: AsyncIterator[bytes], context: Ctx) -> AsyncIterator[bytes]:
            async for item in self.forward_stream(method, requests, context):
                yield item

        return grpc.stream_stream_rpc_method_handler(stream)

    async def model_infer(self, request: bytes, context: Ctx) -> bytes:
        t0 = _perf()
        self.in_flight += 1
        # grpc.aio builds the metadata's tuples anew on every invocation_metadata() call.
        caller_md = context.invocation_metadata()
        key, forced, request_id, fwd = self._caller_metadata(caller_md)
        try:
            try:
                model_name, _ = read_model(request)
            except WireError as exc:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"ModelInferRequest: {exc}")
            attrs = RequestAttributes.from_grpc(caller_md, request)
            res = self.router.resolve(model_name, key, attrs, forced)
            if res is None:
                slot: Recorder = self.router.unrouted_slot(model_name)
                shadows: list[Shadow] = []
                mc = self._infer_mc
                body = request
                variant_name = upstream = ""
            else:
                slot, shadows, variant_name = res.slot, res.shadows, res.label
                variant = res.variant
                upstream = variant.upstream if variant is not None else ""
                body = request + variant.override if variant and variant.override else request
                mc = self._infer_mc if not upstream else self.upstreams.unary(upstream, MODEL_INFER)
                if res.assignments:
                    fwd += res.assignments
            call = mc(body, metadata=fwd, timeout=context.time_remaining())
            ours, header = self._variant_header(context, variant_name, upstream)
            try:
                answer: bytes = await call
            except grpc.aio.AioRpcError as exc:
                if header is not None and not header.done():
                    await header
                seconds = _perf() - t0
                slot.record(exc.code().name, seconds, key)
                if shadows and self.mirror is not None:
                    self._mirror(shadows, request, fwd, None, seconds, request_id)
                await self._abort_as_upstream(context, exc, ours, header, variant_name, upstream)
            if header is not None and not header.done():
                await header
            seconds = _perf() - t0
            await self._answer_metadata(
                context, call, slot, key, ours, header, variant_name, upstream
            )
            slot.record(None, seconds, key)
            if variant_name and shadows and self.mirror is not None:
                self._mirror(shadows, request, fwd, answer, seconds, request_id)
            return answer
        finally:
            self.in_flight -= 1

    def _caller_metadata(
        self, md: Any
    ) -> tuple[str | None, str | None, str, list[tuple[str, str | bytes]]]:
        """The routing key, a forced variant, the request id, and the metadata to forward
        (``md``: the call's invocation metadata)."""
        key = forced = None
        request_id = ""
        fwd = []
        kh = self.key_header
        for k, v in md or ():
            # Only "-bin" keys carry bytes; these three are text.
            if k == kh:
                key = cast(str, v)
            elif k == VARIANT_HEADER:
                forced = cast(str, v)
                continue
            elif k == "x-request-id":
                request_id = cast(str, v)
            if k[0] != ":" and k not in _HOP_BY_HOP:
                fwd.append((k, v))
        return key, forced, request_id, fwd

    def _variant_header(
        self, context: Ctx, variant_name: str, upstream: str
    ) -> tuple[tuple[tuple[str, str], ...], asyncio.Future[None] | None]:
        """Put ``x-neural-variant`` where it was asked for; returns the initial metadata still
        to send and the early send of it, when one was started."""
        ours: tuple[tuple[str, str], ...] = ()
        header = None
        if variant_name:
            if self.variant_header == "initial":
                ours = ((VARIANT_HEADER, variant_name),)
                if upstream not in self._sends_headers:
                    # The header costs a batch of its own in grpc's core: start it now
                    # and let it complete while the upstream works (batches on one call
                    # keep their order, so it still precedes the response).
                    header = _ensure_future(context.send_initial_metadata(ours))
            elif self.variant_header == "trailing":
                context.set_trailing_metadata(((VARIANT_HEADER, variant_name),))
        return ours, header

    async def _abort_as_upstream(
        self,
        context: Ctx,
        exc: grpc.aio.AioRpcError,
        ours: tuple[tuple[str, str], ...],
        header: asyncio.Future[None] | None,
        variant_name: str,
        upstream: str,
    ) -> NoReturn:
        """End the call with the upstream's status, details and metadata."""
        trailing = _forwardable(exc.trailing_metadata() or ())
        trailing += await self._initial_metadata(
            context, exc.initial_metadata(), ours, header, variant_name and upstream
        )
        if variant_name and self.variant_header == "trailing":
            trailing += ((VARIANT_HEADER, variant_name),)
        if trailing:
            context.set_trailing_metadata(trailing)
        await context.abort(exc.code(), exc.details() or "")

    async def _answer_metadata(
        self,
        context: Ctx,
        call: grpc.aio.UnaryUnaryCall[bytes, bytes],
        slot: Recorder,
        key: str | None,
        ours: tuple[tuple[str, str], ...],
        header: asyncio.Future[None] | None,
        variant_name: str,
        upstream: str,
    ) -> None:
        """Pass the upstream's metadata of an answered call on; record its custom metrics."""
        # The answer has arrived, so neither await waits.
        upstream_md = await call.initial_metadata()
        moved = (
            await self._initial_metadata(
                context, upstream_md, ours, header, variant_name and upstream
            )
            if upstream_md or header is None
            else ()
        )
        trailing = await call.trailing_metadata()
        if trailing or moved:
            custom = _custom_metrics(trailing) if trailing else None
            if custom:
                slot.record_custom(custom, key)
            fwd_trailing = _forwardable(trailing) + moved
            if variant_name and self.variant_header == "trailing":
                fwd_trailing += ((VARIANT_HEADER, variant_name),)
            context.set_trailing_metadata(fwd_trailing)

    async def _initial_metadata(
        self,
        context: Ctx,
        upstream_md: Any,
        ours: tuple[tuple[str, str], ...],
        header: asyncio.Future[None] | None,
        upstream: str,
    ) -> tuple[tuple[str, Any], ...]:
        """Send the caller the upstream's initial metadata, with our header when it has not
        gone ahead already. Returns what could not go in the initial metadata any more.

        Most model servers (Triton, MLServer, KServe's) send none, so the header goes out
        early, overlapping the upstream's work. Once an upstream is seen sending some, its
        later calls hold the header back until the answer and send both together; the one
        answer that taught us has its upstream headers moved into the trailers."""
        md = _forwardable(upstream_md) if upstream_md else ()
        if header is None:
            if md or ours:
                await context.send_initial_metadata(md + ours)
            return ()
        if md:
            self._sends_headers.add(upstream)
            log.info(
                "upstream sends initial metadata; x-neural-variant now waits for it",
                upstream=upstream or self.upstreams.default,
            )
        return md

    def _mirror(
        self,
        shadows: list[Shadow],
        request: bytes,
        md: list[tuple[str, str | bytes]],
        answer: bytes | None,
        seconds: float,
        request_id: str,
    ) -> None:
        for sh in shadows:
            if sh.fraction < 1.0 and random() >= sh.fraction:
                continue
            self.mirror.submit(sh, request, tuple(md), answer, seconds, request_id)  # type: ignore[union-attr]

    async def forward_unary(self, method: str, request: bytes, context: Ctx) -> bytes:
        self.in_flight += 1
        try:
            call = self.upstreams.unary("", method)(
                request,
                metadata=_forwardable(context.invocation_metadata() or ()),
                timeout=context.time_remaining(),
            )
            try:
                answer: bytes = await call
            except grpc.aio.AioRpcError as exc:
                md = exc.initial_metadata()
                if md:
                    await context.send_initial_metadata(_forwardable(md))
                trailing = exc.trailing_metadata()
                if trailing:
                    context.set_trailing_metadata(_forwardable(trailing))
                await context.abort(exc.code(), exc.details() or "")
            md = await call.initial_metadata()
            if md:
                await context.send_initial_metadata(_forwardable(md))
            trailing = await call.trailing_metadata()
            if trailing:
                context.set_trailing_metadata(_forwardable(trailing))
            return answer
        finally:
            self.in_flight -= 1

    async def forward_stream(
        self, method: str, requests: AsyncIterator[bytes], context: Ctx
    ) -> AsyncIterator[bytes]:
        self.in_flight += 1
        call = self.upstreams.stream("", method)(
            metadata=_forwardable(context.invocation_metadata() or ()),
            timeout=context.time_remaining(),
        )

        async def pump() -> None:
            # Caller -> upstream, until the caller half-closes or the upstream call ends.
            try:
                async for item in requests:
                    await call.write(item)
                await call.done_writing()
            except (grpc.aio.AioRpcError, asyncio.InvalidStateError, grpc.RpcError):
                pass
            except Exception:  # noqa: BLE001 - the call's status tells the caller
                log.debug("stream pump ended", method=method, exc_info=True)

        pumping = asyncio.ensure_future(pump())
        try:
            md = await call.initial_metadata()
            if md:
                await context.send_initial_metadata(_forwardable(md))
            while True:
                item = await call.read()
                if item is grpc.aio.EOF:
                    break
                yield item
            code = await call.code()
            await _settle(pumping)
            trailing = await call.trailing_metadata()
            if trailing:
                context.set_trailing_metadata(_forwardable(trailing))
            if code != grpc.StatusCode.OK:
                await context.abort(code, await call.details() or "")
        except grpc.aio.AioRpcError as exc:
            await _settle(pumping)
            trailing = exc.trailing_metadata()
            if trailing:
                context.set_trailing_metadata(_forwardable(trailing))
            await context.abort(exc.code(), exc.details() or "")
        finally:
            self.in_flight -= 1
            # The pump ends by itself once the call is over (cancelling a pending read of
            # the caller's stream from here upsets grpc's core).
            self._pumps.add(pumping)
            pumping.add_done_callback(self._pumps.discard)


def _is_streaming(method: str) -> bool:
    """Whether to forward ``method`` as a stream. The wire does not say: gRPC's framing is
    the same for every cardinality, but a unary handler rejects a second message. Triton's
    ``ModelStreamInfer`` and any method named ``*Stream*`` are streamed; the rest (every
    other OIP, Triton and MLServer method) is unary, which is cheaper."""
    return "Stream" in method.rsplit("/", 1)[-1]


async def _settle(pump: asyncio.Future[None], timeout: float = 1.0) -> None:
    """Let the caller->upstream pump finish reading before the call's status is sent:
    finishing a server call while a read on it is pending makes grpc's core fail it."""
    if not pump.done():
        try:
            await asyncio.wait_for(asyncio.shield(pump), timeout)
        except TimeoutError:
            pass


METRIC_PREFIX = "x-neural-metric-"


def _custom_metrics(md: Any) -> dict[str, float] | None:
    """``x-neural-metric-<name>: <number>`` entries of the upstream's trailing metadata:
    a model server's way to attach custom metrics (e.g. confidence) to a call."""
    out = None
    for k, v in md:
        if k.startswith(METRIC_PREFIX) and isinstance(v, str):
            try:
                x = float(v)
            except ValueError:
                continue
            if x == x and x not in (float("inf"), float("-inf")):
                if out is None:
                    out = {}
                out[k[len(METRIC_PREFIX) :]] = x
    return out
