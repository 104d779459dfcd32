"""The Node.js client applies targeting as the sidecar does, end to end.

A real control plane (``neural-mlops serve``), two A/B tests with targeting started on one
model (a steering test on headers, and a label-only test in another layer on an OIP
request parameter), a real demo model and a real sidecar (gRPC and REST fronts). The Node
client follows the routing table (WatchRoutes) and resolves each request from its
attributes; the same requests go through the sidecar, over gRPC (metadata and typed
InferParameters) and over REST (headers and JSON bodies), and every one must get from the
sidecar the variant the Node client predicted. A targeted canary rollout with a header
route likewise: untargeted requests stay on the stable version. The vectors
(targeting_vectors.json) are replayed by test_targeting_vectors.py and the Node client's
own tests.
"""

from __future__ import annotations

import asyncio
import random
import sys
import urllib.request
from pathlib import Path
from typing import Any

import grpc
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from peers.procs import start_demo, start_sidecar  # noqa: E402
from test_node_client_bandit import _NodeAssigner, _wait, node  # noqa: E402, F401
from test_sidecar_rest import start_rest_demo, start_rest_sidecar  # noqa: E402
from test_sidecar_routing import infer_stub, request  # noqa: E402

from neural.mlops.ab_testing import ABTestManager  # noqa: E402
from neural.mlops.deployment import DeploymentManager, RollbackConfig  # noqa: E402
from neural.mlops.registry import ModelRegistry, ModelStage  # noqa: E402
from neural.mlops.v1 import oip_pb2  # noqa: E402

pytestmark = pytest.mark.peers

MODEL = "shop"
STEERING = ["x-country in [DE, AT]", "x-app-version >= 4.2"]
LABEL = ["param.tier in [gold, 1.0, true]"]

COUNTRIES = ["DE", "AT", "de", "US", "", None]
VERSIONS = ["4.2", "4.2.0", "v5", "4.1.9", "4.2.0-rc.1", "4.10.0+build.1", "garbage", "04.2",
            None]
# A parameter's value as (REST JSON text, gRPC InferParameter, what Node is handed for
# gRPC): strings, doubles, integers, booleans, and none.
TIERS: list[tuple[str, dict[str, Any] | None] | None] = [
    ('"gold"', {"string_param": "gold"}), ('"Gold"', {"string_param": "Gold"}),
    ("1.0", {"double_param": 1.0}), ("1", {"int64_param": "1"}), ("1e0", {"double_param": 1}),
    ("true", {"bool_param": True}), ('"true"', {"string_param": "true"}),
    ("false", {"bool_param": False}), ("null", None), None,
]


