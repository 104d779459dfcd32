"""The exceptions every API raises, embedded or remote (one class per gRPC status)."""

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
