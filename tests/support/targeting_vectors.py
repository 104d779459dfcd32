"""The cases of ``protos/neural/mlops/v1/targeting_vectors.json`` and their generator.

Every expected answer is computed here by the sidecar's own code: ``matched`` by the
routing table the sidecar compiles (:class:`~neural.mlops.sidecar.router.Router`) for a
test carrying the conditions, the request's attributes read by
:class:`~neural.mlops.sidecar.attributes.RequestAttributes` from the HTTP form (headers and
the JSON body's bytes) or the gRPC form (metadata and a serialized ModelInferRequest).
``python tests/test_targeting_vectors.py --write`` rewrites the file.
"""

from __future__ import annotations

import json
from typing import Any

from google.protobuf import json_format
from multidict import CIMultiDict

from neural.mlops.sidecar.attributes import RequestAttributes
from neural.mlops.sidecar.layers import EXPERIMENT_HEADER, Plan
from neural.mlops.sidecar.metrics import Aggregator
from neural.mlops.sidecar.router import Router
from neural.mlops.v1 import oip_pb2, routing_pb2, targeting

Req = dict[str, Any]

# --- requests ------------------------------------------------------------------------------


def h(*pairs: str) -> list[list[str]]:  # h("x-a", "1", "X-B", "2"): header pairs in order
    return [[pairs[i], pairs[i + 1]] for i in range(0, len(pairs), 2)]


def body(params: str | None = None, raw: str | None = None) -> dict[str, str]:
    """An OIP REST body whose ``parameters`` is the JSON text ``params`` (or ``raw``)."""
    if raw is not None:
        return {"body": raw}
    inputs = '"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1.5]}]'
    return {"body": f'{{{inputs}, "parameters": {params}}}' if params else f"{{{inputs}}}"}


def grpc(**params: dict[str, Any]) -> dict[str, Any]:
    """gRPC parameters as InferParameter JSON: grpc(tier={"string_param": "gold"})."""
    return {"grpc_params": params}


def rq(headers: list[list[str]] | None = None, params: dict[str, Any] | None = None) -> Req:
    return {"headers": headers or [], **(params or {})}


VERSIONS_GTE_4_2 = [
    ("4.2", True), ("4.2.0", True), ("v4.2.0", True), ("V4.10", True), ("4.1.9", False),
    ("4.2.0-rc.1", False), ("4.2.0+build.5", True), ("4.2.1-alpha", True), ("4", False),
    ("5", True), ("10.0.0", True), ("99999999999999999999.0", True), ("garbage", False),
    ("4.2.x", False), ("04.2", False), ("4.2.0.1", False), ("", False), (" 4.2", False),
    ("4.2-", False), ("4.2.0+", False), ("4.2.0-rc..1", False), ("4..2", False),
    ("v", False), ("vv4.2", False), ("4.2.0-01", False), ("٤.٢", False),
]
SEMVER_ORDER = ["1.0.0-0", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta",
                "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1-0", "1.0.1"]


def _version_requests(pairs: list[tuple[str, bool]]) -> list[Req]:
    return [rq(h("x-app-version", v)) for v, _ in pairs] + [rq()]


def _params(*texts: str) -> list[Req]:
    return [rq(params=body(t)) for t in texts]


