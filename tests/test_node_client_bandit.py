"""The Node.js client assigns multi-armed bandit routes as the sidecar does.

``protos/neural/mlops/v1/bandit_vectors.json`` holds sequences of routing tables and
requests with the arm the sidecar's router gives each (sticky arms while the weights move,
new units by the current weights, a bounded LRU with counted evictions, overrides, an arm
removed, layer ranges). Here the sidecar's own :class:`Router` replays them; the Node
client's ``test/bandit.test.js`` replays the same file. ``python
tests/test_node_client_bandit.py --write`` regenerates the file from the router.

End to end: a real control plane, a real sidecar and demo model, and the Node client
following the routing table (WatchRoutes); the Node client calls ReweightBandit, follows
the new weights, and gives every unit the arm the sidecar gives it, before and after.
"""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format

sys.path.insert(0, str(Path(__file__).parent))

from support.peers import require_peer  # noqa: E402
from support.tcpproxy import TcpProxy  # noqa: E402

from neural.mlops.ab_testing import ABTestManager  # noqa: E402
from neural.mlops.sidecar.metrics import Aggregator  # noqa: E402
from neural.mlops.sidecar.router import Router  # noqa: E402
from neural.mlops.sidecar.sticky import StickyArms  # noqa: E402
from neural.mlops.v1 import routing_pb2  # noqa: E402
from neural.mlops.v1.assignment import Assigner, assign  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NODE_DIR = ROOT / "clients" / "node"
VECTORS = ROOT / "protos" / "neural" / "mlops" / "v1" / "bandit_vectors.json"
BANDIT = "ASSIGNMENT_STRATEGY_BANDIT"


def _route(route_id: str, model: str, weights: dict[str, float], strategy: str = BANDIT,
           forced: dict[str, str] | None = None,
           layer: tuple[str, float, float] | None = None) -> dict[str, Any]:
    r: dict[str, Any] = {
        "model_name": model, "route_id": route_id, "kind": "ROUTE_KIND_EXPERIMENT",
        "strategy": strategy,
        "variants": [{"name": n, "weight": w, "model_name": model} for n, w in weights.items()],
    }
    if forced:
        r["forced_variants"] = [{"unit_id": u, "variant": v} for u, v in forced.items()]
    if layer:
        r["layer_id"], r["range_start"], r["range_end"] = layer
    return r


def _table(version: int, *routes: dict[str, Any]) -> dict[str, Any]:
    return {"table": {"version": str(version), "routes": list(routes)}}


def _ask(model: str, route_id: str, units: list[str], forced: str | None = None) -> dict[str, Any]:
    return {"assign": {"model": model, "route_id": route_id, "forced": forced, "units": units}}


def _units(prefix: str, n: int) -> list[str]:
    return [f"{prefix}-{i}" for i in range(n)]


TWO = {"treatment": 0.5, "control": 0.5}
TO_CONTROL = {"treatment": 0.1, "control": 0.9}
TO_TREATMENT = {"treatment": 0.9, "control": 0.1}
ODD = ["", ":", "user:42", "ünïcødé", "😀", "x" * 300]


