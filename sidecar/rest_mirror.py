"""Shadow traffic of the REST front end: the gRPC mirror's queue, workers and verdicts,
with the copy sent over HTTP.

The caller's path only calls :meth:`RestMirror.submit_rest` (a ``put_nowait``; a full
queue drops the copy and counts it). A worker posts the body to the shadow's REST
upstream (:class:`~neural.mlops.sidecar.upstream.HttpUpstreams`) at
``/v2/models/{shadow model}[/versions/{v}]/infer`` (the shadow's version, else the one the
caller asked for), marked with the request parameter ``neural_shadow = true``, without
the caller's credentials (:data:`~neural.mlops.sidecar.mirror.SENSITIVE_HEADERS` and
``--sensitive-header``), with its own deadline. A compressed request (the caller's
``Content-Encoding``, forwarded as sent on the primary call) is decoded in the worker,
bounded by the contract's message limit, and the copy is sent uncompressed; one that
cannot be decoded is a shadow error. Both answers' output tensors are read from
their JSON (and the binary tensor extension) and compared by the same rule as gRPC
answers (:func:`~neural.mlops.sidecar.mirror.compare_tensors`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import numpy as np

from neural.mlops.sidecar.mirror import (
    Job,
    Mirror,
    ShadowCallError,
    compare_tensors,
    preview_tensors,
)
from neural.mlops.sidecar.rest_oip import (
    HEADER_LENGTH,
    answer_tensors,
    decompress,
    infer_path,
    mark_shadow,
)
from neural.mlops.sidecar.router import Shadow
from neural.mlops.sidecar.upstream import HttpUpstreams, Upstreams

# Request headers a copy never carries: the transport's, and the ones rewritten here.
_NOT_COPIED = frozenset({"content-length", HEADER_LENGTH, "content-encoding", "x-neural-variant"})


@dataclass(slots=True)
class RestJob(Job):
    """A REST copy: besides :class:`Job`, the caller's model version (kept when the shadow
    names none) and what is needed to read the two bodies."""

    version: str | None = None
    request_header_length: str | None = None
    primary_encoding: str = ""
    primary_header_length: str | None = None
    answer_header_length: str | None = None
    answer_encoding: str = ""


class RestMirror(Mirror):
    def __init__(self, upstreams: Upstreams, http: HttpUpstreams, **kwargs: Any) -> None:
        super().__init__(upstreams, **kwargs)
        self.http = http

    def submit_rest(
        self,
        shadow: Shadow,
        body: bytes,
        headers: tuple[tuple[str, str], ...],
        version: str | None,
        primary: tuple[bytes, str, str | None] | None,
        primary_seconds: float,
        request_id: str,
    ) -> None:
        """Queue one copy; ``primary`` is the answer's (body, content-encoding,
        Inference-Header-Content-Length), None when the primary call failed."""
        job = RestJob(
            shadow,
            body,
            headers,
            primary[0] if primary is not None else None,
            primary_seconds,
            request_id,
            version=version,
            request_header_length=dict(headers).get(HEADER_LENGTH),
        )
        if primary is not None:
            job.primary_encoding, job.primary_header_length = primary[1], primary[2]
        try:
            self.queue.put_nowait(job)
        except asyncio.QueueFull:
            shadow.slot.drop()

    async def _call(self, job: Job) -> bytes:
        import aiohttp

        assert isinstance(job, RestJob)
        sh = job.shadow
        base = self.http.base(sh.upstream)
        if base is None:
            raise ShadowCallError(f"no REST upstream for {sh.upstream}")
        encoding = ",".join(str(v) for k, v in job.metadata if k == "content-encoding")
        try:
            # Decoded here, in the worker (bounded: rest_oip.decompress); sent as identity.
            request = decompress(job.request, encoding) if encoding else job.request
            body, length = mark_shadow(request, job.request_header_length)
        except ValueError as exc:
            raise ShadowCallError(f"request not marked: {exc}") from None
        headers = [
            (k, str(v))
            for k, v in job.metadata
            if k not in self.sensitive and k not in _NOT_COPIED
        ]
        if length is not None:
            headers.append((HEADER_LENGTH, length))
        url = base + infer_path(sh.model_name, sh.model_version or job.version)
        try:
            async with self.http.session.post(
                url, data=body, headers=headers, timeout=aiohttp.ClientTimeout(total=self.timeout)
            ) as resp:
                answer: bytes = await resp.read()
                if resp.status != 200:
                    raise ShadowCallError(f"HTTP {resp.status}")
                job.answer_encoding = resp.headers.get("content-encoding", "")
                job.answer_header_length = resp.headers.get(HEADER_LENGTH)
                return answer
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ShadowCallError(type(exc).__name__) from None

    def _both(self, job: Job, answer: bytes) -> tuple[dict[str, np.ndarray], ...]:
        assert isinstance(job, RestJob) and job.primary is not None
        return (
            answer_tensors(job.primary, job.primary_encoding, job.primary_header_length),
            answer_tensors(answer, job.answer_encoding, job.answer_header_length),
        )

    def _compare(self, job: Job, answer: bytes) -> tuple[bool, str]:
        primary, shadow = self._both(job, answer)
        return compare_tensors(primary, shadow, self.tolerance)

    def _previews(self, job: Job, answer: bytes) -> tuple[str, str]:
        try:
            primary, shadow = self._both(job, answer)
        except Exception:  # noqa: BLE001 - a preview must never fail the comparison
            return "", ""
        return preview_tensors(primary), preview_tensors(shadow)
