"""The one domain exception hierarchy.

Domain services raise these; the gRPC layer (:mod:`neural.mlops.server.grpc_errors`) maps
each class to one status code and sends ``reason`` and ``field`` as google.rpc.Status
details, and the Python client rebuilds the same class from them, so embedded and remote
callers catch the same exceptions. ``reason`` is a stable UPPER_SNAKE word a program may
branch on (docs/errors.md lists them); the message is for people and may change.
"""

from __future__ import annotations


class MLOpsError(Exception):
    """Base class. ``field`` names the offending input field, when there is one;
    ``reason`` defaults to the class's :attr:`default_reason`."""

    status = "UNKNOWN"
    default_reason = "UNKNOWN"

    def __init__(self, message: str, *, field: str | None = None,
                 reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.reason = reason or self.default_reason

    def __str__(self) -> str:
        return self.message


class InvalidArgument(MLOpsError, ValueError):
    status = "INVALID_ARGUMENT"
    default_reason = "INVALID_FIELD"


class NotFound(MLOpsError, LookupError):
    status = "NOT_FOUND"
    default_reason = "NOT_FOUND"


class AlreadyExists(MLOpsError):
    status = "ALREADY_EXISTS"
    default_reason = "ALREADY_EXISTS"


class FailedPrecondition(MLOpsError):
    status = "FAILED_PRECONDITION"
    default_reason = "FAILED_PRECONDITION"


class PermissionDenied(MLOpsError, PermissionError):
    status = "PERMISSION_DENIED"
    default_reason = "PERMISSION_DENIED"


class Unauthenticated(MLOpsError):
    status = "UNAUTHENTICATED"
    default_reason = "UNAUTHENTICATED"


class DataLoss(MLOpsError):
    status = "DATA_LOSS"
    default_reason = "DATA_LOSS"


class Unavailable(MLOpsError):
    status = "UNAVAILABLE"
    default_reason = "UNAVAILABLE"


class ResourceExhausted(MLOpsError):
    status = "RESOURCE_EXHAUSTED"
    default_reason = "RESOURCE_EXHAUSTED"


class Internal(MLOpsError):
    status = "INTERNAL"
    default_reason = "INTERNAL"


ERROR_CLASSES: tuple[type[MLOpsError], ...] = (
    InvalidArgument,
    NotFound,
    AlreadyExists,
    FailedPrecondition,
    PermissionDenied,
    Unauthenticated,
    DataLoss,
    Unavailable,
    ResourceExhausted,
    Internal,
)

BY_STATUS: dict[str, type[MLOpsError]] = {cls.status: cls for cls in ERROR_CLASSES}