def _cases() -> list[dict[str, Any]]:  # noqa: PLR0915 - one table of cases
    """(name, condition texts as written, requests); ``matched`` comes from the router."""
    c: list[dict[str, Any]] = []

    def case(name: str, written: list[str], requests: list[Req]) -> None:
        c.append({"name": name, "written": written, "requests": requests})

    case("= compares the whole value exactly (values are case-sensitive); header names "
         "match in any case; a header sent twice reads as its first value",
         ["x-plan=enterprise"],
         [rq(h("x-plan", "enterprise")), rq(h("X-Plan", "enterprise")),
          rq(h("x-plan", "Enterprise")), rq(h("x-plan", "enterprise ")), rq(h("x-plan", "")),
          rq(), rq(h("x-plan", "free", "x-plan", "enterprise")),
          rq(h("X-PLAN", "enterprise", "x-plan", "free")), rq(h("x-other", "enterprise"))])
    case("!= needs the attribute present: absent is not 'another value'",
         ["x-plan != free"],
         [rq(h("x-plan", "enterprise")), rq(h("x-plan", "free")), rq(h("x-plan", "FREE")),
          rq(h("x-plan", "")), rq()])
    case("in: any of the values, exactly", ["x-country in [DE,FR]"],
         [rq(h("x-country", "DE")), rq(h("x-country", "FR")), rq(h("x-country", "de")),
          rq(h("x-country", "US")), rq(h("x-country", "DE, FR")), rq(h("X-Country", "FR")),
          rq()])
    case("not in: present and none of the values", ["x-country not in [DE, FR]"],
         [rq(h("x-country", "US")), rq(h("x-country", "DE")), rq(h("x-country", "")), rq()])
    case("exists: present, whatever the value (also empty)", ["x-beta exists"],
         [rq(h("x-beta", "")), rq(h("x-beta", "0")), rq(h("X-BETA", "false")), rq()])
    case("not exists: absent only", ["x-beta not exists"],
         [rq(), rq(h("x-beta", "")), rq(h("x-betas", "1"))])
    case("quoted values: blanks, quotes, backslashes, non-ASCII; one value that is empty",
         ['x-city in ["New York", "São Paulo", "a\\"b", "back\\\\slash", ""]'],
         [rq(h("x-city", v)) for v in ("New York", "São Paulo", 'a"b', "back\\slash", "",
                                       "new york", "Sao Paulo", "a\\\"b")] + [rq()])
    case("= with an empty value matches an empty header, not an absent one", ['x-tag = ""'],
         [rq(h("x-tag", "")), rq(h("x-tag", " ")), rq()])
    case("header names with digits, '_' and '.'", ["x_user.tier2 = a"],
         [rq(h("X_User.Tier2", "a")), rq(h("x-user-tier2", "a"))])
    case(">= on semantic versions: missing parts are 0, a leading v, build metadata "
         "ignored, a pre-release before its release, numbers compared as numbers; a value "
         "that is not a version (garbage, leading zeros, 4 parts, empty parts, blanks, "
         "non-ASCII digits) never matches", ["x-app-version >= 4.2"],
         _version_requests(VERSIONS_GTE_4_2))
    for op, bound in ((">", "1.0.0-alpha"), ("<", "1.0.0-beta.11"), (">=", "1.0.0-beta.2"),
                      ("<=", "1.0.0-rc.1")):
        case(f"{op} {bound}: semver 2.0 precedence (numeric identifiers numerically and below "
             "alphanumeric ones, a longer list wins when the shared ones are equal)",
             [f"x-app-version {op} {bound}"],
             [rq(h("x-app-version", v)) for v in SEMVER_ORDER + ["1.0.0-alpha.01", "1.0.0-beta.a"]])
    case("<= 2: fewer components in the bound; build metadata in a request",
         ["x-app-version <= 2"],
         _version_requests([("2.0.0", True), ("2.0.0+meta", True), ("2.0.1", False),
                            ("2.0.0-rc", True), ("1.99", True), ("v2", True), ("2.0.0.0", False)]))
    case("a bound with build metadata and a pre-release (the build is ignored)",
         ["x-app-version > 1.2.3-rc.1+build.7"],
         _version_requests([("1.2.3", True), ("1.2.3-rc.1", False), ("1.2.3-rc.1+other", False),
                            ("1.2.3-rc.2", True), ("1.2.3-rc", False)]))
    case("param.*: a string parameter, from the REST body or gRPC; a body that is not "
         "JSON, has no parameters object or a null value has none; a key given twice "
         "reads as its last value",
         ["param.tier = gold"],
         _params('{"tier": "gold"}', '{"tier": "Gold"}', '{"tier": null}', '{"Tier": "gold"}',
                 '{"tier": "free", "tier": "gold"}', '{"tier": "gold", "tier": "free"}',
                 '["tier", "gold"]', '{"tier": ["gold"]}', '{"tier": {"v": "gold"}}')
         + [rq(params=body()), rq(params=body(raw='{"parameters": {"tier": "gold"}} x')),
            rq(params=body(raw='{"parameters": {"tier": "gold"},}')),
            rq(params=body(raw='\ufeff{"parameters": {"tier": "gold"}}')),
            rq(params=body(raw='{"parameters": {"tier": "gold\tx"}}')),
            rq(params=body(raw='{"parameters": {"tier": "g\\u006fld"}}')),
            rq(params=body(raw='[1, 2]')), rq(params=body(raw='')),
            rq(h("tier", "gold")), rq(h("param.tier", "gold")),
            rq(params=grpc(tier={"string_param": "gold"})),
            rq(params=grpc(tier={"string_param": "Gold"})),
            rq(params=grpc(other={"string_param": "gold"})), rq(params=grpc())])
    case("param.*: an integer reads in decimal; a double as Python's repr (10.0, 1e+16); "
         "a string as is; gRPC int64/uint64 as integers, double as doubles",
         ["param.limit = 10"],
         _params('{"limit": 10}', '{"limit": 10.0}', '{"limit": "10"}', '{"limit": 1e1}',
                 '{"limit": -0}', '{"limit": 010}')
         + [rq(params=grpc(limit={"int64_param": "10"})),
            rq(params=grpc(limit={"uint64_param": "10"})),
            rq(params=grpc(limit={"double_param": 10.0}))])
    case("param.*: a double's text", ["param.score in [1.0, -0.0, 0.0001, 1e-05, 1e+16, "
                                      "1000000000000000.0, 0.30000000000000004, 1.5e+300]"],
         _params('{"score": 1.0}', '{"score": 1}', '{"score": 1.00}', '{"score": 1e0}',
                 '{"score": -0.0}', '{"score": 0.0}', '{"score": 0.0001}', '{"score": 0.00001}',
                 '{"score": 1e16}', '{"score": 10000000000000000}', '{"score": 1E15}',
                 '{"score": 0.30000000000000004}', '{"score": 15e299}')
         + [rq(params=grpc(score={"double_param": 1.0})),
            rq(params=grpc(score={"double_param": 1e-5})),
            rq(params=grpc(score={"int64_param": "1"}))])
    case("param.*: big integers stay exact; NaN, Infinity and overflowing doubles "
         "(Python's json reads them) as nan / inf / -inf",
         ["param.n in [123456789012345678901234567890, -9223372036854775808, nan, inf, -inf]"],
         _params('{"n": 123456789012345678901234567890}', '{"n": 1.2345678901234568e+29}',
                 '{"n": NaN}', '{"n": Infinity}', '{"n": -Infinity}', '{"n": 1e400}',
                 '{"n": -1e400}', '{"n": nan}')
         + [rq(params=grpc(n={"int64_param": "-9223372036854775808"})),
            rq(params=grpc(n={"uint64_param": "18446744073709551615"}))])
    case("param.*: booleans read true / false", ["param.flag = true"],
         _params('{"flag": true}', '{"flag": "true"}', '{"flag": 1}', '{"flag": false}',
                 '{"flag": "True"}')
         + [rq(params=grpc(flag={"bool_param": True})),
            rq(params=grpc(flag={"bool_param": False}))])
    case("param.* exists: any value that reads as text (also empty, false, 0); null, "
         "lists and objects are no value; an integer of more than 4300 digits makes the "
         "body unreadable (no parameters at all)", ["param.x exists"],
         _params('{"x": ""}', '{"x": false}', '{"x": 0}', '{"x": null}', '{"x": []}',
                 '{"x": {}}', '{}', '{"x": "", "n": %s}' % ("9" * 4300),
                 '{"x": "", "n": -%s}' % ("9" * 4301)) + [rq(params=body()), rq()])
    case("param.* not exists", ["param.x not exists"],
         _params('{"x": null}', '{"x": 0}', '{}', '{"y": 1}')
         + [rq(params=body()), rq(), rq(h("x", "1"))])
    case("param.* names are case-sensitive", ["param.Tier = gold"],
         _params('{"Tier": "gold"}', '{"tier": "gold"}'))
    case("a version condition on a parameter (numbers read as text first)",
         ["param.v >= 2.0"],
         _params('{"v": "2.1"}', '{"v": 2.1}', '{"v": 2}', '{"v": 1.5}', '{"v": true}',
                 '{"v": "v3"}', '{"v": 2e0}'))
    case("conditions are ANDed (headers and parameters together)",
         ["x-country in [DE, AT]", "x-app-version >= 4.2", "param.tier != free"],
         [rq(h(*country, *version), params=body(p))
          for country in (("x-country", "DE"), ("x-country", "US"))
          for version in (("x-app-version", "4.3"), ("x-app-version", "4.1"))
          for p in ('{"tier": "gold"}', '{"tier": "free"}')]
         + [rq(h("x-country", "AT", "x-app-version", "4.2"), params=body()),
            rq(h("x-country", "AT", "x-app-version", "4.2"),
               params=grpc(tier={"string_param": "gold"}))])
    return c