def _cases() -> list[dict[str, Any]]:
    """The scenarios (tables and requests); the arms and counters come from the router."""
    seen, new = _units("u", 200) + ODD, _units("new", 200)
    three = {"a": 1 / 3, "b": 1 / 3, "c": 1 - 2 / 3}
    qa = {"qa-1": "control", "qa-2": "treatment"}
    return [
        {"name": "seen units keep their arm when the weights move; new units follow them "
                 "(a HASH route beside it moves its units)",
         "sticky_units": 100_000, "steps": [
             _table(1, _route("bandit-1", "shop", TWO),
                    _route("hash-1", "other", TWO, "ASSIGNMENT_STRATEGY_HASH")),
             _ask("shop", "bandit-1", seen), _ask("other", "hash-1", seen),
             _table(2, _route("bandit-1", "shop", TO_TREATMENT),
                    _route("hash-1", "other", TO_TREATMENT, "ASSIGNMENT_STRATEGY_HASH")),
             _ask("shop", "bandit-1", seen + new), _ask("other", "hash-1", seen),
             {"counters": None}]},
        {"name": "a bounded LRU forgets the least recently seen unit (evictions counted); "
                 "a forgotten unit is hashed by the weights of that time",
         "sticky_units": 5, "steps": [
             _table(1, _route("bandit-1", "shop", TWO)),
             _ask("shop", "bandit-1", _units("a", 8)), {"counters": None},
             _table(2, _route("bandit-1", "shop", TO_CONTROL)),
             _ask("shop", "bandit-1", _units("a", 8)[3:]),
             _ask("shop", "bandit-1", ["a-4"]),
             _ask("shop", "bandit-1", _units("a", 8)[:3]), {"counters": None},
             _ask("shop", "bandit-1", ["a-4", "a-3"]), {"counters": None}]},
        {"name": "a unit stays on an arm whose weight fell to 0; an arm removed from the "
                 "route sends its units to the hash by the current weights",
         "sticky_units": 100_000, "steps": [
             _table(1, _route("bandit-3", "shop", three)),
             _ask("shop", "bandit-3", _units("u", 90)),
             _table(2, _route("bandit-3", "shop", {"a": 0.0, "b": 0.5, "c": 0.5})),
             _ask("shop", "bandit-3", _units("u", 90) + _units("new", 30)),
             _table(3, _route("bandit-3", "shop", {"b": 0.5, "c": 0.5})),
             _ask("shop", "bandit-3", _units("u", 90)), {"counters": None}]},
        {"name": "QA overrides and the caller's forced variant win and are not remembered; "
                 "a forced name that is no variant of the route is ignored",
         "sticky_units": 100_000, "steps": [
             _table(1, _route("bandit-1", "shop", TWO, forced=qa)),
             _ask("shop", "bandit-1", _units("u", 40) + list(qa)),
             _ask("shop", "bandit-1", _units("u", 40), forced="treatment"),
             _ask("shop", "bandit-1", _units("u", 40), forced="no-such-arm"),
             _table(2, _route("bandit-1", "shop", TO_CONTROL, forced=qa)),
             _ask("shop", "bandit-1", _units("u", 40) + list(qa)), {"counters": None}]},
        {"name": "--sticky-units 0: nothing is remembered, every request is hashed by the "
                 "current weights",
         "sticky_units": 0, "steps": [
             _table(1, _route("bandit-1", "shop", TWO)),
             _ask("shop", "bandit-1", _units("u", 60)),
             _table(2, _route("bandit-1", "shop", TO_CONTROL)),
             _ask("shop", "bandit-1", _units("u", 60)), {"counters": None}]},
        {"name": "one memory per process for every bandit route, keyed by (route, unit)",
         "sticky_units": 30, "steps": [
             _table(1, _route("bandit-a", "m1", TWO), _route("bandit-b", "m2", TWO)),
             _ask("m1", "bandit-a", _units("u", 15)), _ask("m2", "bandit-b", _units("u", 15)),
             {"counters": None},
             _ask("m2", "bandit-b", ["u-15"]),
             _table(2, _route("bandit-a", "m1", TO_CONTROL),
                    _route("bandit-b", "m2", TO_TREATMENT)),
             _ask("m1", "bandit-a", ["u-0", "u-14"]), _ask("m2", "bandit-b", ["u-0", "u-15"]),
             {"counters": None}]},
        {"name": "a bandit test on part of its layer: units outside its range get no arm "
                 "(null) and are not remembered, unless the caller forces one of its arms",
         "sticky_units": 100_000, "steps": [
             _table(1, _route("bandit-1", "shop", TWO, layer=("shop:default", 0.25, 0.75))),
             _ask("shop", "bandit-1", _units("u", 80)),
             _ask("shop", "bandit-1", _units("v", 10), forced="control"),
             _table(2, _route("bandit-1", "shop", TO_TREATMENT,
                              layer=("shop:default", 0.25, 0.75))),
             _ask("shop", "bandit-1", _units("u", 80) + _units("new", 80)),
             {"counters": None}]},
    ]


def _replay(case: dict[str, Any]) -> list[dict[str, Any]]:
    """The case's steps with the sidecar router's answers filled in."""
    router = Router(Aggregator(), sticky=StickyArms(case["sticky_units"]))
    out: list[dict[str, Any]] = []
    for step in case["steps"]:
        if "table" in step:
            table = json_format.ParseDict(step["table"], routing_pb2.RoutingTable())
            router.apply(table)
            assert router.table is not None and not router.table.refused
            out.append(step)
        elif "assign" in step:
            q = step["assign"]
            arms = []
            for unit in q["units"]:
                res = router.resolve(q["model"], unit, None, q["forced"])
                assert res is not None
                arms.append(res.label or None)
            out.append({"assign": {**q, "arms": arms}})
        else:
            s = router.sticky
            out.append({"counters": {"remembered": len(s), "evictions": s.evictions,
                                     "hits": s.hits}})
    return out


