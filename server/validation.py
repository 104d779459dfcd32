"""Validation of identifiers and bounded inputs shared by every domain.

Names and versions become folder names under ``models/`` and keys in URLs and routing
tables, so they are restricted: non-empty, at most 128 characters, no path separators,
no ``..``, no control characters, no leading/trailing whitespace.
"""

from __future__ import annotations

import math
import re
import unicodedata

from neural.mlops.server.errors import InvalidArgument
from neural.mlops.v1.limits import MAX_IDENTITY, MAX_NAME, MAX_TEXT

__all__ = ["MAX_IDENTITY", "MAX_NAME", "MAX_TEXT", "actor", "finite", "fraction", "name",
           "normalize_identity", "percentage", "text"]
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _has_invisible(value: str) -> bool:
    """Control or format characters (bidi overrides such as U+202E, zero-width joiners,
    BOM): they make two different names print alike, or one name print as another."""
    return bool(_CONTROL.search(value)) or any(unicodedata.category(ch) == "Cf" for ch in value)


def name(value: object, field: str) -> str:
    """Return ``value`` if it is a valid identifier, else raise InvalidArgument naming ``field``."""
    if not isinstance(value, str) or not value:
        raise InvalidArgument(f"{field} must be a non-empty string", field=field)
    if len(value) > MAX_NAME:
        raise InvalidArgument(f"{field} is longer than {MAX_NAME} characters", field=field)
    if "/" in value or "\\" in value:
        raise InvalidArgument(f"{field} must not contain '/' or '\\': {value!r}", field=field)
    if ".." in value:
        raise InvalidArgument(f"{field} must not contain '..': {value!r}", field=field)
    if _has_invisible(value):
        raise InvalidArgument(
            f"{field} must not contain control or format characters (e.g. bidi overrides)",
            field=field,
        )
    if value != value.strip() or value in (".",):
        raise InvalidArgument(f"{field} has leading or trailing whitespace: {value!r}", field=field)
    return value


def normalize_identity(value: str) -> str:
    """The one form identities are stored and compared in: trimmed, Unicode NFC, and
    case-folded when e-mail-like (``" Me@X.com"`` and ``"me@x.com"`` are one person, so
    separation of duties cannot be bypassed by spelling)."""
    value = unicodedata.normalize("NFC", value.strip())
    return value.casefold() if "@" in value else value


def actor(value: object, field: str) -> str:
    """A person or system identity (e-mail style), normalized (:func:`normalize_identity`);
    required, bounded, printable. Callers store and compare the returned value."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidArgument(f"{field} is required", field=field)
    if len(value) > MAX_IDENTITY:
        raise InvalidArgument(f"{field} is longer than {MAX_IDENTITY} characters", field=field)
    if _has_invisible(value.strip()):
        raise InvalidArgument(f"{field} is not a valid identity: it contains control or "
                              "format characters", field=field)
    return normalize_identity(value)


def text(value: object, field: str, *, limit: int = MAX_TEXT) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidArgument(f"{field} must be a string", field=field)
    if len(value) > limit:
        raise InvalidArgument(f"{field} is longer than {limit} characters", field=field)
    return value


def finite(value: object, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidArgument(f"{field} must be a number, got {value!r}", field=field)
    v = float(value)
    if not math.isfinite(v):
        raise InvalidArgument(f"{field} must be finite, got {value!r}", field=field)
    return v


def fraction(value: object, field: str) -> float:
    v = finite(value, field)
    if not 0.0 <= v <= 1.0:
        raise InvalidArgument(f"{field} must be within [0, 1], got {value!r}", field=field)
    return v


def percentage(value: object, field: str) -> float:
    v = finite(value, field)
    if not 0.0 <= v <= 100.0:
        raise InvalidArgument(f"{field} must be within [0, 100], got {value!r}", field=field)
    return v
