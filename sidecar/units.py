"""A window's per-unit counts on the wire: unit keys and messages under the size bound.

:class:`~.metrics.Window` keeps ``units`` as :class:`~.metrics.UnitColumns` (unit id ->
row, and the requests, errors and latency sums as columns); :func:`unit_breakdowns` turns
them into ``UnitBreakdown`` messages, the columns sliced as they are, split so that no
``VariantWindow`` exceeds the contract's 64 KiB per window
(:data:`neural.mlops.v1.limits.MAX_BULK_ELEMENT_BYTES`).
"""

from __future__ import annotations

from typing import Any

from neural.mlops.v1 import routing_pb2
from neural.mlops.v1.units import unit_key

# Encoded bytes of units per message: room is left for the window's own fields.
UNIT_BYTES_PER_MESSAGE = 48_000

__all__ = ["UNIT_BYTES_PER_MESSAGE", "UnitKeys", "unit_breakdowns"]


class UnitKeys:
    """Unit id -> :func:`unit_key`, remembered across windows (users come back), bounded."""

    LIMIT = 200_000

    def __init__(self) -> None:
        self._keys: dict[str, int] = {}

    def __call__(self, unit: str) -> int:
        k = self._keys.get(unit)
        if k is None:
            if len(self._keys) >= self.LIMIT:
                self._keys.clear()
            k = self._keys[unit] = unit_key(unit)
        return k


def unit_breakdowns(w: Any, key: UnitKeys) -> list[routing_pb2.UnitBreakdown]:
    """The window's units as messages of at most UNIT_BYTES_PER_MESSAGE encoded bytes each
    (the first carries the overflow)."""
    us = w.units
    ids = list(us.rows) if us is not None else []
    custom = (us.custom if us is not None else None) or {}
    names = sorted({name for per in custom.values() for name in per})
    per = max(1, UNIT_BYTES_PER_MESSAGE // (24 + 12 * len(names)))
    out = []
    for i in range(0, max(len(ids), 1), per):
        j = min(i + per, len(ids))
        b = routing_pb2.UnitBreakdown(
            keys=[key(u) for u in ids[i:j]],
            requests=us.requests[i:j] if us is not None else (),
            errors=us.errors[i:j] if us is not None else (),
            latency_seconds=us.latency[i:j] if us is not None else (),
            overflow_requests=w.unit_overflow if i == 0 else 0,
        )
        for name in names:
            m = b.custom[name]
            got = [custom.get(row, {}).get(name) for row in range(i, j)]
            m.n.extend([g[0] if g else 0 for g in got])
            m.sum.extend([g[1] if g else 0.0 for g in got])
        out.append(b)
    return out