def _requests(n: int, seed: int) -> list[dict[str, Any]]:
    """Requests with varied attributes: header names in several cases, some missing."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        headers: list[list[str]] = []
        country, version = rng.choice(COUNTRIES), rng.choice(VERSIONS)
        if country is not None:
            headers.append([rng.choice(["x-country", "X-Country", "X-COUNTRY"]), country])
        if version is not None:
            headers.append(["x-app-version", version])
        out.append({"unit": f"user-{seed}-{i}", "headers": headers, "tier": rng.choice(TIERS)})
    return out


def _grpc_param(tier: dict[str, Any]) -> oip_pb2.InferParameter:
    (kind, value), = tier.items()
    return oip_pb2.InferParameter(**{kind: int(value) if kind == "int64_param" else value})


async def _through_grpc(address: str, reqs: list[dict[str, Any]]) -> list[str]:
    """The x-neural-variant the sidecar answers each gRPC request with."""
    out = [""] * len(reqs)
    async with grpc.aio.insecure_channel(address) as ch:
        stub = infer_stub(ch)
        sem = asyncio.Semaphore(32)

        async def one(i: int, q: dict[str, Any]) -> None:
            req = request(model=MODEL)
            if q["tier"] is not None and q["tier"][1] is not None:
                req.parameters["tier"].CopyFrom(_grpc_param(q["tier"][1]))
            md = (("x-user-id", q["unit"]),) + tuple((k.lower(), v) for k, v in q["headers"])
            async with sem:
                call = stub(req, metadata=md, timeout=30)
                await call
                out[i] = dict(await call.trailing_metadata()).get("x-neural-variant", "")

        await asyncio.gather(*(one(i, q) for i, q in enumerate(reqs)))
    return out


def _rest_body(q: dict[str, Any]) -> str:
    inputs = '"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]'
    if q["tier"] is None:
        return f"{{{inputs}}}"
    return f'{{{inputs}, "parameters": {{"tier": {q["tier"][0]}, "other": [1, 2]}}}}'


def _through_rest(url: str, reqs: list[dict[str, Any]]) -> list[str]:
    out = []
    for q in reqs:
        r = urllib.request.Request(f"{url}/v2/models/{MODEL}/infer",
                                   data=_rest_body(q).encode(), method="POST")
        r.add_header("Content-Type", "application/json")
        r.add_header("X-User-Id", q["unit"])
        for k, v in q["headers"]:
            r.add_header(k, v)
        with urllib.request.urlopen(r, timeout=20) as resp:
            assert resp.status == 200
            out.append(resp.headers.get("x-neural-variant", ""))
    return out


def _node_requests(reqs: list[dict[str, Any]], rest: bool) -> list[dict[str, Any]]:
    out = []
    for q in reqs:
        item: dict[str, Any] = {"unit": q["unit"], "headers": q["headers"]}
        if rest:
            item["body"] = _rest_body(q)
        elif q["tier"] is not None and q["tier"][1] is not None:
            item["params"] = {"tier": q["tier"][1]}
        out.append(item)
    return out


def test_node_resolves_targeted_requests_as_the_sidecar_serves_them(
    node: str, server: Any  # noqa: F811
) -> None:
    demo, demo_url = start_rest_demo(MODEL)
    sidecar, rest_url = start_rest_sidecar((demo, demo_url), server.address)
    js: _NodeAssigner | None = None
    try:
        js = _NodeAssigner(node, server.url)
        with ABTestManager(server.url) as m:
            steer = m.create_test("targeted", control_variant=f"{MODEL}:1",
                                  treatment_variant=f"{MODEL}:2", targeting=STEERING)
            label = m.create_test("ui", variants=[("blue", MODEL, 0.5), ("green", MODEL, 0.5)],
                                  control="blue",
                                  layer="ui", targeting=LABEL)
            for t in (steer, label):
                m.start_test(t.test_id)
            waited = [js(op="wait", route_id=t.test_id) for t in (steer, label)]
            version = max(w["version"] for w in waited)
            _wait(lambda: sidecar.health()["table_version"] >= version, 20, "sidecar routed")
            stored = [m.get_test(t.test_id).targeting for t in (steer, label)]
        grpc_reqs, rest_reqs = _requests(300, 1), _requests(200, 2)
        predicted_grpc = js(op="resolve", model=MODEL,
                            requests=_node_requests(grpc_reqs, rest=False))
        predicted_rest = js(op="resolve", model=MODEL,
                            requests=_node_requests(rest_reqs, rest=True))
        served_grpc = asyncio.run(_through_grpc(sidecar.address, grpc_reqs))
        served_rest = _through_rest(rest_url, rest_reqs)
        health = sidecar.health()
    finally:
        code = js.close() if js is not None else 0
        sidecar.stop()
        demo.stop()
    assert code == 0
    assert stored == [tuple(STEERING), tuple(LABEL)] or stored == [STEERING, LABEL]
    assert predicted_grpc["version"] == predicted_rest["version"] == health["table_version"]
    node_grpc = [r["label"] for r in predicted_grpc["results"]]
    node_rest = [r["label"] for r in predicted_rest["results"]]
    assert node_grpc == served_grpc
    assert node_rest == served_rest
    # Not vacuous: each outcome occurs (in the steering test, only in the label test, none)
    for labels in (node_grpc, node_rest):
        assert {"treatment", "control"} & set(labels) and {"blue", "green"} & set(labels)
        assert "" in labels
    # The Node client's answers follow the conditions (read independently here).
    for q, r in zip(grpc_reqs, predicted_grpc["results"], strict=True):
        heads = {k.lower(): v for k, v in reversed(q["headers"])}
        in_steer = heads.get("x-country") in ("DE", "AT") and heads.get("x-app-version") in (
            "4.2", "4.2.0", "v5", "4.10.0+build.1")
        tier = q["tier"][0] if q["tier"] is not None else None
        in_label = tier in ('"gold"', "1.0", "1e0", "true", '"true"')
        assert [t for t, _ in r["tests"]] == (
            [steer.test_id] if in_steer else []) + ([label.test_id] if in_label else []), q


def test_node_gives_a_targeted_rollouts_requests_the_sidecars_variant(
    node: str, server: Any  # noqa: F811
) -> None:
    """A canary rollout targeted at DE users on app 4.2+, with a header route: untargeted
    requests stay on the stable version (its ``untargeted`` variant), x-canary: always
    forces the canary; Node and the sidecar agree on every request."""
    reg = ModelRegistry(server.url)
    for version in ("v1", "v2"):
        reg.register_model(name="dm", version=version, artifact_uri=f"s3://dm/{version}",
                           framework="sklearn", created_by="ds@x.com")
    reg.request_promotion(name="dm", version="v2", target_stage=ModelStage.PRODUCTION,
                          requested_by="eng@x.com", justification="offline eval passed")
    reg.approve_promotion(name="dm", version="v2", approver="boss@x.com")
    stable, canary = start_demo("dm"), start_demo("dm")
    sidecar = start_sidecar(stable.address, server.address, "--flush-interval", "0.2")
    js: _NodeAssigner | None = None
    try:
        js = _NodeAssigner(node, server.url)
        with DeploymentManager(server.url) as dm:
            dep = dm.create_deployment(
                model_name="dm", model_version="v2", strategy="canary", created_by="ops@x.com",
                stable_version="v1", upstream=canary.address, steps=[50, 100],
                step_duration_seconds=600.0, analysis_interval_seconds=0.25,
                targeting=STEERING, header_routes=[("x-canary", "always", "canary")],
                rollback_config=RollbackConfig(min_requests_before_check=10**9))
            waited = js(op="wait", route_id=dep.deployment_id)
            _wait(lambda: sidecar.health()["table_version"] >= waited["version"], 20,
                  "sidecar routed")
            reqs = _requests(300, 3)
            for q in reqs[::7]:
                q["headers"].append(["X-Canary", "always"])
            predicted = js(op="resolve", model="dm", requests=_node_requests(reqs, rest=False))
            served = [v for v, _ in asyncio.run(_served(sidecar.address, "dm", reqs))]
            if dm.get_deployment(dep.deployment_id).active:
                dm.abort(dep.deployment_id, "ops@x.com", "test over")
    finally:
        code = js.close() if js is not None else 0
        for p in (sidecar, canary, stable):
            p.stop()
    assert code == 0
    labels = [r["label"] for r in predicted["results"]]
    assert labels == served
    assert set(labels) == {"canary", "stable", "untargeted"}
    forced = [r["label"] for q, r in zip(reqs, predicted["results"], strict=True)
              if ["X-Canary", "always"] in q["headers"]]
    assert set(forced) == {"canary"}


async def _served(address: str, model: str, reqs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(x-neural-variant, model version served) of each request, sent over gRPC."""
    out = [("", "")] * len(reqs)
    async with grpc.aio.insecure_channel(address) as ch:
        stub = infer_stub(ch)

        async def one(i: int, q: dict[str, Any]) -> None:
            md = (("x-user-id", q["unit"]),) + tuple((k.lower(), v) for k, v in q["headers"])
            call = stub(request(model=model), metadata=md, timeout=30)
            resp = await call
            out[i] = (dict(await call.trailing_metadata()).get("x-neural-variant", ""),
                      resp.model_version)

        await asyncio.gather(*(one(i, q) for i, q in enumerate(reqs)))
    return out
