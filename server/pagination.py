"""The one pagination scheme of every List RPC: ``page_size``, ``page_token``,
``next_page_token``.

* ``page_size`` 0 means :data:`DEFAULT_PAGE_SIZE`; a negative size or one above the RPC's
  documented maximum (:data:`MAX_PAGE_SIZE` unless the RPC says otherwise) is refused as
  INVALID_ARGUMENT naming ``page_size``, so a caller never silently gets fewer items than
  it asked for.
* A token is opaque to callers: base64url of a small JSON value (the position after
  which the next page starts), made only by :func:`encode_token`. A token this server did
  not issue is INVALID_ARGUMENT naming ``page_token``. An empty ``next_page_token`` means
  the last page.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from typing import Any, TypeVar

from neural.mlops.server.errors import InvalidArgument

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000

T = TypeVar("T")


def page_size(value: int, maximum: int = MAX_PAGE_SIZE) -> int:
    """The effective size of a page asked for with ``value``."""
    if not 0 <= value <= maximum:
        raise InvalidArgument(f"page_size must be 0..{maximum} (0 = {DEFAULT_PAGE_SIZE})",
                              field="page_size")
    return value or min(DEFAULT_PAGE_SIZE, maximum)


def encode_token(position: Any) -> str:
    """The token of a page that starts after ``position`` (a JSON-serialisable value)."""
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode()


def decode_token(token: str) -> Any:
    """The position a token holds; None for the empty token (the first page)."""
    if not token:
        return None
    try:
        return json.loads(base64.urlsafe_b64decode(token.encode("ascii")))
    except (ValueError, TypeError, UnicodeError, binascii.Error):
        raise InvalidArgument("page_token is not one this server issued",
                              field="page_token") from None


def offset_of(token: str) -> int:
    """The offset an offset token holds (0 for the first page)."""
    offset = decode_token(token)
    if offset is None:
        return 0
    # Bounded so that a forged token cannot overflow a SQL LIMIT built from it.
    if type(offset) is not int or not 0 <= offset < 2**53:
        raise InvalidArgument("page_token is not one this server issued", field="page_token")
    return offset


def window(items: Sequence[T], size: int, token: str,
           maximum: int = MAX_PAGE_SIZE) -> tuple[list[T], str]:
    """One page of a list the server builds whole (short lists: pending approvals, a model's
    history), and the token of the next page; the token is an offset into the list."""
    n = page_size(size, maximum)
    start = offset_of(token)
    end = start + n
    return list(items[start:end]), encode_token(end) if end < len(items) else ""
