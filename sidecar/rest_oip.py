"""The Open Inference Protocol's REST form as the sidecar reads it: paths, JSON tensors,
the binary tensor extension, and the error body.

Paths (KServe's "V2" / OIP REST, also served by MLServer and Triton)::

    POST /v2/models/{name}[/versions/{version}]/infer
    GET  /v2/models/{name}[/versions/{version}][/ready]
    GET  /v2, /v2/health/live, /v2/health/ready

A tensor is ``{"name", "shape", "datatype", "data", "parameters"}``; ``data`` is a flat
or nested (row-major) JSON array. With Triton's binary tensor data extension the body is
the JSON document (its length in the ``Inference-Header-Content-Length`` header) followed
by the raw bytes of every tensor whose ``parameters.binary_data_size`` is set, in order;
the raw bytes are little-endian, BYTES elements each prefixed by a 4-byte length (the
gRPC ``raw_*_contents`` layout, decoded by :func:`neural.mlops.sidecar.oip.decode_tensor`).
Errors are ``{"error": "<message>"}`` with an HTTP status.
"""

from __future__ import annotations

import json
import zlib
from functools import lru_cache
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote

import numpy as np

from neural.mlops.sidecar.oip import DATATYPES, SHADOW_PARAMETER, datatype_of, decode_tensor
from neural.mlops.v1.limits import MAX_MESSAGE_BYTES

HEADER_LENGTH = "inference-header-content-length"
JSON_TYPE = "application/json"


@lru_cache(maxsize=4096)  # per call on the request path; callers' model names stay bounded
def infer_path(model_name: str, version: str | None) -> str:
    """``/v2/models/{name}[/versions/{version}]/infer``, each part percent-encoded."""
    name = quote(model_name, safe="")
    if version:
        return f"/v2/models/{name}/versions/{quote(version, safe='')}/infer"
    return f"/v2/models/{name}/infer"


def error_body(message: str) -> bytes:
    return json.dumps({"error": message}).encode()


class BodyEncodingError(ValueError):
    """A body that cannot be decoded: its Content-Encoding is unknown or its data corrupt."""


class UnknownEncoding(BodyEncodingError):
    """A content coding other than gzip, deflate or identity (``br``, ``zstd``, ...)."""


