"""Sticky arms for multi-armed bandit routes: a unit keeps the arm it was first given.

A bandit test's weights change every interval. Hashing a unit by the new weights would
move some units to another arm (as GrowthBook notes for its bandits, a user who switches
arms sees an inconsistent product and pollutes both arms' metrics), so a sidecar
remembers, per (test id, unit), the arm it gave and gives it again while the arm exists.
A unit seen for the first time is hashed by the current weights (ASSIGNMENT.md), so new
units follow the bandit's allocation.

The memory is a bounded LRU (:class:`StickyArms`, ``--sticky-units`` entries, one per
sidecar process): when full, the least recently seen unit is forgotten (counted in
:attr:`StickyArms.evictions`, exported as ``neural_sidecar_sticky_evictions_total``) and is
hashed afresh if it comes back. Stickiness is therefore per sidecar process: a restart, an
eviction, or a unit whose requests reach another sidecar is assigned by that sidecar's
current weights. One asyncio loop uses it, so no lock is needed.
"""

from __future__ import annotations

from collections import OrderedDict

DEFAULT_SIZE = 100_000


class StickyArms:
    """A bounded LRU of (route id, unit id) -> arm name."""

    __slots__ = ("_entries", "evictions", "hits", "size")

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        if size < 0:
            raise ValueError(f"the sticky table size must be >= 0, got {size}")
        self.size = size  # 0: no stickiness (every request hashed by the current weights)
        self._entries: OrderedDict[tuple[str, str], str] = OrderedDict()
        self.evictions = 0
        self.hits = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, route_id: str, unit_id: str) -> str | None:
        """The arm this unit was given on this route (None: not remembered)."""
        key = (route_id, unit_id)
        arm = self._entries.get(key)
        if arm is not None:
            self._entries.move_to_end(key)
            self.hits += 1
        return arm

    def put(self, route_id: str, unit_id: str, arm: str) -> None:
        """Remember the unit's arm, forgetting the least recently seen unit when full."""
        if self.size == 0:
            return
        key = (route_id, unit_id)
        self._entries[key] = arm
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)
            self.evictions += 1
