"""The sidecar's per-request resolution with layers (ASSIGNMENT.md "Layers"), on compiled
routing tables: exclusion inside a layer, independence across layers, one version per
request, the deployment's canary share, targeting, header routes and overrides."""

from __future__ import annotations

from collections import Counter

from scipy import stats

from neural.mlops.sidecar.attributes import RequestAttributes
from neural.mlops.sidecar.layers import EXPERIMENT_HEADER, Fanout
from neural.mlops.sidecar.metrics import Aggregator
from neural.mlops.sidecar.router import Router
from neural.mlops.v1 import oip_pb2, targeting
from neural.mlops.v1 import routing_pb2 as pb
from neural.mlops.v1.assignment import assign, layer_test

N = 10_000
USERS = [f"user-{i}" for i in range(N)]


def _v(name: str, weight: float, version: str = "", upstream: str = "") -> pb.RouteVariant:
    return pb.RouteVariant(name=name, weight=weight, model_name="m", model_version=version,
                           upstream=upstream)


def _test(route_id: str, layer: str, lo: float, hi: float, *variants: pb.RouteVariant,
          conditions: tuple[str, ...] = ()) -> pb.ModelRoute:
    return pb.ModelRoute(model_name="m", route_id=route_id, kind=pb.ROUTE_KIND_EXPERIMENT,
                         variants=variants, layer_id=layer, range_start=lo, range_end=hi,
                         targeting=[targeting.parse(c) for c in conditions])


def _router(*routes: pb.ModelRoute) -> Router:
    r = Router(Aggregator())
    r.apply(pb.RoutingTable(version=1, routes=routes))
    return r


def _headers(**h: str) -> RequestAttributes:
    return RequestAttributes.from_grpc(list(h.items()), b"")


STEER_A = _test("A", "m:default", 0.0, 0.3, _v("treatment", 0.5, "2"), _v("control", 0.5, "1"))
STEER_B = _test("B", "m:default", 0.3, 0.8, _v("treatment", 0.2, "3"), _v("control", 0.8, "1"))
LABEL_C = _test("C", "ui", 0.0, 1.0, _v("blue", 0.5), _v("control", 0.5))


def _tests_of(res) -> dict[str, str]:  # noqa: ANN001
    return dict(t.split("=", 1) for _, v in res.assignments for t in v.split(","))


def test_tests_of_one_layer_share_no_unit_and_get_their_shares() -> None:
    router = _router(STEER_A, STEER_B)
    seen: dict[str, set[str]] = {"A": set(), "B": set()}
    for u in USERS:
        res = router.resolve("m", u, None, None)
        tests = _tests_of(res)
        assert len(tests) <= 1
        for t in tests:
            seen[t].add(u)
        # What is served is the test's arm, as the spec computes it independently.
        i = layer_test("m:default", u, [(0.0, 0.3), (0.3, 0.8)])
        if i < 0:
            assert res.variant is None and res.label == "" and not tests
        else:
            route = (STEER_A, STEER_B)[i]
            arm = route.variants[assign(route.route_id, u, [v.weight for v in route.variants])]
            assert (res.variant.name, res.variant.model_version) == (arm.name, arm.model_version)
    assert not seen["A"] & seen["B"]
    for name, share in (("A", 0.3), ("B", 0.5)):
        assert stats.binomtest(len(seen[name]), N, share).pvalue > 1e-3


def test_layers_overlap_independently_and_a_label_layer_only_tags() -> None:
    router = _router(STEER_A, STEER_B, LABEL_C)
    table: Counter[tuple[str, str]] = Counter()
    for u in USERS:
        res = router.resolve("m", u, None, None)
        tests = _tests_of(res)
        first = "A" if "A" in tests else "B" if "B" in tests else "-"
        table[first, tests["C"]] += 1
        # The version served is chosen by the steering layer alone.
        if first == "-":
            assert res.variant is None
        else:
            assert res.variant.name == tests[first]
        assert isinstance(res.slot, Fanout) and len(res.slot.slots) == 2
    rows = [[table[a, c] for c in ("blue", "control")] for a in ("A", "B", "-")]
    assert stats.chi2_contingency(rows).pvalue > 1e-3


def test_a_second_steering_layer_or_an_overlap_is_left_out_by_the_sidecar() -> None:
    other = _test("D", "other", 0.0, 1.0, _v("treatment", 0.5, "9"), _v("control", 0.5, "1"))
    overlap = _test("E", "m:default", 0.2, 0.4, _v("x", 1.0, "5"))
    router = _router(STEER_A, other, overlap)
    got = {t for u in USERS[:2000] for t in _tests_of(router.resolve("m", u, None, None))}
    assert got == {"A"}


def test_a_rollout_keeps_its_canary_share_and_tests_run_inside_the_stable_share() -> None:
    rollout = pb.ModelRoute(model_name="m", route_id="dep", kind=pb.ROUTE_KIND_DEPLOYMENT,
                            variants=[_v("canary", 0.2, "7"), _v("stable", 0.8, "1")])
    router = _router(rollout, STEER_A)
    kinds: Counter[str] = Counter()
    for u in USERS:
        res = router.resolve("m", u, None, None)
        tests = _tests_of(res)
        canary = assign("dep", u, [0.2, 0.8]) == 0
        if canary:
            assert res.variant.name == "canary" and not tests
            kinds["canary"] += 1
        elif tests:
            assert res.variant.name == tests["A"] and res.variant.model_version in ("1", "2")
            kinds["test"] += 1
        else:
            assert res.variant.name == "stable"
            kinds["stable"] += 1
    assert stats.binomtest(kinds["canary"], N, 0.2).pvalue > 1e-3
    assert stats.binomtest(kinds["test"], N, 0.8 * 0.3).pvalue > 1e-3


