"""The sidecar's REST surface: the Open Inference Protocol over HTTP, in front of a model
server that speaks it (MLServer, Triton, KServe), with the gRPC path's routing, shadowing
and metrics.

``POST /v2/models/{name}[/versions/{version}]/infer`` is the only call the sidecar looks
into, and only at its path and headers: the model is routed as a gRPC ModelInfer is
(:class:`~neural.mlops.sidecar.router.Router`, the unit from ``--routing-key-header``,
``x-neural-variant`` forcing a variant), the chosen variant rewrites the model name and
version in the upstream URL, and the body streams to the variant's REST upstream on one
pooled keep-alive session and the answer streams back: status, headers and body as the
upstream sent them, plus ``x-neural-variant: <variant>`` (HTTP/1.1 has no cheap trailers,
so it is a response header unless ``--variant-header off``). Requests of a route with a
shadow due are read whole (the copy needs them), and so are their answers (to compare).
Every other path (health, metadata, readiness, server metadata, repository calls) is
forwarded untouched to ``--upstream-http``, as the gRPC path forwards every other method.

Per call the variant's metric slot records latency and outcome (an HTTP error status as
the gRPC status of the same meaning: :data:`HTTP_TO_GRPC`), and the upstream's
``x-neural-metric-<name>: <number>`` response headers as custom metrics. The sidecar's own
errors are OIP REST errors, ``{"error": "..."}``: 413 for a body over the contract's
message limit, 503 when the upstream cannot be reached or a variant's upstream has no REST
form, 504 when it does not answer within ``--http-timeout``.

Compressed bodies (``Content-Encoding``) are never decoded on their way: the listener runs
with aiohttp's request decompression off (:meth:`RestFront.runner`), so the upstream gets
the caller's bytes and headers as sent. When targeting reads ``param.*`` the sidecar
decodes its own copy (:func:`~neural.mlops.sidecar.rest_oip.decompress`: gzip, deflate,
identity; bounded by the message limit) and refuses, before routing, a body it cannot
read: 413 when it inflates past the limit, 400 when corrupt, 415 (with
``Accept-Encoding``) for another coding, rather than route it as if it had no parameters.
"""

from __future__ import annotations

import time
from random import random
from typing import Any

import aiohttp
import structlog
from aiohttp import web
from multidict import CIMultiDict

from neural.mlops.sidecar.attributes import RequestAttributes
from neural.mlops.sidecar.layers import Recorder
from neural.mlops.sidecar.oip import VARIANT_HEADER
from neural.mlops.sidecar.proxy import METRIC_PREFIX, _custom_metrics
from neural.mlops.sidecar.rest_body import (
    BodyTooLarge,
    CallerBody,
    oip_error,
    too_large,
    undecodable,
)
from neural.mlops.sidecar.rest_mirror import RestMirror
from neural.mlops.sidecar.rest_oip import HEADER_LENGTH, BodyEncodingError, infer_path
from neural.mlops.sidecar.router import Router, Shadow
from neural.mlops.sidecar.upstream import HttpUpstreams
from neural.mlops.v1.limits import MAX_MESSAGE_BYTES

log = structlog.get_logger(__name__)

# RFC 9110 7.6.1 connection-specific fields, and the ones aiohttp writes itself.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "expect",
    }
)
_NOT_FORWARDED = _HOP_BY_HOP | {VARIANT_HEADER}
# HTTP status -> the gRPC status of the same meaning (google.rpc code.proto's mapping),
# so a variant's errors are counted in the gRPC path's vocabulary.
HTTP_TO_GRPC = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    413: "RESOURCE_EXHAUSTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_perf = time.perf_counter
_TRUNCATED = web.ResponseKey("neural.truncated", bool)
# An answer as the mirror reads it: (body, content-encoding, JSON header length).
_Answer = tuple[bytes, str, str | None]


def grpc_code(status: int) -> str | None:
    """None for a success, else the gRPC status name that the call is counted under."""
    if status < 400:
        return None
    return HTTP_TO_GRPC.get(status, "FAILED_PRECONDITION" if status < 500 else "UNKNOWN")


class _Target:
    """Where one infer call goes (:meth:`Router.resolve`): the variant served (or the
    caller's model as asked), where it is counted, its shadows, URL and label."""

    __slots__ = ("shadows", "label", "base", "path", "slot", "version", "upstream", "tags")

    def __init__(self, router: Router, name: str, version: str | None, unit: str | None,
                 forced: str | None, attrs: RequestAttributes,
                 upstreams: HttpUpstreams) -> None:
        res = router.resolve(name, unit, attrs, forced)
        self.version = version
        v = res.variant if res is not None else None
        self.slot: Recorder = res.slot if res is not None else router.unrouted_slot(name)
        self.shadows: list[Shadow] = res.shadows if res is not None else []
        self.label = res.label if res is not None else ""
        self.tags = res.assignments if res is not None else ()
        self.upstream = v.upstream if v is not None else ""
        self.path = (
            infer_path(v.model_name, v.model_version or version)
            if v is not None
            else infer_path(name, version)
        )
        self.base = upstreams.base(self.upstream)


