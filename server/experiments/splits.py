"""Changing who gets what: the split's weights, and QA overrides of single units.

The split of a RUNNING or PAUSED test may only change stickily (no unit changes arm;
with two variants: the treatment share only grows) unless ``explicit=True``; every change
is kept in the test's split history and audited.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from neural.mlops.server import validation as v
from neural.mlops.server.audit.events import EventType
from neural.mlops.server.clock import Clock, to_us
from neural.mlops.server.errors import FailedPrecondition, InvalidArgument
from neural.mlops.server.experiments import store
from neural.mlops.server.experiments.cache import TestCache
from neural.mlops.server.experiments.model import ABTest, TestStatus
from neural.mlops.server.identity import current_call
from neural.mlops.server.storage import Database

MAX_FORCED = 1000  # QA overrides per test


def sticky(old: Sequence[tuple[str, float]], new: Mapping[str, float], control: str) -> bool:
    """True if no unit changes arm: every non-control variant's bucket interval grows."""
    lo_old = lo_new = 0.0
    for name, w_old in old:
        w_new = new[name]
        if name != control and (
            lo_new > lo_old + 1e-12 or lo_new + w_new < lo_old + w_old - 1e-12
        ):
            return False
        lo_old += w_old
        lo_new += w_new
    return True


def _requested(
    test: ABTest, weights: Mapping[str, float] | None, traffic_split: float | None
) -> dict[str, float]:
    """The new weights, from ``weights`` or (two variants) the treatment's share."""
    if traffic_split is not None:
        if weights is not None:
            raise InvalidArgument("pass weights or traffic_split, not both", field="weights")
        if len(test.variants) != 2:
            raise InvalidArgument(
                "traffic_split needs a two-variant test; pass weights", field="traffic_split"
            )
        split = v.fraction(traffic_split, "traffic_split")
        treatment = next(x.name for x in test.variants if x.name != test.control)
        new = {treatment: split, test.control: 1.0 - split}
    else:
        if not isinstance(weights, Mapping):
            raise InvalidArgument("weights is required", field="weights")
        new = {str(k): v.fraction(w, f"weights.{k}") for k, w in weights.items()}
    names = [x.name for x in test.variants]
    if set(new) != set(names):
        raise InvalidArgument(f"weights must name exactly the variants {names}", field="weights")
    if abs(math.fsum(new.values()) - 1.0) > 1e-9:
        raise InvalidArgument("weights must sum to 1", field="weights")
    return new


class Splits:
    def __init__(self, db: Database, clock: Clock, cache: TestCache) -> None:
        self._db = db
        self._clock = clock
        self._cache = cache

    async def update_split(
        self,
        test_id: str,
        weights: Mapping[str, float] | None = None,
        *,
        traffic_split: float | None = None,
        explicit: bool = False,
        reason: str = "",
    ) -> ABTest:
        """Change the weights. ``traffic_split`` (two-variant tests) sets the treatment share."""
        reason = v.text(reason, "reason")
        now_us = to_us(self._clock.now())
        async with self._db.change() as ch:
            row = await store.load(ch.conn, test_id, lock=True)
            test = store.to_test(row, now_us)
            if test.status in (TestStatus.STOPPED, TestStatus.CONCLUDED):
                raise FailedPrecondition(
                    f"A/B test {test_id!r} is {test.status.value}; its split is final"
                )
            if test.bandit is not None:
                raise FailedPrecondition(
                    f"A/B test {test_id!r} is a multi_armed_bandit: its weights are set by "
                    "the bandit every interval, not by update_split"
                )
            new = _requested(test, weights, traffic_split)
            old = [(x.name, x.weight) for x in test.variants]
            is_sticky = sticky(old, new, test.control)
            live = test.status in (TestStatus.RUNNING, TestStatus.PAUSED)
            if live and not is_sticky and not explicit:
                raise FailedPrecondition(
                    "this split change would move units that are already assigned to another "
                    "arm (a running test's split may only grow); pass explicit=True to do it "
                    "anyway"
                )
            variants_json = [{"name": x.name, "model_ref": x.model_ref, "weight": new[x.name]}
                             for x in test.variants]
            history = store.split_history(row)
            history.append({"at_us": now_us, "actor": current_call().actor, "weights": new,
                            "explicit": not is_sticky, "reason": reason})
            await store.update(ch.conn, test_id, variants=store.dump(variants_json),
                               split_history=store.dump(history), updated_us=now_us)
            ch.record(
                EventType.AB_TEST_UPDATED,
                resource_type="ab_test",
                resource_id=test_id,
                action="update_split",
                details={"before": {"weights": dict(old)}, "after": {"weights": new},
                         "sticky": is_sticky, "reason": reason},
            )
            self._cache.changed(ch, test_id)
            row = await store.load(ch.conn, test_id)
        return store.to_test(row, now_us)

    async def set_forced_variant(self, test_id: str, unit_id: str, variant: str | None) -> ABTest:
        """Pin ``unit_id`` to ``variant`` (QA); ``variant=None`` removes the override."""
        unit_id = v.text(unit_id, "unit_id", limit=256)
        if not unit_id:
            raise InvalidArgument("unit_id is required", field="unit_id")
        now_us = to_us(self._clock.now())
        async with self._db.change() as ch:
            row = await store.load(ch.conn, test_id, lock=True)
            test = store.to_test(row, now_us)
            forced = dict(test.forced_variants)
            before = forced.get(unit_id)
            if variant:
                if test.variant(variant) is None:
                    raise InvalidArgument(
                        f"{variant!r} is not a variant of {test_id!r}", field="variant"
                    )
                if unit_id not in forced and len(forced) >= MAX_FORCED:
                    raise InvalidArgument(
                        f"at most {MAX_FORCED} forced units per test", field="unit_id"
                    )
                forced[unit_id] = variant
            else:
                forced.pop(unit_id, None)
            await store.update(ch.conn, test_id, forced=store.dump(forced), updated_us=now_us)
            ch.record(
                EventType.AB_TEST_UPDATED,
                resource_type="ab_test",
                resource_id=test_id,
                action="force_variant",
                details={"unit_id": unit_id, "before": before, "after": variant or None},
            )
            self._cache.changed(ch, test_id)
            row = await store.load(ch.conn, test_id)
        return store.to_test(row, now_us)
