"""Protobuf wire-level reads and edits of ModelInferRequest, without a full decode.

The sidecar only needs ``model_name`` (field 1), ``model_version`` (field 2) and, for
shadow calls, one extra ``parameters`` entry (field 4, a map). A ModelInferRequest may
carry megabytes of tensor data in fields 5 and 7; decoding and re-encoding it would cost
far more than the forwarding itself. These functions walk the top-level fields only
(skipping every payload by its length) and append the few bytes that change.

Wire format facts (protobuf encoding spec): a field is a varint key ``number << 3 |
wire_type``; wire type 0 = varint, 1 = 64-bit, 2 = length-delimited, 5 = 32-bit. Map
entries are length-delimited messages with key = field 1 and value = field 2.
"""

from __future__ import annotations

MODEL_NAME = 1
MODEL_VERSION = 2
PARAMETERS = 4

_KEY_NAME = bytes([MODEL_NAME << 3 | 2])
_KEY_VERSION = bytes([MODEL_VERSION << 3 | 2])
_KEY_PARAMETERS = bytes([PARAMETERS << 3 | 2])


class WireError(ValueError):
    """The bytes are not a well-formed protobuf message."""


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = 0
    shift = 0
    n = len(buf)
    while True:
        if pos >= n or shift > 63:
            raise WireError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


def encode_varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _len_field(key: bytes, payload: bytes) -> bytes:
    return key + encode_varint(len(payload)) + payload


def _skip(buf: bytes, pos: int, wire_type: int) -> int:
    if wire_type == 2:
        length, pos = _varint(buf, pos)
        end = pos + length
        if end > len(buf):
            raise WireError("length-delimited field runs past the end")
        return end
    if wire_type == 0:
        return _varint(buf, pos)[1]
    if wire_type == 1:
        return pos + 8
    if wire_type == 5:
        return pos + 4
    raise WireError(f"unsupported wire type {wire_type}")


def read_model(buf: bytes) -> tuple[str, str]:
    """``(model_name, model_version)`` of a serialized ModelInferRequest.

    Walks every top-level field (payloads are skipped by their length, not read), so a
    malformed message is caught here and the last occurrence of a field wins, as in any
    protobuf parser; that is what lets :func:`rewrite_model` append instead of splice.
    """
    name = version = b""
    pos = 0
    n = len(buf)
    while pos < n:
        key, pos = _varint(buf, pos)
        number, wire_type = key >> 3, key & 7
        if wire_type == 2 and number <= 2:
            length, pos = _varint(buf, pos)
            end = pos + length
            if end > n:
                raise WireError("length-delimited field runs past the end")
            if number == 1:
                name = buf[pos:end]
            else:
                version = buf[pos:end]
            pos = end
            continue
        pos = _skip(buf, pos, wire_type)
    if pos > n:
        raise WireError("message truncated")
    return name.decode("utf-8", "replace"), version.decode("utf-8", "replace")


def model_override(model_name: str | None, model_version: str | None) -> bytes:
    """The bytes that, appended to a serialized ModelInferRequest, replace its
    ``model_name`` / ``model_version`` (None = keep the caller's).

    Protobuf encoding spec: for a non-repeated scalar or string field that appears more
    than once, the parser keeps the last value it sees. Appending the new fields
    therefore rewrites the request without touching (or copying around) anything the
    caller sent; an empty string clears the field.
    """
    out = b""
    if model_name is not None:
        out += _len_field(_KEY_NAME, model_name.encode())
    if model_version is not None:
        out += _len_field(_KEY_VERSION, model_version.encode())
    return out


def rewrite_model(buf: bytes, model_name: str | None, model_version: str | None) -> bytes:
    """The same request with ``model_name`` / ``model_version`` replaced (None = keep)."""
    return buf + model_override(model_name, model_version)


def parameter_entry(
    key: str, *, bool_value: bool | None = None, string_value: str | None = None
) -> bytes:
    """One serialized ``parameters`` map entry (field 4) holding an InferParameter.

    Appending it to a serialized ModelInferRequest adds the entry (maps merge on parse).
    """
    if bool_value is not None:
        param = b"\x08" + (b"\x01" if bool_value else b"\x00")  # bool_param = 1
    elif string_value is not None:
        param = _len_field(b"\x1a", string_value.encode())  # string_param = 3
    else:
        raise ValueError("one of bool_value / string_value is required")
    entry = _len_field(b"\x0a", key.encode()) + _len_field(b"\x12", param)
    return _len_field(_KEY_PARAMETERS, entry)
