"""The one domain exception hierarchy.

Domain services raise these; the gRPC layer maps each class to one status code
(:data:`STATUS_NAMES`) and the Python client maps the code back to the same class, so
embedded and remote callers catch the same exceptions.
"""

from __future__ import annotations


class MLOpsError(Exception):
    """Base class. ``field`` names the offending input field, when there is one."""

    status = "UNKNOWN"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return self.message


class InvalidArgument(MLOpsError, ValueError):
    status = "INVALID_ARGUMENT"


class NotFound(MLOpsError, LookupError):
    status = "NOT_FOUND"


class AlreadyExists(MLOpsError):
    status = "ALREADY_EXISTS"


class FailedPrecondition(MLOpsError):
    status = "FAILED_PRECONDITION"


class PermissionDenied(MLOpsError, PermissionError):
    status = "PERMISSION_DENIED"


class Unauthenticated(MLOpsError):
    status = "UNAUTHENTICATED"


class DataLoss(MLOpsError):
    status = "DATA_LOSS"


class Unavailable(MLOpsError):
    status = "UNAVAILABLE"


class ResourceExhausted(MLOpsError):
    status = "RESOURCE_EXHAUSTED"


class Internal(MLOpsError):
    status = "INTERNAL"


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
