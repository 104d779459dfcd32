"""The one pagination scheme of every List RPC: ``page_size``, ``page_token``,
``next_page_token``.

* ``page_size`` 0 means :data:`DEFAULT_PAGE_SIZE`; a negative size or one above the RPC's
  documented maximum (:data:`MAX_PAGE_SIZE` unless the RPC says otherwise) is refused as
  INVALID_ARGUMENT naming ``page_size``, so a caller never silently gets fewer items than
  it asked for.
* Every list is ordered by a unique key (a tuple of integers and strings, e.g.
  ``(created_us, id)``), and a token holds the key of the last item of its page and the
  list it belongs to (*keyset* pagination). The next page starts strictly after that key,
  so a page never repeats or skips an item when items are added or removed between
  calls: an item added behind the position is simply not reached, one added ahead of it
  is. (An offset would shift under such changes.)
* A token is opaque to callers: base64url of a small JSON array, made only by
  :func:`encode_key`. A token this server did not issue, or one issued by another list,
  is INVALID_ARGUMENT naming ``page_token``. An empty ``next_page_token`` means the last
  page.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa

from neural.mlops.server.errors import InvalidArgument

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000

T = TypeVar("T")
Key = tuple[int | str, ...]

# Bounded so that a forged token cannot overflow a 64-bit SQL integer compared with it.
_INT_RANGE = range(-(2**63), 2**63)


def page_size(value: int, maximum: int = MAX_PAGE_SIZE) -> int:
    """The effective size of a page asked for with ``value``."""
    if not 0 <= value <= maximum:
        raise InvalidArgument(f"page_size must be 0..{maximum} (0 = {DEFAULT_PAGE_SIZE})",
                              field="page_size")
    return value or min(DEFAULT_PAGE_SIZE, maximum)


def encode_token(position: Any) -> str:
    """The token holding ``position`` (a JSON-serialisable value)."""
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode()


def decode_token(token: str) -> Any:
    """The position a token holds; None for the empty token (the first page)."""
    if not token:
        return None
    try:
        return json.loads(base64.urlsafe_b64decode(token.encode("ascii")))
    except (ValueError, TypeError, UnicodeError, binascii.Error):
        raise _forged() from None


def _forged() -> InvalidArgument:
    return InvalidArgument("page_token is not one this server issued", field="page_token")


def encode_key(listing: str, key: Sequence[int | str]) -> str:
    """The token of a page of ``listing`` that starts after the item whose key is ``key``."""
    return encode_token([listing, *key])


def decode_key(token: str, listing: str, kinds: Sequence[type]) -> Key | None:
    """The key a token of ``listing`` holds (None for the first page); its parts must have
    exactly the types ``kinds`` (int or str)."""
    value = decode_token(token)
    if value is None:
        return None
    if not (isinstance(value, list) and len(value) == len(kinds) + 1 and value[0] == listing):
        raise _forged()
    key = tuple(value[1:])
    for part, kind in zip(key, kinds, strict=True):
        if type(part) is not kind or (kind is int and part not in _INT_RANGE):
            raise _forged()
    return key


def keyset(items: Sequence[T], size: int, token: str, *, listing: str,
           key: Callable[[T], Key], kinds: Sequence[type], descending: bool = False,
           maximum: int = MAX_PAGE_SIZE) -> tuple[list[T], str]:
    """One page of a short list the server builds whole, ordered by ``key`` (ascending, or
    ``descending``), and the next page's token."""
    n = page_size(size, maximum)
    after = decode_key(token, listing, kinds)
    rest = sorted(items, key=key, reverse=descending)
    if after is not None:
        rest = [i for i in rest if (key(i) < after if descending else key(i) > after)]
    page = rest[:n]
    return page, encode_key(listing, key(page[-1])) if len(rest) > n else ""


def next_token(listing: str, keys: Sequence[Key], size: int) -> str:
    """The token after a page read with ``LIMIT size + 1`` whose rows have ``keys``."""
    return encode_key(listing, keys[size - 1]) if len(keys) > size else ""


def after_clause(columns: Sequence[Any], after: Key,
                 descending: bool = False) -> sa.ColumnElement[bool]:
    """SQL: the row's ``columns`` come strictly after ``after`` in the listing's order
    (lexicographic, written out as ORs so that every database plans it the same way)."""
    terms: list[sa.ColumnElement[bool]] = []
    for i, column in enumerate(columns):
        beyond = column < after[i] if descending else column > after[i]
        terms.append(sa.and_(*[c == after[j] for j, c in enumerate(columns[:i])], beyond))
    return sa.or_(*terms)