def test_targeting_header_routes_and_overrides() -> None:
    geo = _test("G", "geo", 0.0, 1.0, _v("treatment", 0.5), _v("control", 0.5),
                conditions=("x-country in [DE, FR]", "x-app-version >= 4.2"))
    forced_route = pb.ModelRoute()
    forced_route.CopyFrom(STEER_A)
    forced_route.forced_variants.add(unit_id="qa-outside", variant="treatment")
    forced_route.header_routes.add(header="x-canary", value="always", variant="treatment")
    router = _router(forced_route, geo)
    de = _headers(**{"x-country": "DE", "x-app-version": "4.2.0"})
    old = _headers(**{"x-country": "DE", "x-app-version": "4.1"})
    us = _headers(**{"x-country": "US", "x-app-version": "5"})
    assert all("G" in _tests_of(router.resolve("m", u, de, None)) for u in USERS[:500])
    assert not any("G" in _tests_of(router.resolve("m", u, a, None))
                   for u in USERS[:500] for a in (old, us, None))
    # A QA override puts a unit outside the range into the test.
    assert layer_test("m:default", "qa-outside", [(0.0, 0.3)]) == -1
    assert _tests_of(router.resolve("m", "qa-outside", None, None))["A"] == "treatment"
    # x-neural-variant puts the request into the layer's test with that variant.
    outside = next(u for u in USERS if layer_test("m:default", u, [(0.0, 0.3)]) == -1)
    res = router.resolve("m", outside, None, "treatment")
    assert res.variant.model_version == "2" and _tests_of(res)["A"] == "treatment"
    # A header route wins over everything and puts the request in no test.
    res = router.resolve("m", outside, _headers(**{"x-canary": "always"}), None)
    assert res.variant.model_version == "2" and res.assignments == ()


def test_every_test_counts_its_own_units() -> None:
    agg = Aggregator()
    router = Router(agg)
    router.apply(pb.RoutingTable(version=1, routes=[STEER_A, STEER_B, LABEL_C]))
    expected: Counter[tuple[str, str]] = Counter()
    for u in USERS[:3000]:
        res = router.resolve("m", u, None, None)
        res.slot.record(None, 0.001, u)
        for t, arm in _tests_of(res).items():
            expected[t, arm] += 1
    counted = {(rid, var): s.window.count for (_, rid, var), s in agg.slots.items()
               if rid and s.window.count}
    assert counted == dict(expected)
    assert sum(n for (t, _), n in expected.items() if t == "C") == 3000


def test_every_test_is_passed_upstream_in_one_metadata_entry() -> None:
    router = _router(STEER_A, LABEL_C)
    u = next(u for u in USERS if layer_test("m:default", u, [(0.0, 0.3)]) == 0)
    ((key, value),) = router.resolve("m", u, None, None).assignments
    a = STEER_A.variants[assign("A", u, [0.5, 0.5])].name
    c = LABEL_C.variants[assign("C", u, [0.5, 0.5])].name
    assert (key, value) == (EXPERIMENT_HEADER, f"A={a},C={c}")


def test_buckets_and_arms_follow_the_spec_for_any_unit_id() -> None:
    """Each layer's bucket and each test's arm, for unit ids with non-ASCII characters too
    (the sidecar hashes the UTF-8 id once per request, with each layer's prefix)."""
    router = _router(STEER_A, STEER_B, LABEL_C)
    units = [*USERS[:300], "ü-1", "用户-42", "emoji-🙂", "a:b:c", ""]
    for u in units:
        got = _tests_of(router.resolve("m", u, None, None))
        i = layer_test("m:default", u, [(0.0, 0.3), (0.3, 0.8)])
        want = {"C": LABEL_C.variants[assign("C", u, [0.5, 0.5])].name}
        if i == 0:
            want["A"] = STEER_A.variants[assign("A", u, [0.5, 0.5])].name
        elif i == 1:
            want["B"] = STEER_B.variants[assign("B", u, [0.2, 0.8])].name
        assert got == want, u


def test_header_and_parameter_conditions_in_one_model() -> None:
    """Conditions on headers and on request parameters, in different layers of one model:
    each test sees exactly the requests that meet its own conditions."""
    geo = _test("G", "geo", 0.0, 1.0, _v("a", 0.5), _v("b", 0.5),
                conditions=("x-country in [DE, FR]",))
    tier = _test("T", "tier", 0.0, 1.0, _v("a", 0.5), _v("b", 0.5),
                 conditions=("param.tier = gold", "x-plan != free"))
    only_geo = _router(geo)
    both = _router(geo, tier)

    def request(tier_value: str | None, **h: str) -> RequestAttributes:
        r = oip_pb2.ModelInferRequest(model_name="m")
        if tier_value is not None:
            r.parameters["tier"].string_param = tier_value
        return RequestAttributes.from_grpc(list(h.items()), r.SerializeToString())

    cases = [
        (request("gold", **{"x-country": "DE", "x-plan": "pro"}), {"G", "T"}),
        (request("gold", **{"x-country": "US", "x-plan": "pro"}), {"T"}),
        (request("gold", **{"x-country": "FR", "x-plan": "free"}), {"G"}),
        (request("silver", **{"x-country": "FR", "x-plan": "pro"}), {"G"}),
        (request(None, **{"x-plan": "pro"}), set()),
    ]
    for attrs, tests in cases:
        assert set(_tests_of(both.resolve("m", "user-1", attrs, None))) == tests
        assert set(_tests_of(only_geo.resolve("m", "user-1", attrs, None))) == tests & {"G"}
