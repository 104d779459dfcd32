"""Compressed request bodies on the sidecar's REST front end (``Content-Encoding``), in one
process: a real Router with a compiled routing table, the sidecar's aiohttp application on
loopback, and as upstream either the demo model's REST form (a real OIP server, which
decodes gzip and deflate itself) or a recording server that keeps the bytes and headers
it was sent. The caller is a plain aiohttp client.

Model ``m`` has a test over requests whose parameter ``tier`` is ``gold`` (to version 2):
the sidecar must read the parameter through gzip/deflate, forward the caller's bytes and
headers untouched, and refuse (before routing, nothing sent upstream) a body it cannot
read: a bomb (413), corrupt data (400), a coding it does not know (415).
"""

from __future__ import annotations

import gzip
import json
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import numpy as np
import pytest
from aiohttp import web

from neural.mlops.sidecar.demo_model import DemoModel, DemoModelConfig
from neural.mlops.sidecar.metrics import Aggregator
from neural.mlops.sidecar.rest import RestFront
from neural.mlops.sidecar.rest_demo import DemoRestServer
from neural.mlops.sidecar.rest_oip import (
    DecodedTooLarge,
    UnknownEncoding,
    answer_tensors,
    decompress,
)
from neural.mlops.sidecar.router import Router
from neural.mlops.sidecar.upstream import HttpUpstreams
from neural.mlops.v1 import routing_pb2, targeting
from neural.mlops.v1.limits import MAX_MESSAGE_BYTES

LIMIT = 4096  # the front's max body in these tests


def _doc(tier: str, x: float = 1.0, pad: int = 0) -> bytes:
    return json.dumps({
        "inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [x]}],
        "parameters": {"tier": tier}, "pad": " " * pad,
    }).encode()


def _raw_deflate(data: bytes) -> bytes:
    c = zlib.compressobj(wbits=-15)
    return c.compress(data) + c.flush()


ENCODERS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.compress,
    "deflate": zlib.compress,  # RFC 9110: the zlib format
    "identity": lambda b: b,
}


class Recorder:
    """An upstream that keeps what it was sent (auto-decompression off: the raw bytes)
    and answers ``{"model_version": ...}`` from its URL."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, str], bytes]] = []
        self.app = web.Application()
        self.app.router.add_post("/v2/models/{name}/infer", self.infer)
        self.app.router.add_post("/v2/models/{name}/versions/{version}/infer", self.infer)

    async def infer(self, request: web.Request) -> web.Response:
        self.seen.append((request.path, {k.lower(): v for k, v in request.headers.items()},
                          await request.read()))
        return web.json_response({"model_version": request.match_info.get("version", "")})


def _router() -> Router:
    route = routing_pb2.ModelRoute(
        model_name="m", route_id="exp-gold", kind=routing_pb2.ROUTE_KIND_EXPERIMENT,
        variants=[routing_pb2.RouteVariant(name="gold-arm", weight=1.0, model_version="2")],
        targeting=[targeting.parse("param.tier = gold")],
    )
    router = Router(Aggregator())
    router.apply(routing_pb2.RoutingTable(version=1, routes=[route]))
    return router


@asynccontextmanager
async def _front(upstream_url: str) -> AsyncIterator[dict[str, Any]]:
    router = _router()
    http = HttpUpstreams(upstream_url)
    rest = RestFront(http, router, None, max_body=LIMIT)
    runner = rest.runner(access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        async with aiohttp.ClientSession(auto_decompress=False) as client:
            yield {"url": f"http://127.0.0.1:{runner.addresses[0][1]}", "client": client,
                   "router": router}
    finally:
        await runner.cleanup()
        await http.close()


@pytest.fixture
async def demo() -> AsyncIterator[dict[str, Any]]:
    """The front in front of the demo model's REST form."""
    model = DemoModel(DemoModelConfig(name="m"))
    server = DemoRestServer(model, "127.0.0.1:0")
    await server.start()
    try:
        async with _front(server.url) as f:
            yield dict(f, model=model)
    finally:
        await server.stop()