INVALID = [
    [{"attribute": "X-Country", "op": "OPERATOR_EQ", "values": ["DE"]}],
    [{"attribute": "x-trace-bin", "op": "OPERATOR_EXISTS"}],
    [{"attribute": "x country", "op": "OPERATOR_EXISTS"}],
    [{"attribute": "param.", "op": "OPERATOR_EXISTS"}],
    [{"attribute": "param.a/b", "op": "OPERATOR_EXISTS"}],
    [{"attribute": "", "op": "OPERATOR_EXISTS"}],
    [{"attribute": "x-" + "a" * 127, "op": "OPERATOR_EXISTS"}],
    [{"attribute": "x-plan", "op": "OPERATOR_UNSPECIFIED", "values": ["a"]}],
    [{"attribute": "x-plan", "op": "OPERATOR_EQ", "values": ["a", "b"]}],
    [{"attribute": "x-plan", "op": "OPERATOR_NEQ"}],
    [{"attribute": "x-plan", "op": "OPERATOR_IN"}],
    [{"attribute": "x-plan", "op": "OPERATOR_EXISTS", "values": ["a"]}],
    [{"attribute": "x-plan", "op": "OPERATOR_IN", "values": [str(i) for i in range(101)]}],
    [{"attribute": "x-plan", "op": "OPERATOR_EQ", "values": ["é" * 257]}],
    [{"attribute": "x-v", "op": "OPERATOR_VERSION_GTE", "values": ["4.x"]}],
    [{"attribute": "x-v", "op": "OPERATOR_VERSION_LT", "values": ["1.0.0-01"]}],
    [{"attribute": "x-a", "op": "OPERATOR_EXISTS"}] * 21,
    [{"attribute": "x-a", "op": "OPERATOR_EXISTS"},
     {"attribute": "x-b", "op": "OPERATOR_IN", "values": ["ok", "ü" * 257]}],
]


