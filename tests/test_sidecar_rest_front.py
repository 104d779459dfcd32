"""The REST front end in one process: a real Router with a compiled routing table, the
demo model's REST form and the sidecar's aiohttp application on loopback ports, an aiohttp
client as the caller. Covers what the process tests do not reach cheaply: targeting on
an OIP request parameter (the body read before routing), a streamed body over the limit,
the binary tensor extension, configuration errors.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import numpy as np
import pytest
from aiohttp import web

from neural.mlops.sidecar.allowlist import UpstreamPolicy
from neural.mlops.sidecar.demo_model import DemoModel, DemoModelConfig
from neural.mlops.sidecar.metrics import Aggregator
from neural.mlops.sidecar.rest import RestFront, grpc_code
from neural.mlops.sidecar.rest_demo import DemoRestServer
from neural.mlops.sidecar.rest_oip import answer_tensors, infer_path, mark_shadow, split_body
from neural.mlops.sidecar.router import Router
from neural.mlops.sidecar.upstream import HttpUpstreams, parse_http_map, parse_http_upstream
from neural.mlops.v1 import routing_pb2, targeting

GOLD = {"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1.0]}],
        "parameters": {"tier": "gold"}}


def _table() -> routing_pb2.RoutingTable:
    """Model ``m``: a test over requests whose parameter ``tier`` is ``gold`` (all of them
    to version 2); other requests are not in it and go as asked."""
    route = routing_pb2.ModelRoute(
        model_name="m", route_id="exp-gold", kind=routing_pb2.ROUTE_KIND_EXPERIMENT,
        variants=[routing_pb2.RouteVariant(name="gold-arm", weight=1.0, model_version="2")],
        targeting=[targeting.parse("param.tier = gold")],
    )
    return routing_pb2.RoutingTable(version=1, routes=[route])


@asynccontextmanager
async def _serving(router: Router, **upstream: Any) -> AsyncIterator[dict[str, Any]]:
    """The demo model's REST form and a REST front end over ``router``, on loopback."""
    model = DemoModel(DemoModelConfig(name="m"))
    demo = DemoRestServer(model, "127.0.0.1:0")
    await demo.start()
    http = HttpUpstreams(demo.url, **upstream)
    rest = RestFront(http, router, None, max_body=4096)
    runner = rest.runner(access_log=None)  # bodies as the caller encoded them
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with aiohttp.ClientSession() as client:
            yield {"url": f"http://127.0.0.1:{port}", "client": client, "router": router,
                   "model": model}
    finally:
        await runner.cleanup()
        await http.close()
        await demo.stop()


@pytest.fixture
async def front() -> AsyncIterator[dict[str, Any]]:
    router = Router(Aggregator())
    router.apply(_table())
    async with _serving(router) as f:
        yield f


async def _post(f: dict[str, Any], path: str, data: Any, **kw: Any) -> tuple[int, dict, Any]:
    async with f["client"].post(f["url"] + path, data=data, **kw) as r:
        return r.status, dict(r.headers), await r.json(content_type=None)


async def test_targeting_on_a_request_parameter_routes_by_the_body(
    front: dict[str, Any],
) -> None:
    status, headers, answer = await _post(front, "/v2/models/m/infer", json.dumps(GOLD))
    assert status == 200 and headers["x-neural-variant"] == "gold-arm"
    assert answer["model_version"] == "2"
    silver = dict(GOLD, parameters={"tier": "silver"})
    status, headers, answer = await _post(front, "/v2/models/m/infer", json.dumps(silver))
    assert status == 200 and "x-neural-variant" not in headers
    assert answer["model_version"] == ""
    slot = front["router"].aggregator.slots[("m", "exp-gold", "gold-arm")]
    assert slot.total == 1  # only the eligible request counted in the test


