"""The Open Inference Protocol as served on the wire: service path, methods, tensors.

Only method paths travel on the wire, so everything here speaks the standard
``/inference.GRPCInferenceService/<Rpc>`` paths while the message classes come from our
own proto package (:mod:`neural.mlops.v1.oip_pb2`), which can share a process with
tritonclient or mlserver.
"""

from __future__ import annotations

import numpy as np
from google.protobuf.message import Message

from neural.mlops.v1 import oip_pb2

SERVICE = "inference.GRPCInferenceService"
PREFIX = f"/{SERVICE}/"
MODEL_INFER = f"{PREFIX}ModelInfer"

# The unary methods of the protocol and their message classes.
METHODS: dict[str, tuple[type[Message], type[Message]]] = {
    "ServerLive": (oip_pb2.ServerLiveRequest, oip_pb2.ServerLiveResponse),
    "ServerReady": (oip_pb2.ServerReadyRequest, oip_pb2.ServerReadyResponse),
    "ModelReady": (oip_pb2.ModelReadyRequest, oip_pb2.ModelReadyResponse),
    "ServerMetadata": (oip_pb2.ServerMetadataRequest, oip_pb2.ServerMetadataResponse),
    "ModelMetadata": (oip_pb2.ModelMetadataRequest, oip_pb2.ModelMetadataResponse),
    "ModelInfer": (oip_pb2.ModelInferRequest, oip_pb2.ModelInferResponse),
}

# OIP datatype -> (numpy dtype, InferTensorContents field).
DATATYPES: dict[str, tuple[str, str]] = {
    "BOOL": ("bool", "bool_contents"),
    "UINT8": ("uint8", "uint_contents"),
    "UINT16": ("uint16", "uint_contents"),
    "UINT32": ("uint32", "uint_contents"),
    "UINT64": ("uint64", "uint64_contents"),
    "INT8": ("int8", "int_contents"),
    "INT16": ("int16", "int_contents"),
    "INT32": ("int32", "int_contents"),
    "INT64": ("int64", "int64_contents"),
    "FP16": ("float16", "fp32_contents"),
    "FP32": ("float32", "fp32_contents"),
    "FP64": ("float64", "fp64_contents"),
    "BYTES": ("object", "bytes_contents"),
}

VARIANT_HEADER = "x-neural-variant"
SHADOW_PARAMETER = "neural_shadow"


def _bytes_tensor(raw: bytes) -> np.ndarray:
    """BYTES in raw form: each element is a 4-byte little-endian length, then the bytes."""
    items = []
    pos = 0
    while pos + 4 <= len(raw):
        n = int.from_bytes(raw[pos : pos + 4], "little")
        items.append(raw[pos + 4 : pos + 4 + n])
        pos += 4 + n
    return np.array(items, dtype=object)


def decode_tensor(tensor: object, raw: bytes | None) -> np.ndarray:
    """An input or output tensor as a numpy array (raw contents take precedence)."""
    datatype: str = tensor.datatype  # type: ignore[attr-defined]
    shape = tuple(tensor.shape)  # type: ignore[attr-defined]
    dtype, field = DATATYPES.get(datatype, ("object", "bytes_contents"))
    if raw is not None:
        if datatype == "BYTES":
            arr = _bytes_tensor(raw)
        else:
            arr = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<"))
    else:
        values = getattr(tensor.contents, field)  # type: ignore[attr-defined]
        arr = np.array(list(values), dtype=dtype)
    try:
        return arr.reshape(shape)
    except ValueError:
        return arr


def response_tensors(resp: oip_pb2.ModelInferResponse) -> dict[str, np.ndarray]:
    raws = list(resp.raw_output_contents)
    out = {}
    for i, t in enumerate(resp.outputs):
        out[t.name] = decode_tensor(t, raws[i] if i < len(raws) else None)
    return out


def request_tensors(req: oip_pb2.ModelInferRequest) -> dict[str, np.ndarray]:
    raws = list(req.raw_input_contents)
    out = {}
    for i, t in enumerate(req.inputs):
        out[t.name] = decode_tensor(t, raws[i] if i < len(raws) else None)
    return out


def datatype_of(arr: np.ndarray) -> str:
    for name, (dtype, _) in DATATYPES.items():
        if dtype != "object" and arr.dtype == np.dtype(dtype):
            return name
    return "BYTES"