# --- routing: a model's routes resolved with targeting --------------------------------------

def _variants(model: str, arms: dict[str, tuple[float, str]]) -> list[dict[str, Any]]:
    return [{"name": n, "weight": w, "model_name": model, "model_version": ver}
            for n, (w, ver) in arms.items()]


def _cond(text: str) -> dict[str, Any]:
    return json_format.MessageToDict(targeting.parse(text), preserving_proto_field_name=True)


def _routing_table() -> dict[str, Any]:
    shop = {"model_name": "shop", "route_id": "t-shop", "kind": "ROUTE_KIND_EXPERIMENT",
            "variants": _variants("shop", {"treatment": (0.5, "2"), "control": (0.5, "1")}),
            "targeting": [_cond("x-country in [DE, AT]")]}
    dep = {"model_name": "dep", "route_id": "d-dep", "kind": "ROUTE_KIND_DEPLOYMENT",
           "variants": _variants("dep", {"canary": (0.5, "2"), "stable": (0.5, "1")}),
           "targeting": [_cond("x-app-version >= 2.0")]}
    lay_d = {"model_name": "lay", "route_id": "d-lay", "kind": "ROUTE_KIND_DEPLOYMENT",
             "variants": _variants("lay", {"canary": (0.2, "2"), "stable": (0.8, "1")}),
             "header_routes": [{"header": "X-Canary", "value": "yes", "variant": "canary"}]}
    gold = {"model_name": "lay", "route_id": "t-gold", "kind": "ROUTE_KIND_EXPERIMENT",
            "layer_id": "lay:default", "range_start": 0.0, "range_end": 0.5,
            "variants": _variants("lay", {"b": (0.5, "3"), "a": (0.5, "1")}),
            "targeting": [_cond("param.tier = gold")],
            "forced_variants": [{"unit_id": "qa-1", "variant": "b"}]}
    other = {"model_name": "lay", "route_id": "t-other", "kind": "ROUTE_KIND_EXPERIMENT",
             "layer_id": "lay:default", "range_start": 0.5, "range_end": 1.0,
             "variants": _variants("lay", {"b": (0.5, "4"), "a": (0.5, "1")})}
    ui = {"model_name": "lay", "route_id": "t-ui", "kind": "ROUTE_KIND_EXPERIMENT",
          "layer_id": "ui", "variants": [{"name": "blue", "weight": 0.5},
                                         {"name": "green", "weight": 0.5}],
          "targeting": [_cond("x-beta not exists"), _cond("x-app-version < 3")]}
    return {"version": "1", "routes": [shop, dep, lay_d, gold, other, ui]}


