"""Shadow traffic: mirror ModelInfer calls to shadow targets and judge agreement.

The primary path only calls :meth:`Mirror.submit`, which is a ``put_nowait`` on a bounded
queue (a full queue drops the copy and counts it). A fixed pool of worker tasks (the
in-flight bound) rewrites the request for the shadow model, marks it as shadow traffic
with the OIP parameter ``neural_shadow = true``, calls the shadow upstream with its own
deadline, and compares the outputs tensor by tensor: exact for integers, booleans and
bytes; ``|a - b| <= atol + rtol * |b|`` for floats (numpy ``allclose``, NaN equal to NaN),
or, with ``top1``, equal argmax over the last axis.
The caller never waits for any of it and never sees its errors.

A shadow is another party: the caller's credentials are not its to see. Copies carry
the caller's metadata without :data:`SENSITIVE_HEADERS` (``authorization``, cookies, API
keys) and without any header the operator names (``--sensitive-header``).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

import grpc
import numpy as np
import structlog

from neural.mlops.sidecar.oip import MODEL_INFER, SHADOW_PARAMETER, response_tensors
from neural.mlops.sidecar.router import Shadow
from neural.mlops.sidecar.upstream import Upstreams
from neural.mlops.sidecar.wire import parameter_entry, rewrite_model
from neural.mlops.v1 import oip_pb2, routing_pb2

log = structlog.get_logger(__name__)

_SHADOW_MARK = parameter_entry(SHADOW_PARAMETER, bool_value=True)
SENSITIVE_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key"})
_SAMPLE_VALUES = 16


@dataclass(frozen=True)
class Tolerance:
    rtol: float = 1e-5
    atol: float = 1e-8
    # Judge float tensors by their top-1 class (argmax over the last axis) instead of
    # their values: for classifiers whose scores may drift while the decision holds.
    top1: bool = False


def compare(primary: bytes, shadow: bytes, tol: Tolerance) -> tuple[bool, str]:
    """Whether two serialized ModelInferResponses agree on every output tensor, and why not."""
    p = response_tensors(oip_pb2.ModelInferResponse.FromString(primary))
    s = response_tensors(oip_pb2.ModelInferResponse.FromString(shadow))
    return compare_tensors(p, s, tol)


def compare_tensors(
    p: dict[str, np.ndarray], s: dict[str, np.ndarray], tol: Tolerance
) -> tuple[bool, str]:
    """Whether two answers' output tensors (by name) agree, and why not: the rule of
    :func:`compare`, shared by the gRPC and REST (:mod:`.rest_mirror`) paths."""
    if p.keys() != s.keys():
        return False, f"outputs differ: {sorted(p)} vs {sorted(s)}"
    for name, a in p.items():
        b = s[name]
        if a.shape != b.shape:
            return False, f"{name}: shape {a.shape} vs {b.shape}"
        if a.dtype.kind == "f" or b.dtype.kind == "f":
            try:
                if tol.top1 and a.ndim >= 1 and a.size:
                    ok = bool(np.array_equal(np.argmax(a, axis=-1), np.argmax(b, axis=-1)))
                else:
                    ok = bool(np.allclose(a, b, rtol=tol.rtol, atol=tol.atol, equal_nan=True))
            except TypeError:
                ok = False
        else:
            ok = bool(np.array_equal(a, b))
        if not ok:
            return False, f"{name}: values differ"
    return True, ""


def _preview(raw: bytes) -> str:
    try:
        return preview_tensors(response_tensors(oip_pb2.ModelInferResponse.FromString(raw)))
    except Exception:  # noqa: BLE001 - a preview must never fail the comparison
        return ""


def preview_tensors(tensors: dict[str, np.ndarray]) -> str:
    """A disagreement sample's view of an answer: each output's first values, as JSON."""
    try:
        out: dict[str, Any] = {}
        for name, arr in tensors.items():
            flat = arr.reshape(-1)[:_SAMPLE_VALUES]
            out[name] = [
                v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in flat.tolist()
            ]
        return json.dumps(out)[:2000]
    except Exception:  # noqa: BLE001 - a preview must never fail the comparison
        return ""


class ShadowCallError(Exception):
    """A shadow call failed (its message: the status, e.g. UNAVAILABLE or HTTP 503)."""


@dataclass(slots=True)
class Job:
    shadow: Shadow
    request: bytes
    metadata: tuple[tuple[str, str | bytes], ...]
    primary: bytes | None
    primary_seconds: float
    request_id: str


class Mirror:
    def __init__(
        self,
        upstreams: Upstreams,
        *,
        queue_size: int = 1000,
        max_in_flight: int = 32,
        timeout: float = 10.0,
        tolerance: Tolerance = Tolerance(),
        sensitive_headers: frozenset[str] = SENSITIVE_HEADERS,
    ) -> None:
        self.upstreams = upstreams
        self.sensitive = frozenset(h.lower() for h in sensitive_headers)
        self.queue: asyncio.Queue[Job] = asyncio.Queue(maxsize=queue_size)
        self.max_in_flight = max_in_flight
        self.timeout = timeout
        self.tolerance = tolerance
        self.in_flight = 0
        self._workers: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._workers = [asyncio.create_task(self._worker()) for _ in range(self.max_in_flight)]

    async def stop(self, grace: float = 2.0) -> None:
        """Let queued copies finish for up to ``grace`` seconds, then cancel the rest."""
        try:
            await asyncio.wait_for(self.queue.join(), grace)
        except TimeoutError:
            pass
        for t in self._workers:
            t.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)

    def submit(
        self,
        shadow: Shadow,
        request: bytes,
        metadata: tuple[tuple[str, str | bytes], ...],
        primary: bytes | None,
        primary_seconds: float,
        request_id: str,
    ) -> None:
        try:
            self.queue.put_nowait(
                Job(shadow, request, metadata, primary, primary_seconds, request_id)
            )
        except asyncio.QueueFull:
            shadow.slot.drop()

    async def _worker(self) -> None:
        while True:
            job = await self.queue.get()
            self.in_flight += 1
            try:
                await self._run(job)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - a bad shadow must not kill the worker
                log.exception("shadow call failed unexpectedly", shadow_id=job.shadow.shadow_id)
            finally:
                self.in_flight -= 1
                self.queue.task_done()

    async def _run(self, job: Job) -> None:
        sh = job.shadow
        t0 = time.perf_counter()
        try:
            answer = await self._call(job)
        except ShadowCallError as exc:
            sh.slot.record(
                agreed=None,
                error=True,
                shadow_seconds=time.perf_counter() - t0,
                primary_seconds=job.primary_seconds,
            )
            log.debug("shadow error", shadow_id=sh.shadow_id, code=str(exc))
            return
        seconds = time.perf_counter() - t0
        if job.primary is None:
            sh.slot.record(
                agreed=None,
                error=False,
                shadow_seconds=seconds,
                primary_seconds=job.primary_seconds,
            )
            return
        try:
            agreed, reason = self._compare(job, answer)
        except Exception as exc:  # noqa: BLE001 - undecodable answers count as disagreement
            agreed, reason = False, f"cannot compare: {exc}"
        sample = None
        if not agreed:
            primary_json, shadow_json = self._previews(job, answer)
            sample = routing_pb2.ShadowSample(
                at_us=int(time.time() * 1_000_000),
                request_id=job.request_id,
                primary_json=primary_json,
                shadow_json=shadow_json,
                reason=reason,
            )
        sh.slot.record(
            agreed=agreed,
            error=False,
            shadow_seconds=seconds,
            primary_seconds=job.primary_seconds,
            sample=sample,
        )

    # The transport's part; the REST mirror (:mod:`.rest_mirror`) overrides these three.
    async def _call(self, job: Job) -> bytes:
        """The shadow's answer to the copy, or ShadowCallError naming the failure."""
        sh = job.shadow
        body = rewrite_model(job.request, sh.model_name, sh.model_version) + _SHADOW_MARK
        call = self.upstreams.unary(sh.upstream, MODEL_INFER)
        # Filtered here, in the worker, so the caller's path pays nothing for it.
        metadata = tuple((k, v) for k, v in job.metadata if k not in self.sensitive)
        try:
            answer: bytes = await call(body, metadata=metadata, timeout=self.timeout)
        except grpc.aio.AioRpcError as exc:
            raise ShadowCallError(exc.code().name) from None
        return answer

    def _compare(self, job: Job, answer: bytes) -> tuple[bool, str]:
        assert job.primary is not None
        return compare(job.primary, answer, self.tolerance)

    def _previews(self, job: Job, answer: bytes) -> tuple[str, str]:
        return _preview(job.primary or b""), _preview(answer)
