"""``protos/neural/mlops/v1/targeting_vectors.json``: targeting conditions as the sidecar
evaluates them, for other implementations to check themselves against (the Node client's
``test/targeting.test.js`` replays the same file; TARGETING.md is the specification).

Here every vector is replayed through the reference ``targeting.py`` (parse, format,
compile) and through the sidecar (the routing table its Router compiles, the request read
by RequestAttributes over HTTP and gRPC), and the file must be what the generator
(``tests/support/targeting_vectors.py``) writes today: ``python
tests/test_targeting_vectors.py --write`` regenerates it.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format

sys.path.insert(0, str(Path(__file__).parent))

from support import targeting_vectors as tv  # noqa: E402

from neural.mlops.v1 import targeting  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
VECTORS = ROOT / "protos" / "neural" / "mlops" / "v1" / "targeting_vectors.json"


@pytest.fixture(scope="module")
def vectors() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(VECTORS.read_text(encoding="utf-8"))
    return data


def _conds(wire: list[dict[str, Any]]) -> list[targeting.Condition]:
    return [json_format.ParseDict(c, targeting.Condition()) for c in wire]


def test_the_file_is_what_the_generator_writes_today() -> None:
    assert VECTORS.read_text(encoding="utf-8") == tv.dump(tv.build()), (
        "targeting_vectors.json is stale: python tests/test_targeting_vectors.py --write")


def test_texts_are_the_canonical_form_of_the_wire_conditions(vectors: dict[str, Any]) -> None:
    for case in vectors["cases"]:
        conds = _conds(case["targeting"])
        assert [targeting.format(c) for c in conds] == case["texts"], case["name"]
        assert [targeting.parse(t) for t in case["texts"]] == conds, case["name"]
        assert list(targeting.canonical(case["written"])) == case["texts"], case["name"]


def test_targeting_py_matches_every_request_as_recorded(vectors: dict[str, Any]) -> None:
    checked = 0
    for case in vectors["cases"]:
        compiled = targeting.compile(_conds(case["targeting"]))
        from_text = targeting.compile_texts(case["texts"])
        for req in case["requests"]:
            for attrs in tv.forms(req):
                assert compiled.matches(attrs.get) is req["matched"], (case["name"], req)
                assert from_text.matches(attrs.get) is req["matched"], (case["name"], req)
                checked += 1
    assert checked > 250


def test_the_sidecar_router_puts_each_request_in_the_test_as_recorded(
    vectors: dict[str, Any],
) -> None:
    for case in vectors["cases"]:
        router = tv.test_router(case["targeting"])
        for req in case["requests"]:
            assert tv.sidecar_matches(router, req) is req["matched"], (case["name"], req)


def test_refused_conditions_name_their_field_and_the_sidecar_rejects_the_route(
    vectors: dict[str, Any],
) -> None:
    for bad in vectors["invalid"]:
        with pytest.raises(targeting.ConditionError) as err:
            targeting.validate(_conds(bad["targeting"]))
        assert (err.value.field, str(err.value)) == (bad["field"], bad["error"])
        router = tv.test_router(bad["targeting"])
        assert router.table is not None and "m" not in router.table.plans  # route left out


def test_routing_requests_resolve_as_recorded(vectors: dict[str, Any]) -> None:
    routing = vectors["routing"]
    router = tv._router(routing["table"]["routes"])
    for req in routing["requests"]:
        ask = {k: v for k, v in req.items() if k not in ("label", "tests", "arms")}
        assert tv._resolved(router, ask) == req


def test_the_vectors_cover_what_the_specification_says(vectors: dict[str, Any]) -> None:
    """Not vacuous: every operator, both outcomes per case, every request form and
    parameter type, each refusal field; the recorded answers agree with the semantic
    version order of the spec."""
    cases = vectors["cases"]
    ops = Counter(c["op"] for case in cases for c in case["targeting"])
    assert set(ops) == {n for n in targeting.targeting_pb2.Operator.keys()
                        if n != "OPERATOR_UNSPECIFIED"}
    for case in cases:
        outcomes = {r["matched"] for r in case["requests"]}
        assert outcomes == {True, False} or len(case["requests"]) < 3, case["name"]
    reqs = [r for case in cases for r in case["requests"]]
    assert {"body" in r for r in reqs} == {True, False}
    kinds = {k for r in reqs for p in r.get("grpc_params", {}).values() for k in p}
    assert kinds == {"string_param", "int64_param", "uint64_param", "double_param",
                     "bool_param"}
    assert sum(r["matched"] for r in reqs) > 80 and sum(not r["matched"] for r in reqs) > 80
    assert {b["field"].split("[0].")[-1] for b in vectors["invalid"]} >= {
        "attribute", "op", "values", "values[0]", "targeting"}
    keys = [targeting.version_key(v) for v in tv.SEMVER_ORDER]
    assert all(a is not None and b is not None and a < b for a, b in pairwise(keys))
    routing = vectors["routing"]["requests"]
    assert {r["label"] for r in routing} >= {"", "stable", "canary", "treatment", "b"}
    untargeted = [r for r in routing if r["model"] == "dep" and r["forced"] is None
                  and r["headers"] in ([], [["x-app-version", "1.9"]])]
    assert untargeted and {r["label"] for r in untargeted} == {"stable"}


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python tests/test_targeting_vectors.py --write")
    VECTORS.write_text(tv.dump(tv.build()), encoding="utf-8")
    print(f"wrote {VECTORS}")