async def test_streamed_body_over_the_limit_is_413_and_not_counted(
    front: dict[str, Any],
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b" " * 1000  # chunked: no Content-Length to refuse up front

    calls = front["model"].calls
    status, _, answer = await _post(front, "/v2/models/m2/infer", chunks())
    assert status == 413 and answer["error"].startswith("request body over 4096 bytes")
    # Declared too large: refused before anything is read.
    status, _, answer = await _post(front, "/v2/models/m/infer", b"x" * 5000)
    assert status == 413
    assert front["model"].calls == calls
    assert all(s.total == 0 for s in front["router"].aggregator.slots.values())


async def test_binary_tensor_extension_passes_through(front: dict[str, Any]) -> None:
    x = np.arange(6, dtype="<f4").reshape(2, 3)
    head = json.dumps({"inputs": [{"name": "x", "shape": [2, 3], "datatype": "FP32",
                                   "parameters": {"binary_data_size": x.nbytes}}]}).encode()
    status, _, answer = await _post(
        front, "/v2/models/m/infer", head + x.tobytes(),
        headers={"Inference-Header-Content-Length": str(len(head))},
    )
    assert status == 200
    out = {o["name"]: o["data"] for o in answer["outputs"]}
    assert out["x_out"] == (2 * x).reshape(-1).tolist()


async def test_upstreams_without_rest_form_or_refused_are_never_served_elsewhere() -> None:
    """A variant on an allowed upstream without --upstream-http-for: 503, counted; a route
    whose variant's upstream the allow-list refuses: unrouted (the caller's model as is)."""
    def route(model: str, upstream: str) -> routing_pb2.ModelRoute:
        return routing_pb2.ModelRoute(
            model_name=model, route_id=f"dep-{model}", kind=routing_pb2.ROUTE_KIND_DEPLOYMENT,
            variants=[routing_pb2.RouteVariant(name="new", weight=1.0, model_name="m",
                                               model_version="7", upstream=upstream)],
        )

    router = Router(Aggregator(), policy=UpstreamPolicy("127.0.0.1:1"))
    router.apply(routing_pb2.RoutingTable(
        version=1, routes=[route("m2", "127.0.0.1:9"), route("m", "10.9.9.9:1")]
    ))
    async with _serving(router, grpc_default="127.0.0.1:1") as f:
        status, headers, answer = await _post(f, "/v2/models/m2/infer", json.dumps(GOLD))
        assert status == 503 and headers["x-neural-variant"] == "new"
        assert "upstream 127.0.0.1:9 has no REST form" in answer["error"]
        assert router.aggregator.slots[("m2", "dep-m2", "new")].codes == {"UNAVAILABLE": 1}
        status, headers, answer = await _post(f, "/v2/models/m/infer", json.dumps(GOLD))
        assert status == 200 and "x-neural-variant" not in headers
        assert answer["model_version"] == ""  # not version 7 from the refused server
        assert f["model"].calls == 1


def test_binary_answers_and_the_shadow_mark() -> None:
    out = np.array([1.5, -2.0], dtype="<f8")
    doc = {"outputs": [
        {"name": "p", "shape": [2], "datatype": "FP64", "parameters": {"binary_data_size": 16}},
        {"name": "s", "shape": [2], "datatype": "BYTES", "data": ["a", "b"]},
    ]}
    head = json.dumps(doc).encode()
    got = answer_tensors(head + out.tobytes(), "", str(len(head)))
    assert got["p"].tolist() == [1.5, -2.0] and got["s"].tolist() == [b"a", b"b"]
    body, length = mark_shadow(head + b"raw", str(len(head)))
    doc2, rest = split_body(body, length)
    assert rest == b"raw" and doc2["parameters"] == {"neural_shadow": True}
    with pytest.raises(ValueError, match="outside the body"):
        split_body(b"{}", "9")
    assert infer_path("a/b", "v 1") == "/v2/models/a%2Fb/versions/v%201/infer"


def test_http_status_counts_as_the_grpc_code_of_the_same_meaning() -> None:
    assert [grpc_code(s) for s in (200, 204, 400, 404, 422, 500, 503, 504, 599)] == [
        None, None, "INVALID_ARGUMENT", "NOT_FOUND", "FAILED_PRECONDITION", "INTERNAL",
        "UNAVAILABLE", "DEADLINE_EXCEEDED", "UNKNOWN",
    ]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("ftp://h:1", "must start with http:// or https://"),
        ("http://u:p@h:1", "must not carry user info"),
        ("http://h:1/?q=1", "must not have a query or fragment"),
    ],
)
def test_upstream_urls_are_checked(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_http_upstream(value)


def test_upstream_map_names_the_wrong_part() -> None:
    assert parse_http_map("10.0.0.1:8001=http://10.0.0.1:8080/") == {
        "10.0.0.1:8001": "http://10.0.0.1:8080"
    }
    with pytest.raises(ValueError, match="is not HOST:PORT=URL"):
        parse_http_map("10.0.0.1:8001")
    with pytest.raises(ValueError, match="upstream_http_for: 'unix:/x'"):
        parse_http_map("unix:/x=http://h:1")
    http = HttpUpstreams("http://h:1", "a:1", parse_http_map("b:2=http://b:8080"))
    assert [http.base(u) for u in ("", "a:1", "b:2", "c:3")] == [
        "http://h:1", "http://h:1", "http://b:8080", None
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--http-listen", "127.0.0.1:0"], "http_listen: needs upstream_http"),
        (["--upstream-http", "http://h:1"], "upstream_http: needs http_listen"),
        (["--http-listen", "127.0.0.1:0", "--upstream-http", "h:1"],
         "upstream_http: 'h:1' must start with http://"),
    ],
)
def test_sidecar_flags_are_checked_at_start(args: list[str], message: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "neural.mlops", "sidecar", "--upstream", "127.0.0.1:1", *args],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
