"""The exceptions every API raises, embedded or remote (one class per gRPC status; each
has `.message`, `.field` and a stable `.reason`: docs/errors.md)."""

from neural.mlops.server.errors import (
    AlreadyExists,
    DataLoss,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    MLOpsError,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)

__all__ = [
    "AlreadyExists",
    "DataLoss",
    "FailedPrecondition",
    "Internal",
    "InvalidArgument",
    "MLOpsError",
    "NotFound",
    "PermissionDenied",
    "ResourceExhausted",
    "Unauthenticated",
    "Unavailable",
]
