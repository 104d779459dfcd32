"""The order of a list of model versions (``order_by`` of ListVersions and
SearchModelVersions) and its keyset pagination.

``order_by`` is ``<key> [asc|desc]`` (default ``asc``; empty = registration order):

* ``created`` / ``updated``: the version's creation / last update time;
* ``version``: the version string, compared as text (``"10" < "9"``);
* ``name``: the model's name (a search may span models);
* ``metrics.<metric>`` (or ``metric.<metric>``): the version's value of that metric.
  Versions without the metric come last in both directions.

Ties are broken by the version's id (registration order) in the same direction, so the
order is total and a page token (the last row's key, see :mod:`..pagination`) resumes
strictly after it: versions registered or changed between calls never make a page repeat
or skip a version that did not itself move. A token carries its order; one from another
order is refused as INVALID_ARGUMENT naming ``page_token``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from neural.mlops.server.errors import InvalidArgument
from neural.mlops.server.pagination import decode_key, encode_key
from neural.mlops.server.storage.schema import model_version_metrics, model_versions

_COLUMNS = {"created": "created_us", "updated": "updated_us", "version": "version",
            "name": "name"}
_METRIC = re.compile(r"metrics?\.([A-Za-z0-9_][\w.\-]{0,127})")
_TEXT = re.compile(r"\s*(?P<key>\S+)(?:\s+(?P<dir>\S+))?\s*")


@dataclass(frozen=True, slots=True)
class Order:
    """A parsed ``order_by``: a column of model_versions or a metric, and a direction."""

    column: str = ""  # "" with metric set: order by that metric
    metric: str = ""
    descending: bool = False

    @property
    def canonical(self) -> str:
        key = f"metrics.{self.metric}" if self.metric else self.column.removesuffix("_us")
        return f"{key} {'desc' if self.descending else 'asc'}"


def parse(text: str) -> Order | None:
    """The order ``text`` names; None for the empty text (registration order)."""
    if not text.strip():
        return None
    m = _TEXT.fullmatch(text)
    if m is None:
        raise _bad(f"order_by {text[:80]!r}: expected '<key> [asc|desc]'")
    direction = (m["dir"] or "asc").lower()
    if direction not in ("asc", "desc"):
        raise _bad(f"order_by {text[:80]!r}: direction {m['dir']!r} must be asc or desc")
    key = m["key"]
    metric = _METRIC.fullmatch(key)
    if metric is not None:
        return Order(metric=metric[1], descending=direction == "desc")
    if key.lower() not in _COLUMNS:
        raise _bad(f"order_by {text[:80]!r}: unknown key {key[:80]!r}; expected one of "
                   f"{', '.join(_COLUMNS)} or metrics.<name>")
    return Order(column=_COLUMNS[key.lower()], descending=direction == "desc")


def _bad(message: str) -> InvalidArgument:
    return InvalidArgument(message, field="order_by")


def _listing(order: Order) -> str:
    return "versions:" + order.canonical


def decode(order: Order, token: str) -> tuple[Any, ...] | None:
    """The key after which the page starts (None: the first page)."""
    if order.metric:
        key = decode_key(token, _listing(order), (int, str, int))
        if key is None:
            return None
        missing, value, vid = key
        if missing not in (0, 1):
            raise InvalidArgument("page_token is not one this server issued", field="page_token")
        try:
            number = None if missing else float(str(value))
        except ValueError:
            raise InvalidArgument("page_token is not one this server issued",
                                  field="page_token") from None
        return (missing, number, vid)
    kind = int if order.column.endswith("_us") else str
    return decode_key(token, _listing(order), (kind, int))


def encode(order: Order, key: tuple[Any, ...]) -> str:
    if order.metric:
        missing, value, vid = key
        return encode_key(_listing(order), (missing, "" if value is None else repr(value), vid))
    return encode_key(_listing(order), key)


async def ordered_ids(conn: AsyncConnection, order: Order,
                      where: Sequence[sa.ColumnElement[bool]], after: tuple[Any, ...] | None,
                      limit: int) -> list[tuple[int, tuple[Any, ...]]]:
    """Up to ``limit`` (version id, key) pairs matching ``where`` in ``order``, after the
    key ``after``."""
    mv = model_versions
    q: Any  # a Select of two or three columns
    if order.metric:
        m = model_version_metrics.alias("order_metric")  # not the filters' EXISTS table
        missing = sa.case((m.c.value.is_(None), 1), else_=0)
        value_col: Any = m.c.value
        q = sa.select(mv.c.id, missing, m.c.value).select_from(mv.outerjoin(
            m, sa.and_(m.c.version_id == mv.c.id, m.c.metric == order.metric)))
        cols: list[Any] = [missing, value_col, mv.c.id]
        q = q.order_by(missing, *_directed(cols[1:], order.descending))
        if after is not None:
            q = q.where(_after_metric(missing, value_col, mv.c.id, after, order.descending))
    else:
        col = mv.c[order.column]
        q = sa.select(mv.c.id, col).order_by(*_directed([col, mv.c.id], order.descending))
        if after is not None:
            q = q.where(_beyond([col, mv.c.id], after, order.descending))
    rows = (await conn.execute(q.where(*where).limit(limit))).all()
    if order.metric:
        return [(r[0], (int(r[1]), r[2], r[0])) for r in rows]
    return [(r[0], (r[1], r[0])) for r in rows]


def _directed(cols: Sequence[Any], descending: bool) -> list[Any]:
    return [c.desc() if descending else c.asc() for c in cols]


def _beyond(cols: Sequence[Any], after: Sequence[Any],
            descending: bool) -> sa.ColumnElement[bool]:
    """The row's ``cols`` come strictly after ``after`` (lexicographic, one direction)."""
    terms = []
    for i, col in enumerate(cols):
        step = col < after[i] if descending else col > after[i]
        terms.append(sa.and_(*[c == after[j] for j, c in enumerate(cols[:i])], step))
    return sa.or_(*terms)


def _after_metric(missing: Any, value: Any, vid: Any, after: tuple[Any, ...],
                  descending: bool) -> sa.ColumnElement[bool]:
    """After a key (missing, value, id): versions with the metric beyond ``(value, id)``
    then every version without it; after a version without it, those beyond its id."""
    gone, number, last = after
    if gone:
        return sa.and_(missing == 1, vid < last if descending else vid > last)
    return sa.or_(sa.and_(missing == 0, _beyond([value, vid], (number, last), descending)),
                  missing == 1)
