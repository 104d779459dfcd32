"""A request's targeting attributes, read only when a condition asks for them.

Targeting conditions (``neural.mlops.v1.targeting``) name request headers (``x-country``)
and Open Inference Protocol request parameters (``param.tier``). :class:`RequestAttributes`
is built for every routed request but does no work until :meth:`RequestAttributes.get` is
called: headers are looked up in the call's metadata (gRPC) or header map (HTTP) on
demand, and the request parameters are decoded at most once, on the first ``param.*``
lookup. A request whose routes have no condition never pays for either.

Where the parameters come from:

* gRPC: the raw ModelInferRequest bytes. Only the top-level ``parameters`` map (field 4)
  is read, at the protobuf wire level as :mod:`neural.mlops.sidecar.wire` reads
  ``model_name``: tensor payloads (fields 5 and 7) are skipped by their length, never
  decoded.
* HTTP (the OIP REST form): the JSON body's ``parameters`` object (the body may be given
  as bytes or as the already parsed object).

A parameter's value is compared as text: a string as is, a bool as ``true`` / ``false``,
an integer in decimal, a double as Python's shortest round-trip ``repr`` (``4.2``,
``1.0``). A header sent several times reads as its first value. Malformed parameter bytes
or JSON read as "no parameters" (the proxy reports a malformed request on its own).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from neural.mlops.sidecar.wire import WireError, _skip, _varint
from neural.mlops.v1.targeting import PARAM_PREFIX

_PARAMETERS = 4  # ModelInferRequest.parameters
_PREFIX_LEN = len(PARAM_PREFIX)


def _text(value: object) -> str | None:
    """A JSON parameter value as targeting compares it (module docstring)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return repr(value)
    return None


def _param_value(buf: bytes) -> str | None:
    """The value of one serialized InferParameter (oneof: bool 1, int64 2, string 3,
    double 4, uint64 5; the last one set wins, as in any protobuf parser)."""
    out: str | None = None
    pos, n = 0, len(buf)
    while pos < n:
        key, pos = _varint(buf, pos)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0 and number in (1, 2, 5):
            raw, pos = _varint(buf, pos)
            if number == 1:
                out = "true" if raw else "false"
            elif number == 2:
                out = str(raw - (1 << 64) if raw >= 1 << 63 else raw)
            else:
                out = str(raw)
        elif wire_type == 2 and number == 3:
            length, pos = _varint(buf, pos)
            if pos + length > n:
                raise WireError("string parameter runs past the end")
            out = buf[pos:pos + length].decode("utf-8", "replace")
            pos += length
        elif wire_type == 1 and number == 4:
            if pos + 8 > n:
                raise WireError("double parameter truncated")
            out = repr(struct.unpack_from("<d", buf, pos)[0])
            pos += 8
        else:
            pos = _skip(buf, pos, wire_type)
    if pos > n:
        raise WireError("parameter truncated")
    return out


def _map_entry(buf: bytes) -> tuple[str, str | None]:
    key = ""
    value: str | None = None
    pos, n = 0, len(buf)
    while pos < n:
        tag, pos = _varint(buf, pos)
        number, wire_type = tag >> 3, tag & 7
        if wire_type == 2 and number in (1, 2):
            length, pos = _varint(buf, pos)
            end = pos + length
            if end > n:
                raise WireError("map entry runs past the end")
            if number == 1:
                key = buf[pos:end].decode("utf-8", "replace")
            else:
                value = _param_value(buf[pos:end])
            pos = end
        else:
            pos = _skip(buf, pos, wire_type)
    return key, value


