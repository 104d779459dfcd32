"""Per-unit traffic counts: the randomization unit's share of a window.

Assignment hashes the unit (a user id), so the analysis must treat a unit's requests as
one observation, not as independent ones. Everything that counts traffic per unit (the
sidecar's windows, ``record_requests`` and late outcomes in the control plane) keys a
unit by :func:`unit_key` and sums, per unit, a :class:`UnitCounts`. Pure standard
library; shared by the sidecar and the control plane.

``unit_key(unit_id)``
    The signed 64-bit key of a unit: the first 8 bytes (big-endian, two's complement) of
    BLAKE2b-64 of the UTF-8 unit id. Stable across processes and machines (unlike
    ``hash()``), so a unit counted by several sidecars and by the API merges into one
    row. Two distinct units share a key with probability ~ u^2 / 2^65 for u units
    (3e-4 at 10^8 units): a collision merges two units, it never breaks the analysis.
``UnitCounts``
    ``requests``, ``successes``, ``errors``, ``latency_n``, ``latency_sum`` (seconds) and
    ``custom`` {name: [n, sum]}; ``+`` merges, ``to_dict`` / ``from_dict`` for the wire.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["MAX_UNITS_PER_WINDOW", "UnitCounts", "unit_key"]

# Units a sidecar counts per (route, variant) window; the control plane refuses more.
MAX_UNITS_PER_WINDOW = 10_000


def unit_key(unit_id: str) -> int:
    """The unit's signed 64-bit key (see the module docstring)."""
    digest = hashlib.blake2b(unit_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@dataclass(slots=True)
class UnitCounts:
    """One unit's sums: the numerators and denominators of every per-request metric."""

    requests: int = 0
    successes: int = 0
    errors: int = 0
    latency_n: int = 0
    latency_sum: float = 0.0
    custom: dict[str, list[float]] = field(default_factory=dict)  # name -> [n, sum]

    def __add__(self, other: UnitCounts) -> UnitCounts:
        custom = {k: list(v) for k, v in self.custom.items()}
        for k, (n, s) in other.custom.items():
            m = custom.setdefault(k, [0, 0.0])
            m[0] += n
            m[1] += s
        return UnitCounts(
            self.requests + other.requests,
            self.successes + other.successes,
            self.errors + other.errors,
            self.latency_n + other.latency_n,
            self.latency_sum + other.latency_sum,
            custom,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "successes": self.successes,
            "errors": self.errors,
            "latency_n": self.latency_n,
            "latency_sum": self.latency_sum,
            "custom": {k: [int(n), float(s)] for k, (n, s) in sorted(self.custom.items())},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> UnitCounts:
        return cls(
            int(d.get("requests", 0)),
            int(d.get("successes", 0)),
            int(d.get("errors", 0)),
            int(d.get("latency_n", 0)),
            float(d.get("latency_sum", 0.0)),
            {str(k): [int(n), float(s)] for k, (n, s) in (d.get("custom") or {}).items()},
        )