@pytest.fixture
async def recorded() -> AsyncIterator[dict[str, Any]]:
    """The front in front of a :class:`Recorder`."""
    rec = Recorder()
    runner = web.AppRunner(rec.app, access_log=None, auto_decompress=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        async with _front(f"http://127.0.0.1:{runner.addresses[0][1]}") as f:
            yield dict(f, recorder=rec)
    finally:
        await runner.cleanup()


async def _post(f: dict[str, Any], data: bytes, encoding: str | None, model: str = "m",
                **headers: str) -> tuple[int, dict[str, str], Any]:
    if encoding is not None:
        headers["Content-Encoding"] = encoding
    async with f["client"].post(f"{f['url']}/v2/models/{model}/infer", data=data,
                                headers=headers) as r:
        return r.status, {k.lower(): v for k, v in r.headers.items()}, await r.json(
            content_type=None)


def _slots(f: dict[str, Any]) -> int:
    return sum(s.total for s in f["router"].aggregator.slots.values())


@pytest.mark.parametrize("encoding", sorted(ENCODERS))
async def test_compressed_body_is_routed_by_its_parameters_as_if_plain(
    demo: dict[str, Any], encoding: str,
) -> None:
    """The same requests plain and encoded: the same variant, the same answer computed by
    the model server from the inputs (it decoded what the sidecar forwarded)."""
    for tier, x in (("gold", 3.0), ("silver", 5.0)):
        plain = await _post(demo, _doc(tier, x), None)
        encoded = await _post(demo, ENCODERS[encoding](_doc(tier, x)), encoding)
        assert encoded[0] == plain[0] == 200, encoded
        assert encoded[1].get("x-neural-variant") == plain[1].get("x-neural-variant") == (
            "gold-arm" if tier == "gold" else None)
        assert encoded[2] == plain[2]
        assert encoded[2]["model_version"] == ("2" if tier == "gold" else "")
        assert {o["name"]: o["data"] for o in encoded[2]["outputs"]}["x_out"] == [2 * x]
    assert demo["router"].aggregator.slots[("m", "exp-gold", "gold-arm")].total == 2


async def test_a_body_nested_past_the_json_parsers_depth_has_no_parameters(
    recorded: dict[str, Any],
) -> None:
    """JSON nested deeper than the parser goes (Python's recursion limit, ~1000 levels)
    reads as a body without parameters (TARGETING.md): routed as such, never a 500."""
    depth = 1900
    body = b'{"parameters": {"tier": "gold"}, "deep": ' + b"[" * depth + b"]" * depth + b"}"
    assert len(body) <= LIMIT
    status, headers, _ = await _post(recorded, body, None)
    assert status == 200 and "x-neural-variant" not in headers
    assert recorded["recorder"].seen[-1][2] == body  # forwarded as sent
    status, headers, _ = await _post(recorded, _doc("gold"), None)
    assert status == 200 and headers.get("x-neural-variant") == "gold-arm"


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "identity", "x-gzip", "deflate-raw",
                                      "gzip, deflate"])
async def test_upstream_gets_the_callers_bytes_and_content_encoding(
    recorded: dict[str, Any], encoding: str,
) -> None:
    if encoding == "deflate-raw":  # raw deflate, as some clients send: read all the same
        header, body = "deflate", _raw_deflate(_doc("gold"))
    elif encoding == "gzip, deflate":  # gzip applied first, then deflate
        header, body = encoding, zlib.compress(gzip.compress(_doc("gold")))
    else:
        header, body = encoding, ENCODERS.get(encoding, gzip.compress)(_doc("gold"))
    status, headers, answer = await _post(recorded, body, header)
    assert status == 200 and headers["x-neural-variant"] == "gold-arm"
    assert answer == {"model_version": "2"}
    ((path, sent_headers, sent),) = recorded["recorder"].seen
    assert path == "/v2/models/m/versions/2/infer"
    assert sent == body  # not decoded, not re-encoded
    assert sent_headers["content-encoding"] == header
    assert sent_headers["content-length"] == str(len(body))


async def test_parameters_are_read_from_the_json_part_of_a_binary_body(
    recorded: dict[str, Any],
) -> None:
    """Triton's binary tensor extension: the JSON document, then raw tensor bytes; the
    header names the JSON's length in the decoded body."""
    head = json.dumps({"inputs": [{"name": "x", "shape": [4], "datatype": "FP32",
                                   "parameters": {"binary_data_size": 16}}],
                       "parameters": {"tier": "gold"}}).encode()
    body = head + np.arange(4, dtype="<f4").tobytes()
    for encoding, data in ((None, body), ("gzip", gzip.compress(body))):
        status, headers, _ = await _post(recorded, data, encoding,
                                         **{"Inference-Header-Content-Length": str(len(head))})
        assert status == 200 and headers["x-neural-variant"] == "gold-arm", encoding
        assert recorded["recorder"].seen[-1][2] == data