class DecodedTooLarge(BodyEncodingError):
    """The body decompresses to more than ``limit`` bytes (it is never inflated further)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"body decompresses to over {limit} bytes")
        self.limit = limit


ENCODINGS = "gzip, deflate, identity"
"""The content codings :func:`decompress` reads (``x-gzip`` is read as ``gzip``)."""


def codings(encoding: str) -> list[str]:
    """The codings of a Content-Encoding value in the order they were applied (identity
    left out), else UnknownEncoding naming the first one not understood."""
    out = []
    for part in encoding.split(","):
        c = part.strip().lower()
        if c in ("", "identity"):
            continue
        if c == "x-gzip":
            c = "gzip"
        if c not in ("gzip", "deflate"):
            raise UnknownEncoding(f"content-encoding {c!r} not understood (reads {ENCODINGS})")
        out.append(c)
    return out


def _inflate(data: bytes, coding: str, limit: int) -> bytes:
    """One coding undone, never producing more than ``limit + 1`` bytes: gzip members one
    after the other (RFC 1952 allows several), deflate as zlib data (RFC 9110) or, as sent
    by some clients, raw deflate."""
    if coding == "gzip":
        wbits = 31
    else:
        wbits = 15 if data[:1] and data[0] & 0x0F == 8 else -15
    parts: list[bytes] = []
    room = limit
    while True:
        d = zlib.decompressobj(wbits)
        try:
            out = d.decompress(data, room + 1)
        except zlib.error as exc:
            raise BodyEncodingError(f"content-encoding {coding}: corrupt data ({exc})") from None
        if len(out) > room:
            raise DecodedTooLarge(limit)
        if not d.eof:
            raise BodyEncodingError(
                f"content-encoding {coding}: the data ends before its compressed stream does")
        parts.append(out)
        room -= len(out)
        data = d.unused_data
        if coding != "gzip" or not data.strip(b"\0"):  # another gzip member follows
            break
    return parts[0] if len(parts) == 1 else b"".join(parts)


def decompress(body: bytes, encoding: str, limit: int = MAX_MESSAGE_BYTES) -> bytes:
    """The body without its Content-Encoding (gzip, deflate, identity, or a list of them
    in the order applied). Bounded: a body that would inflate past ``limit`` bytes raises
    DecodedTooLarge after at most ``limit + 1`` bytes were produced (a decompression bomb
    is never inflated whole); an unknown coding raises UnknownEncoding and corrupt data
    BodyEncodingError (all three are ValueErrors)."""
    for coding in reversed(codings(encoding)):
        body = _inflate(body, coding, limit)
    return body


def split_body(body: bytes, header_length: str | None) -> tuple[dict[str, Any], bytes]:
    """The JSON document and the binary part that follows it (b"" without the extension)."""
    n = len(body)
    if header_length:
        n = int(header_length)
        if not 0 <= n <= len(body):
            raise ValueError(f"{HEADER_LENGTH} {n} is outside the body ({len(body)} bytes)")
    doc = json.loads(body[:n])
    if not isinstance(doc, dict):
        raise ValueError("the body is not a JSON object")
    return doc, body[n:]


def _json_tensor(t: dict[str, Any]) -> np.ndarray:
    dtype = DATATYPES.get(str(t.get("datatype", "")), ("object", ""))[0]
    flat = np.asarray(t.get("data", []), dtype=object).reshape(-1)
    if dtype == "object":
        values = [v.encode() if isinstance(v, str) else v for v in flat.tolist()]
        arr = np.array(values, dtype=object)
    else:
        arr = np.array(flat.tolist(), dtype=dtype)
    try:
        return arr.reshape(tuple(int(d) for d in t.get("shape", [])))
    except ValueError:
        return arr


def tensors(doc: dict[str, Any], binary: bytes, key: str = "outputs") -> dict[str, np.ndarray]:
    """The named tensors of a request (``key="inputs"``) or response document."""
    out: dict[str, np.ndarray] = {}
    pos = 0
    for t in doc.get(key) or []:
        size = (t.get("parameters") or {}).get("binary_data_size")
        if size is None:
            out[str(t.get("name"))] = _json_tensor(t)
            continue
        raw = binary[pos : pos + int(size)]
        pos += int(size)
        spec = SimpleNamespace(datatype=t.get("datatype", ""), shape=t.get("shape", []))
        out[str(t.get("name"))] = decode_tensor(spec, raw)
    return out


def answer_tensors(body: bytes, encoding: str, header_length: str | None) -> dict[str, np.ndarray]:
    """A response body's output tensors (ValueError when it cannot be read)."""
    doc, binary = split_body(decompress(body, encoding), header_length)
    return tensors(doc, binary)


def mark_shadow(body: bytes, header_length: str | None) -> tuple[bytes, str | None]:
    """The request with ``parameters.neural_shadow = true``, and its new JSON length when it
    uses the binary extension (ValueError when the body is no OIP request)."""
    doc, binary = split_body(body, header_length)
    params = doc.get("parameters")
    if params is None or not isinstance(params, dict):
        params = doc["parameters"] = {}
    params[SHADOW_PARAMETER] = True
    head = json.dumps(doc, separators=(",", ":")).encode()
    return head + binary, (str(len(head)) if header_length else None)


def json_outputs(arrays: list[tuple[str, np.ndarray]]) -> list[dict[str, Any]]:
    """Output tensors as JSON (flat ``data``, row-major)."""
    out = []
    for name, arr in arrays:
        kind = datatype_of(arr)
        data = arr.reshape(-1).tolist()
        if kind == "BYTES":
            data = [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in data]
        out.append({"name": name, "shape": list(arr.shape), "datatype": kind, "data": data})
    return out