def build_vectors() -> dict[str, Any]:
    return {
        "description": "Bandit routes (ASSIGNMENT_STRATEGY_BANDIT) as the sidecar assigns "
                       "them; see ASSIGNMENT.md, 'Multi-armed bandits'. Each case starts a "
                       "fresh process: a sticky memory of sticky_units entries, then its "
                       "steps in order: apply a routing table (proto JSON), assign units "
                       "on a route (model, route_id; forced = the caller's x-neural-variant"
                       "; arms[i] for units[i], null: not in the test), or compare the "
                       "memory's counters.",
        "cases": [{"name": c["name"], "sticky_units": c["sticky_units"], "steps": _replay(c)}
                  for c in _cases()],
    }


def _dump(vectors: dict[str, Any]) -> str:
    """One line per step: the file stays readable and its diffs small."""
    cases = []
    for c in vectors["cases"]:
        steps = ",\n    ".join(json.dumps(s, ensure_ascii=False) for s in c["steps"])
        head = json.dumps({k: v for k, v in c.items() if k != "steps"}, ensure_ascii=False)
        cases.append(f'  {head[:-1]}, "steps": [\n    {steps}]}}')
    body = ",\n".join(cases)
    return (f'{{"description": {json.dumps(vectors["description"])},\n "cases": [\n'
            f"{body}]}}\n")


def test_the_vectors_file_is_what_the_sidecar_router_answers() -> None:
    assert VECTORS.read_text(encoding="utf-8") == _dump(build_vectors()), (
        "regenerate with: python tests/test_node_client_bandit.py --write")


def _arms(case: dict[str, Any]) -> list[list[str | None]]:
    return [s["assign"]["arms"] for s in case["steps"] if "assign" in s]


def _counters(case: dict[str, Any]) -> list[dict[str, int]]:
    return [s["counters"] for s in case["steps"] if "counters" in s]


def test_the_vectors_show_what_they_claim() -> None:
    """The file is not vacuous: what each case's name says happens, checked against the
    assignment spec (assign = the hash by given weights) and the LRU's bookkeeping."""
    first, lru, removed, overrides, off, shared, layer = build_vectors()["cases"]

    def hashed(route: str, units: list[str], weights: list[float],
               names: tuple[str, ...] = ("treatment", "control")) -> list[str]:
        return [names[assign(route, u, weights)] for u in units]

    seen, new = _units("u", 200) + ODD, _units("new", 200)
    b1, h1, b2, h2 = _arms(first)
    assert b1 == hashed("bandit-1", seen, [0.5, 0.5])
    assert b2 == b1 + hashed("bandit-1", new, [0.9, 0.1])  # kept; new units by new weights
    assert b2[:len(seen)] != hashed("bandit-1", seen, [0.9, 0.1])  # the hash alone moves some
    assert h2 == hashed("hash-1", seen, [0.9, 0.1]) and sum(
        a != b for a, b in zip(h1, h2, strict=True)) > 50
    assert _counters(first) == [{"remembered": 406, "evictions": 0, "hits": 206}]

    a = _units("a", 8)
    l1, l2, l3, l4, l5 = _arms(lru)
    assert l2 == l1[3:] and l3 == [l1[4]]  # remembered units keep their arm
    assert l4 == hashed("bandit-1", a[:3], [0.1, 0.9])  # forgotten: today's weights
    assert l5 == [l1[4], hashed("bandit-1", ["a-3"], [0.1, 0.9])[0]]
    assert _counters(lru) == [{"remembered": 5, "evictions": 3, "hits": 0},
                              {"remembered": 5, "evictions": 6, "hits": 6},
                              {"remembered": 5, "evictions": 7, "hits": 7}]

    r1, r2, r3 = _arms(removed)
    assert r2[:90] == r1 and "a" in r1 and "a" not in r2[90:]  # weight 0: kept, never new
    assert "a" not in r3 and [x for x, y in zip(r1, r3, strict=True) if x != y] == ["a"] * sum(
        x == "a" for x in r1)

    o1, o2, o3, o4 = _arms(overrides)
    assert o1[-2:] == ["control", "treatment"] == o4[-2:]  # QA overrides, not remembered
    assert set(o2) == {"treatment"} and o3 == o1[:40] and o4[:40] == o1[:40]
    assert _counters(overrides) == [{"remembered": 40, "evictions": 0, "hits": 80}]

    f1, f2 = _arms(off)
    assert f2 == hashed("bandit-1", _units("u", 60), [0.1, 0.9]) != f1
    assert _counters(off) == [{"remembered": 0, "evictions": 0, "hits": 0}]

    s1, s2, _, s4, s5 = _arms(shared)
    assert s4 == [hashed("bandit-a", ["u-0"], [0.1, 0.9])[0], s1[14]]  # u-0 on a was evicted
    assert s5[0] == s2[0]
    assert _counters(shared) == [{"remembered": 30, "evictions": 0, "hits": 0},
                                 {"remembered": 30, "evictions": 2, "hits": 3}]

    y1, y2, y3 = _arms(layer)
    assert None in y1 and {"treatment", "control"} <= set(y1)
    assert y2 == ["control"] * 10 and y3[:80] == y1
    assert _counters(layer)[0]["remembered"] == sum(x is not None for x in y1 + y3[80:])


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python tests/test_node_client_bandit.py --write")
    VECTORS.write_text(_dump(build_vectors()), encoding="utf-8")
    print(f"wrote {VECTORS}")