async def test_decompression_bomb_is_413_naming_the_limit_and_never_sent(
    recorded: dict[str, Any],
) -> None:
    bomb = gzip.compress(_doc("gold", pad=1 << 20))  # ~1 KiB inflating to 1 MiB
    assert len(bomb) < LIMIT
    for encoding, data in (("gzip", bomb), ("deflate", zlib.compress(_doc("gold", pad=1 << 20)))):
        status, headers, answer = await _post(recorded, data, encoding)
        assert status == 413, answer
        assert answer["error"] == (f"request body decompresses to over {LIMIT} bytes "
                                   "(the contract's message limit)")
        assert "x-neural-variant" not in headers
    # Just under the limit once decoded: served.
    fits = _doc("gold", pad=LIMIT - len(_doc("gold")))
    assert len(fits) == LIMIT
    status, _, _ = await _post(recorded, gzip.compress(fits), "gzip")
    assert status == 200
    assert len(recorded["recorder"].seen) == 1 and _slots(recorded) == 1


@pytest.mark.parametrize(
    ("data", "encoding", "message"),
    [
        (b"not gzip at all", "gzip", "content-encoding gzip: corrupt data (Error -3"),
        (gzip.compress(_doc("gold"))[:-6], "gzip",
         "content-encoding gzip: the data ends before its compressed stream does"),
        (zlib.compress(_doc("gold"))[:-1] + b"\0", "deflate",
         "content-encoding deflate: corrupt data (Error -3"),
    ],
)
async def test_corrupt_body_is_a_clear_400_and_never_sent(
    recorded: dict[str, Any], data: bytes, encoding: str, message: str,
) -> None:
    status, _, answer = await _post(recorded, data, encoding)
    assert status == 400 and answer["error"].startswith(f"request body: {message}")
    assert recorded["recorder"].seen == [] and _slots(recorded) == 0


@pytest.mark.parametrize("encoding", ["br", "zstd", "gzip, compress"])
async def test_unknown_coding_is_415_when_targeting_reads_parameters(
    recorded: dict[str, Any], encoding: str,
) -> None:
    """Routing it as "no parameters" would silently put it in (or out of) a test; the
    caller is told which codings would do instead. A model whose targeting reads no
    parameter gets the same body forwarded untouched."""
    data = b"\x1b\x2a\x00\x00 opaque"
    status, headers, answer = await _post(recorded, data, encoding)
    assert status == 415, answer
    bad = encoding.split(", ")[-1]
    assert answer["error"] == (
        f"request body: content-encoding {bad!r} not understood (reads gzip, deflate, "
        "identity); targeting reads this model's request parameters")
    assert headers["accept-encoding"] == "gzip, deflate, identity"
    assert recorded["recorder"].seen == [] and _slots(recorded) == 0
    status, _, _ = await _post(recorded, data, encoding, model="other")
    assert status == 200
    ((path, sent_headers, sent),) = recorded["recorder"].seen
    assert (path, sent, sent_headers["content-encoding"]) == (
        "/v2/models/other/infer", data, encoding)


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_decompress_stops_at_the_limit_without_inflating_the_whole_bomb(encoding: str) -> None:
    """64 MiB of zeros (~64 KiB compressed) against a 1 MiB limit: refused after at most
    the limit was produced; inflating it whole would need 64 MiB."""
    bomb = ENCODERS[encoding](bytes(64 << 20))
    tracemalloc.start()
    try:
        with pytest.raises(DecodedTooLarge, match="over 1048576 bytes"):
            decompress(bomb, encoding, 1 << 20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20
    assert decompress(ENCODERS[encoding](b"{}" * 10), encoding, 20) == b"{}" * 10
    with pytest.raises(UnknownEncoding, match="content-encoding 'br' not understood"):
        decompress(b"", "gzip, br")


def test_an_answer_inflating_past_the_message_limit_cannot_be_compared() -> None:
    """The mirror reads the upstreams' answers with the same bound (the contract's limit)."""
    bomb = gzip.compress(bytes(MAX_MESSAGE_BYTES + 1))
    with pytest.raises(DecodedTooLarge):
        answer_tensors(bomb, "gzip", None)
    doc = {"outputs": [{"name": "s", "shape": [1], "datatype": "FP32", "data": [0.5]}]}
    got = answer_tensors(gzip.compress(json.dumps(doc).encode()), "gzip", None)
    assert got["s"].tolist() == [0.5]