def _routing_requests() -> list[Req]:
    out: list[Req] = []
    units = [f"u-{i}" for i in range(24)]
    for i, u in enumerate(units):
        country = ("DE", "US", "AT", "de")[i % 4]
        out.append({"model": "shop", "unit": u, "forced": None,
                    **rq(h("x-country", country) if i % 5 else [])})
        version = ("2.0", "1.9", "2.0.0-rc.1", "v3")[i % 4]
        out.append({"model": "dep", "unit": u, "forced": "canary" if i % 7 == 0 else None,
                    **rq(h("x-app-version", version) if i % 6 else [])})
        tier = body('{"tier": "gold"}') if i % 3 == 0 else body('{"tier": "free"}')
        hdrs = h("x-app-version", "2.5") if i % 4 else h("x-beta", "1", "x-app-version", "2")
        out.append({"model": "lay", "unit": u, "forced": None, **rq(hdrs, tier)})
    for u, forced, hdrs in (("qa-1", None, []), ("qa-1", "a", []), ("u-1", "b", []),
                            ("u-2", None, h("x-canary", "yes")), ("u-3", None, h("X-Canary", "no")),
                            ("u-4", "blue", h("x-app-version", "9"))):
        out.append({"model": "lay", "unit": u, "forced": forced, **rq(hdrs, body('{}'))})
    return out


# --- replay through the sidecar -------------------------------------------------------------

def _http(req: Req) -> RequestAttributes:
    headers: CIMultiDict[str] = CIMultiDict((k, v) for k, v in req["headers"])
    raw = req.get("body")
    return RequestAttributes.from_http(headers, raw.encode() if raw is not None else None)


def _grpc(req: Req) -> RequestAttributes:
    msg = json_format.ParseDict({"model_name": "m", "parameters": req.get("grpc_params", {})},
                                oip_pb2.ModelInferRequest())
    md = [(k.lower(), v) for k, v in req["headers"]]
    return RequestAttributes.from_grpc(md, msg.SerializeToString())


def forms(req: Req) -> list[RequestAttributes]:
    """The request as the sidecar reads it: HTTP with a body, gRPC with parameters, or
    both when it has no parameters."""
    if "body" in req:
        return [_http(req)]
    if "grpc_params" in req:
        return [_grpc(req)]
    return [_http(req), _grpc(req)]


def _router(routes: list[dict[str, Any]]) -> Router:
    router = Router(Aggregator())
    router.apply(json_format.ParseDict({"version": "1", "routes": routes},
                                       routing_pb2.RoutingTable()))
    return router


def test_router(conds: list[dict[str, Any]]) -> Router:
    """The sidecar's table with one test (one arm, whole layer) carrying ``conds``."""
    return _router([{"model_name": "m", "route_id": "t", "kind": "ROUTE_KIND_EXPERIMENT",
                     "variants": [{"name": "in", "weight": 1.0}], "targeting": conds}])


def sidecar_matches(router: Router, req: Req) -> bool:
    """Whether the sidecar puts the request in the test of :func:`test_router`; every
    form of the request must agree."""
    answers = set()
    for attrs in forms(req):
        res = router.resolve("m", "unit-1", attrs, None)
        assert res is not None
        answers.add(res.label == "in")
    assert len(answers) == 1, req
    return answers.pop()