def infer_parameters(request: bytes) -> dict[str, str]:
    """The top-level ``parameters`` of a serialized ModelInferRequest, values as text
    (entries that appear twice: the last wins, as maps merge on parse)."""
    out: dict[str, str] = {}
    pos, n = 0, len(request)
    while pos < n:
        tag = request[pos]  # one-byte keys and lengths inline: this loop is the hot part
        if tag < 0x80:
            pos += 1
        else:
            tag, pos = _varint(request, pos)
        if tag & 7 != 2:
            pos = _skip(request, pos, tag & 7)
            continue
        length = request[pos] if pos < n else 0x80
        if length < 0x80:
            pos += 1
        else:
            length, pos = _varint(request, pos)
        end = pos + length
        if end > n:
            raise WireError("length-delimited field runs past the end")
        if tag >> 3 == _PARAMETERS:
            key, value = _map_entry(request[pos:end])
            if value is None:
                out.pop(key, None)
            else:
                out[key] = value
        pos = end
    if pos > n:
        raise WireError("message truncated")
    return out


def json_parameters(body: bytes | str | Mapping[str, Any] | None) -> dict[str, str]:
    """The ``parameters`` object of an OIP REST request body, values as text."""
    if body is None:
        return {}
    if isinstance(body, bytes | str):
        try:
            body = json.loads(body)
        except (ValueError, RecursionError):  # not JSON; nested past the parser's depth
            return {}
    params = body.get("parameters") if isinstance(body, Mapping) else None
    if not isinstance(params, Mapping):
        return {}
    out: dict[str, str] = {}
    for k, v in params.items():
        t = _text(v)
        if t is not None:
            out[str(k)] = t
    return out


class RequestAttributes:
    """Lazy attributes of one request; :meth:`get` is the getter a matcher takes.

    Building one stores two references (no parsing, no closures): routing builds it for
    every request, and most requests meet no condition."""

    __slots__ = ("_metadata", "_request", "_headers", "_lowered", "_body", "_params")

    def __init__(self) -> None:
        self._metadata: Iterable[tuple[str, str | bytes]] = ()
        self._request: bytes | None = None  # gRPC: the raw ModelInferRequest
        self._headers: Mapping[str, str] | None = None  # HTTP
        self._lowered: dict[str, str] | None = None
        self._body: bytes | str | Mapping[str, Any] | None = None
        self._params: dict[str, str] | None = None

    @classmethod
    def from_grpc(
        cls, metadata: Iterable[tuple[str, str | bytes]] | None, request: bytes
    ) -> RequestAttributes:
        """From a call's invocation metadata and its raw ModelInferRequest bytes."""
        a = cls()
        a._metadata = metadata or ()
        a._request = request
        return a

    @classmethod
    def from_http(
        cls, headers: Mapping[str, str], body: bytes | str | Mapping[str, Any] | None
    ) -> RequestAttributes:
        """From an HTTP request's headers (any case) and its JSON body (bytes or parsed)."""
        a = cls()
        a._headers = headers
        a._body = body
        return a

    def _index(self) -> dict[str, str]:
        """The headers by lower-case name, built on the first lookup (first value wins)."""
        lowered = self._lowered
        if lowered is None:
            lowered = self._lowered = {}
            if self._headers is None:
                for k, v in self._metadata:  # gRPC keys are lower case already
                    if k not in lowered and isinstance(v, str):  # "-bin" values are bytes
                        lowered[k] = v
            else:
                for k, v in self._headers.items():
                    lowered.setdefault(k.lower(), v)
        return lowered

    def _load_params(self) -> dict[str, str]:
        if self._request is None:
            return json_parameters(self._body)
        try:
            return infer_parameters(self._request)
        except WireError:
            return {}

    def header_getter(self) -> Callable[[str], str | None]:
        """The request's header lookup as one dict's ``get``: what :meth:`get` answers
        for any attribute that is not ``param.*`` (callers whose conditions read no
        parameter use it: no method call and prefix test per lookup)."""
        return self._index().get

    def get(self, attribute: str) -> str | None:
        """The request's value of a targeting attribute (a lower-case header name or
        ``param.<name>``), None when the request does not have it."""
        if attribute.startswith(PARAM_PREFIX):
            params = self._params
            if params is None:
                params = self._params = self._load_params()
            return params.get(attribute[_PREFIX_LEN:])
        return self._index().get(attribute)


NONE = RequestAttributes()
"""A request with no headers and no parameters (tools, tests)."""