# -- end to end: control plane, sidecar and the Node client ---------------------------------

CONVERSION = {"treatment": 0.35, "control": 0.05}


class _NodeAssigner:
    """examples/bandit_assign.js: one JSON request per line in, one answer per line out."""

    def __init__(self, node: str, url: str) -> None:
        self.proc = subprocess.Popen([node, "examples/bandit_assign.js", url], cwd=NODE_DIR,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, encoding="utf-8")
        self.ready = self._read()

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(timeout=30)
            assert self.proc.stderr is not None
            raise AssertionError(f"node exited {self.proc.returncode}: {self.proc.stderr.read()}")
        out: dict[str, Any] = json.loads(line)
        return out

    def __call__(self, **request: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        answer = self._read()
        assert ("error" in answer) == bool(request.get("expect_error")), answer
        return answer

    def close(self) -> int:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        return self.proc.wait(timeout=30)


def _wait(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise TimeoutError(what)


@pytest.fixture
def node() -> str:
    node_bin = shutil.which("node")
    installed = (NODE_DIR / "node_modules" / "@grpc" / "grpc-js").is_dir()
    require_peer(bool(node_bin) and installed, "Node.js and clients/node/node_modules")
    assert node_bin
    return node_bin


@pytest.mark.peers
def test_node_follows_a_reweighting_and_assigns_as_the_sidecar(node: str, server: Any) -> None:
    from peers.procs import start_demo, start_sidecar
    from test_sidecar_routing import _call_many

    def through_sidecar(units: list[str]) -> list[str]:
        return [arm for _, arm in asyncio.run(_call_many(sidecar.address, units, model="shop"))]

    model = start_demo("shop")
    sidecar = start_sidecar(model.address, server.address)
    js: _NodeAssigner | None = None
    rng = random.Random(7)
    try:
        js = _NodeAssigner(node, server.url)
        request = {"name": "bandit followed from node", "control_variant": "shop:1",
                   "treatment_variant": "shop:2", "created_by": "ml@example.com",
                   "strategy": "multi_armed_bandits",  # a typo: refused before sending
                   "bandit": {"interval_seconds": 3600, "burn_in_units": 60,
                              "min_share": 0.1, "seed": 3}}
        typo = js(op="create", request=request, expect_error=True)
        request["strategy"] = "multi_armed_bandit"  # the Python API's name
        test = js(op="create", request=request)
        tid = test["test_id"]
        route = js(op="start", test_id=tid)
        with ABTestManager(server.url) as m:
            _wait(lambda: sidecar.health()["table_version"] >= route["version"], 20,
                  "sidecar routed")
            early = [f"early-{i}" for i in range(300)]
            before = js(op="assign", route_id=tid, units=early)
            assert before["weights"] == {"treatment": 0.5, "control": 0.5}
            assert through_sidecar(early) == before["arms"]
            # Conversions credited to the arm each unit got, recorded by the Node client.
            js(op="record", test_id=tid, records=[
                {"variant": arm, "unit_id": u, "success": rng.random() < CONVERSION[arm]}
                for u, arm in zip(early, before["arms"], strict=True)])
            # A forced reweighting (the interval is an hour away): the table changes and
            # the Node client's watch applies it.
            reweighted = js(op="reweight", test_id=tid)
            assert reweighted["version"] > route["version"]
            _wait(lambda: sidecar.health()["table_version"] >= reweighted["version"], 20,
                  "sidecar has the new split")
            late = [f"late-{i}" for i in range(300)]
            again = js(op="assign", route_id=tid, units=early + late)
            from_sidecar = through_sidecar(early + late)
            hashed_now = js(op="get_variant", test_id=tid, units=early + late)["variants"]
            stats = js(op="stats")
            weights = m.get_test(tid).weights
            created = [t.test_id for t in m.list_tests()]
            health = sidecar.health()
    finally:
        code = js.close() if js is not None else 0
        sidecar.stop()
        model.stop()
    assert code == 0
    assert typo["name"] == "UnknownStrategyError" and typo["field"] == "strategy"
    assert created == [tid]  # the typo created nothing
    assert 'strategy "multi_armed_bandits" is not a TrafficSplitStrategy' in typo["error"]
    assert test["strategy"] == "TRAFFIC_SPLIT_STRATEGY_MULTI_ARMED_BANDIT"
    assert route["weights"] == {"treatment": 0.5, "control": 0.5}
    assert reweighted["weights"] == weights == {"treatment": 0.9, "control": 0.1}
    assert again["weights"] == weights and again["version"] == reweighted["version"]
    assert again["arms"][:300] == before["arms"]  # every seen unit kept its arm
    assert again["arms"] == from_sidecar  # as the sidecar: kept arms and new units
    # New units: the hash by the new weights, as the control plane's GetVariant answers;
    # units it counted it answers with their arm (its memory is the store's unit rows).
    assert again["arms"][300:] == hashed_now[300:]
    assert hashed_now[:300] == before["arms"]
    assert sum(a == "treatment" for a in again["arms"][300:]) > 240  # ~0.9 of 300
    # The memory mattered: by today's weights some seen units would have switched.
    by_weights = Assigner(tid, list(weights.items()))
    assert sum(by_weights.choose(u) != b for u, b in zip(early, before["arms"], strict=True)) > 30
    assert stats["remembered"] == health["sticky_units"] == 600
    assert stats["evictions"] == health["sticky_evictions"] == 0


@pytest.mark.peers
def test_node_keeps_following_the_bandit_through_a_network_outage(node: str, server: Any) -> None:
    """The route watch is cut while the bandit reweights; the Node client reconnects, gets
    the current table and its units keep their arms (the memory outlives the stream)."""
    host, port = server.address.rsplit(":", 1)
    proxy = TcpProxy(host, int(port))
    js: _NodeAssigner | None = None
    rng = random.Random(11)
    try:
        js = _NodeAssigner(node, f"grpc://127.0.0.1:{proxy.port}")
        with ABTestManager(server.url) as m:
            test = m.create_test(
                name="bandit through an outage", control_variant="shop:1",
                treatment_variant="shop:2", strategy="multi_armed_bandit",
                bandit={"interval_seconds": 3600, "burn_in_units": 60, "min_share": 0.1,
                        "seed": 5})
            tid = test.test_id
            m.start_test(tid)
            routed = js(op="wait", route_id=tid)
            units = [f"user-{i}" for i in range(300)]
            before = js(op="assign", route_id=tid, units=units)["arms"]
            proxy.cut()  # the watch stream is reset; reconnects are refused
            m.record_requests(tid, [
                {"variant": arm, "user_id": u, "success": rng.random() < CONVERSION[arm]}
                for u, arm in zip(units, before, strict=True)])
            weights = m.reweight_bandit(tid).weights
            assert weights == {"treatment": 0.9, "control": 0.1}
            proxy.restore()
            after = js(op="wait", route_id=tid, weights=weights)
            again = js(op="assign", route_id=tid, units=units)
            hashed_now = [m.get_variant(tid, u) for u in units]
    finally:
        code = js.close() if js is not None else 0
        proxy.close()
    assert code == 0
    assert routed["weights"] == {"treatment": 0.5, "control": 0.5}
    assert after["reconnects"] >= 1 and after["version"] > routed["version"]
    assert again["weights"] == weights
    assert again["arms"] == before  # remembered across the reconnect
    assert hashed_now == before  # the control plane counted them: it remembers them too
    by_weights = Assigner(tid, list(weights.items()))
    assert sum(by_weights.choose(u) != b for u, b in zip(units, before, strict=True)) > 30
