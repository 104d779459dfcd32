"""Where a model version came from: run, code, data, parent and input/output signature.

Recorded once, at registration, and never changed (an audit trail that could be edited
afterwards would prove nothing). Every field is optional. :meth:`Lineage.validated`
returns the normalized form that is stored; the parent's existence is checked by the
registration, in its transaction.

Tensor datatypes and shapes are those of the Open Inference Protocol: the datatype
strings ``BOOL``, ``UINT8``..``UINT64``, ``INT8``..``INT64``, ``FP16``, ``FP32``,
``FP64``, ``BYTES``; a shape is a list of sizes with ``-1`` for a variable one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any, TypeAlias

from neural.mlops.server import validation as v
from neural.mlops.server.errors import InvalidArgument

MAX_RUN_ID = 256
MAX_URI = 2048
MAX_DIGEST = 256
MAX_DATA_REFS = 100
MAX_TENSORS = 256
MAX_TENSOR_NAME = 256
MAX_DIMS = 32

_COMMIT = re.compile(r"[0-9a-fA-F]{7,40}")
# RFC 3986 scheme, then anything printable: non-ASCII must be percent-encoded.
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[\x21-\x7e]+")
# The OCI image-spec digest grammar: algorithm ":" encoded.
DIGEST = re.compile(r"[a-z0-9]+(?:[+._\-][a-z0-9]+)*:[a-zA-Z0-9=_\-]+")
_SHA256 = re.compile(r"sha256:[0-9a-f]{64}")
_VISIBLE = re.compile(r"[\x21-\x7e]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class TensorDatatype(StrEnum):
    BOOL = "BOOL"
    UINT8 = "UINT8"
    UINT16 = "UINT16"
    UINT32 = "UINT32"
    UINT64 = "UINT64"
    INT8 = "INT8"
    INT16 = "INT16"
    INT32 = "INT32"
    INT64 = "INT64"
    FP16 = "FP16"
    FP32 = "FP32"
    FP64 = "FP64"
    BYTES = "BYTES"


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """One input or output tensor: ``TensorSpec("features", "FP32", [-1, 12])``."""

    name: str
    datatype: TensorDatatype | str
    shape: Sequence[int] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": str(self.datatype), "shape": list(self.shape)}


@dataclass(frozen=True, slots=True)
class Signature:
    inputs: Sequence[TensorSpec] = ()
    outputs: Sequence[TensorSpec] = ()

    @property
    def empty(self) -> bool:
        return not self.inputs and not self.outputs

    def to_dict(self) -> dict[str, Any]:
        return {"inputs": [t.to_dict() for t in self.inputs],
                "outputs": [t.to_dict() for t in self.outputs]}


@dataclass(frozen=True, slots=True)
class DataReference:
    """A training data set: its URI and, optionally, a digest of its content."""

    uri: str
    digest: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"uri": self.uri, "digest": self.digest}


# What the Python API accepts where a tensor, a data reference or a signature is expected.
TensorLike: TypeAlias = TensorSpec | Mapping[str, Any] | Sequence[Any]
DataLike: TypeAlias = DataReference | str | Mapping[str, str] | Sequence[str]
SignatureLike: TypeAlias = Signature | Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Lineage:
    source_run_id: str = ""
    source_uri: str = ""
    code_revision: str = ""
    training_data: Sequence[DataReference] = ()
    parent_version: str = ""
    signature: Signature = field(default_factory=Signature)

    @property
    def empty(self) -> bool:
        return self == Lineage()

    def __eq__(self, other: object) -> bool:
        # Lists and tuples of the same items are the same lineage.
        return isinstance(other, Lineage) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(repr(self.to_dict()))

    def to_dict(self) -> dict[str, Any]:
        return {
            "source_run_id": self.source_run_id,
            "source_uri": self.source_uri,
            "code_revision": self.code_revision,
            "training_data": [d.to_dict() for d in self.training_data],
            "parent_version": self.parent_version,
            "signature": self.signature.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Lineage:
        """The inverse of :meth:`to_dict`; missing keys are empty."""
        return cls(
            source_run_id=data.get("source_run_id", "") or "",
            source_uri=data.get("source_uri", "") or "",
            code_revision=data.get("code_revision", "") or "",
            training_data=[data_reference(d) for d in data.get("training_data") or ()],
            parent_version=data.get("parent_version", "") or "",
            signature=signature(data.get("signature") or Signature()),
        )

    def changed_fields(self, other: Lineage) -> list[str]:
        """Names of the fields whose values differ between ``self`` and ``other``."""
        a, b = self.to_dict(), other.to_dict()
        return [f.name for f in fields(self) if a[f.name] != b[f.name]]

    def validated(self) -> Lineage:
        """The normalized lineage (lower-case commit, datatypes as enums, lists), or
        InvalidArgument naming the first field at fault (``lineage.<field>``)."""
        run_id = v.text(self.source_run_id, "lineage.source_run_id", limit=MAX_RUN_ID)
        if run_id and not _VISIBLE.fullmatch(run_id):
            raise InvalidArgument("lineage.source_run_id must be printable ASCII without "
                                  "spaces", field="lineage.source_run_id")
        commit = v.text(self.code_revision, "lineage.code_revision")
        if commit and not _COMMIT.fullmatch(commit):
            raise InvalidArgument(
                f"lineage.code_revision must be a git commit of 7-40 hex digits, got {commit!r}",
                field="lineage.code_revision",
            )
        parent = self.parent_version
        if parent:
            v.name(parent.removeprefix("@"), "lineage.parent_version")
        refs = _sequence(self.training_data, "lineage.training_data", MAX_DATA_REFS)
        data = [_valid_reference(data_reference(d), f"lineage.training_data[{i}]")
                for i, d in enumerate(refs)]
        seen: set[str] = set()
        for i, d in enumerate(data):
            if d.uri in seen:
                raise InvalidArgument(f"lineage.training_data lists {d.uri!r} twice",
                                      field=f"lineage.training_data[{i}].uri")
            seen.add(d.uri)
        sig = signature(self.signature)
        return Lineage(
            source_run_id=run_id,
            source_uri=_uri(self.source_uri, "lineage.source_uri") if self.source_uri else "",
            code_revision=commit.lower(),
            training_data=data,
            parent_version=parent,
            signature=Signature(_tensors(sig.inputs, "lineage.signature.inputs"),
                                _tensors(sig.outputs, "lineage.signature.outputs")),
        )


# ----------------------------------------------------------------------------- coercion


def lineage(value: Lineage | Mapping[str, Any] | None) -> Lineage:
    """A :class:`Lineage` from itself, its dict form or None (empty)."""
    if value is None:
        return Lineage()
    if isinstance(value, Lineage):
        return value
    if isinstance(value, Mapping):
        return Lineage.from_dict(value)
    raise InvalidArgument("lineage must be a Lineage or a mapping", field="lineage")


def data_reference(value: DataLike) -> DataReference:
    """``"s3://b/x"``, ``("s3://b/x", "sha256:...")``, ``{"uri": ..., "digest": ...}``."""
    if isinstance(value, DataReference):
        return value
    if isinstance(value, str):
        return DataReference(value)
    if isinstance(value, Mapping):
        return DataReference(value.get("uri", ""), value.get("digest", "") or "")
    items = list(value)
    if 1 <= len(items) <= 2 and all(isinstance(x, str) for x in items):
        return DataReference(*items)
    raise InvalidArgument(f"not a data reference: {value!r}", field="lineage.training_data")


def tensor(value: TensorLike) -> TensorSpec:
    """``TensorSpec``, ``{"name", "datatype", "shape"}`` or ``(name, datatype, shape)``."""
    if isinstance(value, TensorSpec):
        return value
    if isinstance(value, Mapping):
        datatype = value.get("datatype", "")
        if isinstance(datatype, str) and datatype.upper() in TensorDatatype.__members__:
            datatype = TensorDatatype(datatype.upper())
        return TensorSpec(value.get("name", ""), datatype, value.get("shape") or ())
    items = list(value)
    if len(items) in (2, 3):
        return TensorSpec(*items)
    raise InvalidArgument(f"not a tensor description: {value!r}", field="lineage.signature")


def signature(value: SignatureLike) -> Signature:
    if isinstance(value, Signature):
        return value
    if isinstance(value, Mapping):
        return Signature([tensor(t) for t in value.get("inputs") or ()],
                         [tensor(t) for t in value.get("outputs") or ()])
    raise InvalidArgument("signature must be a Signature or a mapping with inputs and outputs",
                          field="lineage.signature")


# ----------------------------------------------------------------------------- validation


def _sequence(values: Any, name: str, limit: int) -> list[Any]:
    if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Iterable):
        raise InvalidArgument(f"{name} must be a list", field=name)
    out = list(values)
    if len(out) > limit:
        raise InvalidArgument(f"{name} has more than {limit} entries", field=name)
    return out


def _uri(value: object, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidArgument(f"{name} is required", field=name)
    if len(value) > MAX_URI:
        raise InvalidArgument(f"{name} is longer than {MAX_URI} characters", field=name)
    if not _URI.fullmatch(value):
        raise InvalidArgument(
            f"{name} must be an absolute URI (scheme:...) of printable ASCII without spaces, "
            f"got {value[:100]!r}",
            field=name,
        )
    return value


def _valid_reference(ref: DataReference, name: str) -> DataReference:
    uri = _uri(ref.uri, f"{name}.uri")
    digest = v.text(ref.digest, f"{name}.digest", limit=MAX_DIGEST)
    if digest and not DIGEST.fullmatch(digest):
        raise InvalidArgument(f"{name}.digest must be ALGORITHM:ENCODED (e.g. sha256:<hex>), "
                              f"got {digest[:100]!r}", field=f"{name}.digest")
    if digest.startswith("sha256:") and not _SHA256.fullmatch(digest):
        raise InvalidArgument(f"{name}.digest: a sha256 digest is 64 lower-case hex digits",
                              field=f"{name}.digest")
    return DataReference(uri, digest)


def _tensors(values: Any, name: str) -> list[TensorSpec]:
    out: list[TensorSpec] = []
    seen: set[str] = set()
    for i, raw in enumerate(_sequence(values, name, MAX_TENSORS)):
        t = tensor(raw)
        where = f"{name}[{i}]"
        if not isinstance(t.name, str) or not t.name:
            raise InvalidArgument(f"{where}.name is required", field=f"{where}.name")
        v.text(t.name, f"{where}.name", limit=MAX_TENSOR_NAME)
        if _CONTROL.search(t.name):
            raise InvalidArgument(f"{where}.name must not contain control characters",
                                  field=f"{where}.name")
        if t.name in seen:
            raise InvalidArgument(f"{name} lists tensor {t.name!r} twice", field=f"{where}.name")
        seen.add(t.name)
        out.append(TensorSpec(t.name, _datatype(t.datatype, f"{where}.datatype"),
                              _shape(t.shape, f"{where}.shape")))
    return out


def _datatype(value: object, name: str) -> TensorDatatype:
    try:
        return TensorDatatype(value.upper() if isinstance(value, str) else str(value))
    except ValueError:
        raise InvalidArgument(
            f"{name}: {value!r} is not an OIP datatype; expected one of "
            + ", ".join(TensorDatatype), field=name,
        ) from None


def _shape(value: Any, name: str) -> list[int]:
    dims = _sequence(value, name, MAX_DIMS)
    for d in dims:
        if isinstance(d, bool) or not isinstance(d, int) or d < -1 or d >= 2**63:
            raise InvalidArgument(f"{name}: sizes are integers >= -1 (-1 = variable), "
                                  f"got {d!r}", field=name)
    return [int(d) for d in dims]
