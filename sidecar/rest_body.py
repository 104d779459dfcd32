"""The caller's side of a REST call: its body (streamed, or read whole and decoded for
its request parameters) and the sidecar's own OIP errors."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from neural.mlops.sidecar.oip import VARIANT_HEADER
from neural.mlops.sidecar.rest_oip import (
    ENCODINGS,
    HEADER_LENGTH,
    JSON_TYPE,
    BodyEncodingError,
    DecodedTooLarge,
    UnknownEncoding,
    decompress,
    error_body,
)


class BodyTooLarge(Exception):
    """The caller's body grew past the limit while it streamed."""


def oip_error(status: int, message: str, variant: str = "") -> web.Response:
    headers = {VARIANT_HEADER: variant} if variant else None
    return web.Response(
        status=status, body=error_body(message), content_type=JSON_TYPE, headers=headers
    )


class CallerBody:
    """The caller's body, streamed (bounded by ``limit``) or read whole first."""

    __slots__ = ("request", "limit", "too_large", "whole")

    def __init__(self, request: web.Request, limit: int) -> None:
        self.request = request
        self.limit = limit
        self.too_large = False
        self.whole: bytes | None = None

    async def stream(self) -> AsyncIterator[bytes]:
        seen = 0
        async for chunk in self.request.content.iter_any():
            seen += len(chunk)
            if seen > self.limit:
                self.too_large = True
                raise BodyTooLarge
            yield chunk

    async def read(self) -> bytes:
        self.whole = b"".join([chunk async for chunk in self.stream()])
        return self.whole

    def data(self) -> bytes | AsyncIterator[bytes]:
        return self.whole if self.whole is not None else self.stream()

    def json_part(self) -> bytes:
        """The JSON document of the body read whole: its Content-Encoding undone (bounded
        by ``limit``; BodyEncodingError), without the binary tensor data that follows it
        when ``Inference-Header-Content-Length`` says where it ends."""
        assert self.whole is not None
        headers = self.request.headers
        encoding = ",".join(headers.getall("content-encoding", ()))
        plain = decompress(self.whole, encoding, self.limit) if encoding else self.whole
        length = headers.get(HEADER_LENGTH, "")
        if length.isdigit() and int(length) <= len(plain):
            return plain[: int(length)]
        return plain


def too_large(limit: int) -> web.Response:
    return oip_error(413, f"request body over {limit} bytes (the contract's message limit)")


def undecodable(exc: BodyEncodingError) -> web.Response:
    """A body read for its parameters that cannot be: refused before routing."""
    if isinstance(exc, DecodedTooLarge):
        return oip_error(413, f"request body decompresses to over {exc.limit} bytes "
                          "(the contract's message limit)")
    if isinstance(exc, UnknownEncoding):
        out = oip_error(415, f"request body: {exc}; targeting reads this model's request "
                         "parameters")
        out.headers["Accept-Encoding"] = ENCODINGS
        return out
    return oip_error(400, f"request body: {exc}")