def _resolved(router: Router, req: Req) -> dict[str, Any]:
    (attrs,) = forms(req)[:1]
    res = router.resolve(req["model"], req["unit"], attrs, req["forced"])
    assert res is not None and router.table is not None
    md = dict(res.assignments).get(EXPERIMENT_HEADER, "")
    tests = [t.split("=", 1) for t in md.split(",")] if md else []
    plan = router.table.plans[req["model"]]
    arms: dict[str, str | None] = {r.route_id: None for ly in plan.layers for r in ly.routes}
    arms.update({t: a for t, a in tests})
    d = plan.default
    if d is not None:
        hit = plan._header_route(attrs) if plan.headers else None
        if hit is not None:
            arms[d.route_id] = hit.name if hit.name in d.by_name else None
        else:
            arms[d.route_id] = Plan._deployment(d, req["unit"], attrs, req["forced"]).name
    return {**req, "label": res.label, "tests": tests, "arms": arms}


# --- the file -------------------------------------------------------------------------------

def _wire(written: list[str]) -> list[dict[str, Any]]:
    return [_cond(t) for t in written]


def _invalid(conds: list[dict[str, Any]]) -> dict[str, Any]:
    msgs = [json_format.ParseDict(x, targeting.Condition()) for x in conds]
    try:
        targeting.validate(msgs)
    except targeting.ConditionError as exc:
        return {"targeting": conds, "field": exc.field, "error": str(exc)}
    raise AssertionError(f"{conds} should be refused")


def build() -> dict[str, Any]:
    cases = []
    for c in _cases():
        wire = _wire(c["written"])
        router = test_router(wire)
        requests = [{**r, "matched": sidecar_matches(router, r)} for r in c["requests"]]
        cases.append({"name": c["name"], "written": c["written"], "targeting": wire,
                      "texts": [targeting.format(targeting.parse(t)) for t in c["written"]],
                      "requests": requests})
    table = _routing_table()
    router = _router(table["routes"])
    return {
        "description": DESCRIPTION,
        "cases": cases,
        "invalid": [_invalid(x) for x in INVALID],
        "routing": {"table": table,
                    "requests": [_resolved(router, r) for r in _routing_requests()]},
    }


DESCRIPTION = (
    "Targeting conditions as the sidecar evaluates them; see TARGETING.md. cases: "
    "'targeting' (the conditions as routes carry them, proto JSON), 'texts' (their "
    "canonical text), 'written' (as a user may write them), and requests: 'headers' "
    "([name, value] pairs in order), then 'body' (an OIP REST body, UTF-8), 'grpc_params' "
    "(ModelInferRequest.parameters, InferParameter JSON) or neither (no parameters, read "
    "over HTTP and gRPC alike); 'matched': the request is in a test with these conditions. "
    "invalid: conditions a route cannot carry (the sidecar rejects the route), with the "
    "field named. routing: one table; each request resolved by the sidecar: 'label' "
    "(x-neural-variant), 'tests' ([test id, arm] in layer order: x-neural-experiment), "
    "'arms' (each route's arm for it, null: not in that test).")


def dump(vectors: dict[str, Any]) -> str:
    """One line per request: the file stays readable and its diffs small."""
    def line(x: Any) -> str:
        return json.dumps(x, ensure_ascii=False)

    cases = []
    for c in vectors["cases"]:
        head = line({k: v for k, v in c.items() if k != "requests"})
        reqs = ",\n    ".join(line(r) for r in c["requests"])
        cases.append(f'  {head[:-1]}, "requests": [\n    {reqs}]}}')
    invalid = ",\n  ".join(line(x) for x in vectors["invalid"])
    routing = vectors["routing"]
    reqs = ",\n    ".join(line(r) for r in routing["requests"])
    table = line(routing["table"])
    return (f'{{"description": {line(vectors["description"])},\n "cases": [\n'
            + ",\n".join(cases) + f'],\n "invalid": [\n  {invalid}],\n'
            + f' "routing": {{"table": {table},\n  "requests": [\n    {reqs}]}}}}\n')
