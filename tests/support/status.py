"""Read google.rpc.Status details off a failed call with grpcio-status (what any Python
program would use), independently of the product's own client."""

from __future__ import annotations

from dataclasses import dataclass, field

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status


@dataclass
class Details:
    reason: str = ""
    domain: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    field_violations: list[tuple[str, str]] = field(default_factory=list)  # (field, reason)
    preconditions: list[tuple[str, str]] = field(default_factory=list)  # (type, subject)


def details(err: grpc.RpcError) -> Details:
    """The ErrorInfo, BadRequest and PreconditionFailure of ``err`` (raises when the call
    carries no status details, or details that disagree with its code and message)."""
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    assert status is not None, f"{err.code()} without grpc-status-details-bin"
    out = Details()
    for any_ in status.details:
        if any_.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            any_.Unpack(info)
            out.reason, out.domain, out.metadata = info.reason, info.domain, dict(info.metadata)
        elif any_.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            any_.Unpack(bad)
            out.field_violations = [(v.field, v.reason) for v in bad.field_violations]
        elif any_.Is(error_details_pb2.PreconditionFailure.DESCRIPTOR):
            pre = error_details_pb2.PreconditionFailure()
            any_.Unpack(pre)
            out.preconditions = [(v.type, v.subject) for v in pre.violations]
    return out
