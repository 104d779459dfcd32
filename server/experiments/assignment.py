"""Which variant a unit gets.

``get_variant`` of a test that is not RUNNING returns control (the winner once
concluded): traffic outside a running test goes to the safe arm. A unit outside a running
test's range of its layer is refused (``NOT_IN_TEST``), as is recording it. HASH_BASED assignment is
a pure function of (test id, weights, unit id) plus the QA overrides, so it can be
recomputed later (late outcomes); RANDOM and ROUND_ROBIN keep per-process state.

A MULTI_ARMED_BANDIT test is sticky in the store: a unit already counted in the test (by a
sidecar's metric windows or ``RecordRequests``, ``experiment_units``) gets the arm it was
counted in, on every replica, whatever the weights are now; a unit not counted yet is
hashed by the current weights. A unit counted in several arms (hashed by two sidecars
before either reported it) gets the arm with the most requests, ties to the earlier arm
of the test's list.
"""

from __future__ import annotations

from typing import cast

import sqlalchemy as sa

from neural.mlops.server.errors import FailedPrecondition, InvalidArgument
from neural.mlops.server.experiments.cache import TestCache
from neural.mlops.server.experiments.model import (
    ABTest,
    TestStatus,
    TrafficSplitStrategy,
    Variant,
)
from neural.mlops.server.storage import Database
from neural.mlops.server.storage.schema import experiment_units
from neural.mlops.v1.assignment import Assigner, bucket
from neural.mlops.v1.units import unit_key


def in_test(test: ABTest, user_id: str) -> bool:
    """Whether the unit belongs to the test by its layer (ASSIGNMENT.md "Layers"): its
    bucket under the layer's salt lies in the test's range, or the test has all of its
    layer, or a QA override names the unit. Targeting is the caller's to apply: the
    control plane does not see the request."""
    rng = test.layer_range
    if rng is None or (rng[0] <= 0.0 and rng[1] >= 1.0) or user_id in test.forced_variants:
        return True
    return rng[0] <= bucket(test.layer, user_id) < rng[1]


def check_in_test(test: ABTest, user_id: str, field: str = "unit_id") -> None:
    """FailedPrecondition (reason ``NOT_IN_TEST``) for a unit outside the test's range:
    it is not randomized into the test, so it has no arm and must not be counted."""
    if not in_test(test, user_id):
        start, end = test.layer_range or (0.0, 1.0)
        raise FailedPrecondition(
            f"unit {user_id!r} is not in A/B test {test.test_id!r}: its bucket in layer "
            f"{test.layer!r} is outside the test's range [{start:g}, {end:g}) (another test "
            "of the layer, or none, has it); serve it what it gets without the test",
            reason="NOT_IN_TEST", field=field)


def hash_variant(test: ABTest, user_id: str) -> str:
    """The variant HASH_BASED assignment gives ``user_id`` (QA overrides first)."""
    if user_id in test.forced_variants:
        return test.forced_variants[user_id]
    return Assigner(test.test_id, [(x.name, x.weight) for x in test.variants]).choose(user_id)


async def counted_arm(db: Database, test: ABTest, user_id: str) -> str | None:
    """The arm a unit was counted in by this test (module docstring), None if none."""
    names = [x.name for x in test.variants]
    u = experiment_units
    query = sa.select(u.c.variant, u.c.requests).where(
        u.c.test_id == test.test_id, u.c.variant.in_(names), u.c.unit_key == unit_key(user_id))
    async with db.read() as conn:
        rows = (await conn.execute(query)).all()
    if not rows:
        return None
    return str(max(rows, key=lambda r: (r.requests, -names.index(r.variant))).variant)


class Assignment:
    def __init__(self, cache: TestCache, db: Database | None = None) -> None:
        self._cache = cache
        self._db = db
        # Per-process assigners (RANDOM / ROUND_ROBIN keep state), keyed by test and by the
        # row's updated_us and weights, so a split, reweighting or override change starts
        # a new one (the weights too: two changes may share a clock reading).
        self._assigners: dict[str, tuple[object, Assigner]] = {}

    async def get_variant(
        self, test_id: str, user_id: str | None = None
    ) -> tuple[str, Variant, bool]:
        """``(variant name, variant, forced)`` for a unit. Non-running tests answer control
        (the winner once concluded)."""
        unit: object = user_id  # a Python caller may pass a number
        if unit is not None and not isinstance(unit, str):
            user_id = str(unit)
        row, test = await self._cache.lookup(test_id)
        forced = False
        if test.status != TestStatus.RUNNING:
            name = test.winner or test.control
        elif user_id is not None and user_id in test.forced_variants:
            name, forced = test.forced_variants[user_id], True
        elif test.strategy == TrafficSplitStrategy.HASH_BASED and not user_id:
            raise InvalidArgument("unit_id is required for a HASH_BASED test", field="unit_id")
        else:
            if user_id:
                check_in_test(test, user_id)
            counted = await self._sticky(test, user_id) if user_id else None
            if counted is not None:
                name = counted
            else:
                version = (row.updated_us, tuple(x.weight for x in test.variants))
                name = self._assigner(test, version).choose(user_id or None)
        # The name is always one of the test's variants: winners and overrides are checked
        # when set, and a split change keeps the variant names.
        return name, cast(Variant, test.variant(name)), forced

    async def _sticky(self, test: ABTest, user_id: str) -> str | None:
        if test.strategy != TrafficSplitStrategy.MULTI_ARMED_BANDIT or self._db is None:
            return None
        return await counted_arm(self._db, test, user_id)

    def _assigner(self, test: ABTest, version: object) -> Assigner:
        cached = self._assigners.get(test.test_id)
        if cached is not None and cached[0] == version:
            return cached[1]
        a = Assigner(
            test.test_id,
            [(x.name, x.weight) for x in test.variants],
            test.strategy.assignment,
            forced=test.forced_variants,
        )
        self._assigners[test.test_id] = (version, a)
        return a