def reads_params(router: Router, model_name: str) -> bool:
    """Whether a targeting condition of the model's routes names a ``param.*`` attribute
    (the body is then read before routing). Walks the model's plan, so callers cache it
    per routing table."""
    t = router.table
    plan = t.plans.get(model_name) if t is not None else None
    if plan is None:
        return False
    routes = [plan.default] + [r for layer in plan.layers for r in layer.routes]
    return any(r is not None and r.matcher is not None and r.matcher.reads_params
               for r in routes)


class RestFront:
    """The aiohttp application; :attr:`in_flight` counts calls being served."""

    def __init__(
        self,
        upstreams: HttpUpstreams,
        router: Router,
        mirror: RestMirror | None,
        *,
        routing_key_header: str = "x-user-id",
        variant_header: str = "trailing",
        max_body: int = MAX_MESSAGE_BYTES,
    ) -> None:
        self.upstreams = upstreams
        self.router = router
        self.mirror = mirror
        self.key_header = routing_key_header.lower()
        self.name_variant = variant_header != "off"
        self.max_body = max_body
        self.in_flight = 0
        # Per routing table: models whose targeting reads request parameters.
        self._params_table: object = None
        self._params: dict[str, bool] = {}
        self.app = web.Application(client_max_size=max_body)
        self.app.router.add_post("/v2/models/{name}/infer", self.infer)
        self.app.router.add_post("/v2/models/{name}/versions/{version}/infer", self.infer)
        self.app.router.add_route("*", "/{tail:.*}", self.forward)

    def runner(self, **kwargs: Any) -> web.AppRunner:
        """The application's runner, with aiohttp's request decompression off: bodies reach
        the handlers (and the upstream) as the caller encoded them."""
        return web.AppRunner(self.app, auto_decompress=False, **kwargs)

    def _caller(
        self, request: web.Request
    ) -> tuple[str | None, str | None, str, list[tuple[str, str]]]:
        """The routing key, a forced variant, the request id, the headers to forward."""
        key = forced = None
        request_id = ""
        fwd = []
        kh = self.key_header
        for k, v in request.headers.items():
            lk = k.lower()
            if lk == kh:
                key = v
            elif lk == VARIANT_HEADER:
                forced = v
            elif lk == "x-request-id":
                request_id = v
            if lk not in _NOT_FORWARDED:
                fwd.append((lk, v))
        return key, forced, request_id, fwd

    def _body(self, request: web.Request) -> CallerBody:
        return CallerBody(request, self.max_body)

    def _due(self, shadows: list[Shadow]) -> list[Shadow]:
        if not shadows or self.mirror is None:
            return []
        return [sh for sh in shadows if sh.fraction >= 1.0 or random() < sh.fraction]

    def _reads_params(self, model_name: str) -> bool:
        table = self.router.table
        if table is not self._params_table:
            self._params_table = table
            self._params.clear()
        known = self._params.get(model_name)
        if known is None:
            if len(self._params) > 10_000:  # callers name models; stay bounded
                self._params.clear()
            known = self._params[model_name] = reads_params(self.router, model_name)
        return known

    async def _attributes(
        self, request: web.Request, body: CallerBody
    ) -> RequestAttributes | web.Response:
        """The call's targeting attributes; the body is read (and decoded) first when
        targeting reads the model's request parameters, and refused if it cannot be."""
        params = None
        try:
            if self._reads_params(request.match_info["name"]):
                await body.read()
                params = body.json_part()
        except BodyTooLarge:
            return too_large(self.max_body)
        except BodyEncodingError as exc:
            return undecodable(exc)
        return RequestAttributes.from_http(request.headers, params)

    async def infer(self, request: web.Request) -> web.StreamResponse:
        t0 = _perf()
        self.in_flight += 1
        try:
            return await self._infer(request, t0)
        finally:
            self.in_flight -= 1

    async def _infer(self, request: web.Request, t0: float) -> web.StreamResponse:
        if request.content_length is not None and request.content_length > self.max_body:
            return too_large(self.max_body)
        key, forced, request_id, fwd = self._caller(request)
        mi = request.match_info
        body = self._body(request)
        attrs = await self._attributes(request, body)
        if isinstance(attrs, web.Response):
            return attrs
        t = _Target(self.router, mi["name"], mi.get("version"), key, forced, attrs,
                    self.upstreams)
        ours = t.label if self.name_variant else ""
        if t.base is None:
            t.slot.record("UNAVAILABLE", _perf() - t0, key)
            return oip_error(
                503, f"variant {t.label!r}: upstream {t.upstream} has no REST form "
                "(--upstream-http-for)", ours)
        fwd += t.tags
        shadows = self._due(t.shadows)
        if shadows and body.whole is None:
            try:
                await body.read()
            except BodyTooLarge:
                return too_large(self.max_body)
        try:
            response, answer, custom, code = await self._exchange(
                request, t, body, fwd, ours, bool(shadows)
            )
        except (aiohttp.ClientError, TimeoutError) as exc:
            if body.too_large:
                return too_large(self.max_body)
            t.slot.record("DEADLINE_EXCEEDED" if isinstance(exc, TimeoutError)
                          else "UNAVAILABLE", _perf() - t0, key)
            return _unreachable(t.base, exc, ours)
        if custom:
            t.slot.record_custom(custom, key)
        seconds = _perf() - t0
        t.slot.record(code, seconds, key)
        if shadows and body.whole is not None:
            headers = tuple(fwd)
            for sh in shadows:
                self.mirror.submit_rest(  # type: ignore[union-attr]
                    sh, body.whole, headers, t.version, answer, seconds, request_id
                )
        return response

    async def _exchange(
        self, request: web.Request, t: _Target, body: CallerBody, fwd: list[tuple[str, str]],
        ours: str, keep: bool,
    ) -> tuple[web.StreamResponse, _Answer | None, dict[str, float] | None, str | None]:
        """Call the upstream and answer the caller: the response; with ``keep`` (a shadow
        is due) and a 200, the answer as the mirror compares it (read whole, then sent);
        the custom metrics of the upstream's headers; the outcome as a gRPC code."""
        async with self.upstreams.session.post(
            t.base + t.path, data=body.data(), headers=fwd  # type: ignore[operator]
        ) as resp:
            headers = _answer_headers(resp, ours)
            custom = _custom_metrics(
                (k.lower(), v) for k, v in resp.headers.items()
                if k.lower().startswith(METRIC_PREFIX)
            )
            answer = None
            if keep and resp.status == 200:
                raw = await resp.read()
                out: web.StreamResponse = web.Response(
                    status=resp.status, reason=resp.reason, headers=headers, body=raw
                )
                answer = (raw, resp.headers.get("content-encoding", ""),
                          resp.headers.get(HEADER_LENGTH))
            else:
                out = await _relay(request, resp, headers)
        code = "UNAVAILABLE" if out.get(_TRUNCATED) else grpc_code(resp.status)
        return out, answer, custom, code

    async def forward(self, request: web.Request) -> web.StreamResponse:
        """Any other call, untouched, to the default REST upstream."""
        self.in_flight += 1
        try:
            return await self._forward(request)
        finally:
            self.in_flight -= 1

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        if request.content_length is not None and request.content_length > self.max_body:
            return too_large(self.max_body)
        _, _, _, fwd = self._caller(request)
        body = self._body(request)
        base = self.upstreams.default
        try:
            async with self.upstreams.session.request(
                request.method, base + request.raw_path,
                data=body.data() if request.body_exists else None, headers=fwd,
            ) as resp:
                return await _relay(request, resp, _answer_headers(resp, ""))
        except (aiohttp.ClientError, TimeoutError) as exc:
            if body.too_large:
                return too_large(self.max_body)
            return _unreachable(base, exc, "")


