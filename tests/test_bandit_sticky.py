"""Sticky bandit assignment in the sidecar's router: a unit keeps the arm it was first
given when a bandit route's weights change (a HASH route's units move), new units follow
the new weights, QA overrides still win, and the LRU is bounded with counted evictions."""

from __future__ import annotations

from neural.mlops.sidecar.metrics import Aggregator
from neural.mlops.sidecar.router import Router
from neural.mlops.sidecar.sticky import StickyArms
from neural.mlops.v1 import routing_pb2 as pb

UNITS = [f"user-{i}" for i in range(400)]


def _table(version: int, treatment: float, strategy: int = pb.ASSIGNMENT_STRATEGY_BANDIT,
           forced: dict[str, str] | None = None) -> pb.RoutingTable:
    route = pb.ModelRoute(
        model_name="m", route_id="test_1", kind=pb.ROUTE_KIND_EXPERIMENT, strategy=strategy,
        variants=[pb.RouteVariant(name="treatment", weight=treatment, model_name="m"),
                  pb.RouteVariant(name="control", weight=1.0 - treatment, model_name="m")],
        forced_variants=[pb.ForcedVariant(unit_id=u, variant=v)
                         for u, v in (forced or {}).items()],
    )
    return pb.RoutingTable(version=version, routes=[route])


def _arms(router: Router, units: list[str]) -> dict[str, str]:
    out = {}
    for u in units:
        res = router.resolve("m", u)
        assert res is not None
        out[u] = res.label  # the arm (x-neural-variant); arms here do not rewrite the model
    return out


def test_a_bandit_unit_keeps_its_first_arm_when_the_weights_change() -> None:
    router = Router(Aggregator())
    router.apply(_table(1, 0.5))
    before = _arms(router, UNITS)
    router.apply(_table(2, 0.1))  # the bandit moved traffic to control
    after = _arms(router, UNITS)
    assert after == before
    assert 150 < sum(a == "treatment" for a in before.values()) < 250
    newcomers = _arms(router, [f"new-{i}" for i in range(400)])
    assert sum(a == "treatment" for a in newcomers.values()) < 80  # ~10% by today's weights
    assert len(router.sticky) == 800


def test_a_hash_route_moves_units_when_its_weights_shrink() -> None:
    """The same change without stickiness: the check above is not vacuous."""
    router = Router(Aggregator())
    router.apply(_table(1, 0.5, pb.ASSIGNMENT_STRATEGY_HASH))
    before = _arms(router, UNITS)
    router.apply(_table(2, 0.1, pb.ASSIGNMENT_STRATEGY_HASH))
    after = _arms(router, UNITS)
    moved = sum(before[u] != after[u] for u in UNITS)
    assert moved > 100
    assert len(router.sticky) == 0  # only bandit routes use the table


def test_qa_overrides_and_the_callers_forced_variant_win_over_the_remembered_arm() -> None:
    router = Router(Aggregator())
    router.apply(_table(1, 0.5))
    first = _arms(router, UNITS[:50])
    unit = next(u for u, a in first.items() if a == "treatment")
    router.apply(_table(2, 0.5, forced={unit: "control"}))
    assert _arms(router, [unit]) == {unit: "control"}
    other = next(u for u, a in first.items() if a == "control")
    res = router.resolve("m", other, None, "treatment")
    assert res is not None and res.label == "treatment"
    assert _arms(router, [other]) == {other: "control"}  # the override did not replace it


def test_the_sticky_table_is_a_bounded_lru_with_counted_evictions() -> None:
    sticky = StickyArms(3)
    for i in range(5):
        sticky.put("t", f"u{i}", "a")
    assert len(sticky) == 3 and sticky.evictions == 2
    assert sticky.get("t", "u0") is None and sticky.get("t", "u2") == "a"
    sticky.put("t", "u5", "b")  # u2 was just used: u3 is the least recent now
    assert sticky.get("t", "u3") is None and sticky.get("t", "u2") == "a"
    assert sticky.get("other-test", "u2") is None  # per (test, unit)
    off = StickyArms(0)
    off.put("t", "u", "a")
    assert len(off) == 0 and off.get("t", "u") is None
    router = Router(Aggregator(), sticky=StickyArms(100))
    router.apply(_table(1, 0.5))
    _arms(router, UNITS)
    assert len(router.sticky) == 100 and router.sticky.evictions == 300