def _unreachable(base: str, exc: BaseException, variant: str) -> web.Response:
    if isinstance(exc, TimeoutError):
        return oip_error(504, f"upstream {base} did not answer in time", variant)
    log.debug("upstream failed", url=base, error=repr(exc))
    return oip_error(503, f"upstream {base} unavailable ({type(exc).__name__})", variant)


def _answer_headers(resp: aiohttp.ClientResponse, ours: str) -> CIMultiDict[str]:
    headers: CIMultiDict[str] = CIMultiDict(
        (k, v) for k, v in resp.headers.items() if k.lower() not in _NOT_FORWARDED
    )
    if ours:
        headers[VARIANT_HEADER] = ours
    return headers


async def _relay(
    request: web.Request, resp: aiohttp.ClientResponse, headers: CIMultiDict[str]
) -> web.StreamResponse:
    """Stream the upstream's answer to the caller as it arrives. Once started, a failure
    of the upstream closes the caller's connection (a truncated answer, never a wrong one)
    and marks the response as :data:`_TRUNCATED` (counted UNAVAILABLE)."""
    out = web.StreamResponse(status=resp.status, reason=resp.reason, headers=headers)
    await out.prepare(request)
    try:
        async for chunk in resp.content.iter_any():
            await out.write(chunk)
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.debug("upstream failed while answering", error=repr(exc))
        out[_TRUNCATED] = True
        if request.transport is not None:
            request.transport.close()
        return out
    await out.write_eof()
    return out
