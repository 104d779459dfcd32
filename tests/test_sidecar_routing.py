"""The sidecar end to end: real control plane, demo model servers and sidecar processes."""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

sys.path.insert(0, str(Path(__file__).parent))

from peers.procs import (  # noqa: E402
    Proc,
    start_all,
    start_control_plane,
    start_demo,
    start_sidecar,
    write_routes,
)

from neural.mlops.v1 import oip_pb2  # noqa: E402
from neural.mlops.v1.assignment import assign  # noqa: E402

INFER = "/inference.GRPCInferenceService/ModelInfer"
Req = oip_pb2.ModelInferRequest

EXPERIMENT = {
    "model_name": "m",
    "route_id": "exp-checkout",
    "kind": "experiment",
    "variants": [
        {"name": "treatment", "weight": 0.3, "model_name": "m", "model_version": "2"},
        {"name": "control", "weight": 0.7, "model_name": "m", "model_version": "1"},
    ],
}


def request(x: list[float] | None = None, model: str = "m") -> Req:
    arr = np.asarray(x if x is not None else [1.0, 2.0, 3.0, 4.0], dtype="<f4").reshape(1, -1)
    return Req(
        model_name=model,
        inputs=[Req.InferInputTensor(name="x", datatype="FP32", shape=list(arr.shape))],
        raw_input_contents=[arr.tobytes()],
    )


def infer_stub(channel: grpc.aio.Channel):  # noqa: ANN201
    return channel.unary_unary(
        INFER,
        request_serializer=Req.SerializeToString,
        response_deserializer=oip_pb2.ModelInferResponse.FromString,
    )


@pytest.fixture(scope="module")
def _stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Proc | Path]]:
    tmp = tmp_path_factory.mktemp("stack")
    routes = tmp / "routes.json"
    write_routes(routes, [EXPERIMENT])
    cp, model = start_all(lambda: start_control_plane(tmp / "cp", routes), lambda: start_demo("m"))
    sidecar = start_sidecar(model.address, cp.address, "--flush-interval", "0.2")
    yield {"cp": cp, "model": model, "sidecar": sidecar, "routes": routes, "data": tmp / "cp"}
    for p in (sidecar, model, cp):
        p.stop()


@pytest.fixture
def stack(_stack: dict[str, Proc | Path]) -> dict[str, Proc | Path]:
    """One control plane, model and sidecar for the module, with the EXPERIMENT route live."""
    sidecar = _stack["sidecar"]
    current = sidecar.health()
    if current["routes"] != 1 or current["routing"] != "live":
        before = current["table_version"]
        write_routes(_stack["routes"], [EXPERIMENT])
        _wait_version(sidecar, lambda v: v > before)
    _wait_version(sidecar, lambda v: v >= 1)
    return _stack


def _wait_version(sidecar: Proc, ok, timeout: float = 20.0) -> float:  # noqa: ANN001
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if ok(sidecar.health()["table_version"]):
            return time.monotonic() - t0
        time.sleep(0.02)
    raise TimeoutError(f"routing table never matched: {sidecar.health()}")


async def _call_many(
    address: str,
    users: list[str | None],
    concurrency: int = 64,
    extra_md: tuple = (),
    model: str = "m",
) -> list[tuple[str, str]]:
    """(model_version, x-neural-variant) per user, in order."""
    out: list[tuple[str, str]] = [("", "")] * len(users)
    async with grpc.aio.insecure_channel(address) as ch:
        stub = infer_stub(ch)
        req = request(model=model)
        sem = asyncio.Semaphore(concurrency)

        async def one(i: int, user: str | None) -> None:
            md = (("x-user-id", user),) if user is not None else ()
            async with sem:
                call = stub(req, metadata=md + tuple(extra_md), timeout=30)
                resp = await call
                variant = dict(await call.trailing_metadata()).get("x-neural-variant", "")
                out[i] = (resp.model_version, variant)

        await asyncio.gather(*(one(i, u) for i, u in enumerate(users)))
    return out


def test_variant_routing_equals_the_hash_spec_for_10k_users(stack) -> None:  # noqa: ANN001
    users = [f"user-{i}" for i in range(10_000)]
    before = _ok_counts(stack["sidecar"].metrics())
    got = asyncio.run(_call_many(stack["sidecar"].address, users))
    weights = [v["weight"] for v in EXPERIMENT["variants"]]
    names = [v["name"] for v in EXPERIMENT["variants"]]
    versions = [v["model_version"] for v in EXPERIMENT["variants"]]
    mismatches = 0
    for user, (version, variant) in zip(users, got, strict=True):
        i = assign(EXPERIMENT["route_id"], user, weights)
        mismatches += (version, variant) != (versions[i], names[i])
    assert mismatches == 0
    # Every call was counted under its variant.
    after = _ok_counts(stack["sidecar"].metrics())
    counts = Counter(variant for _, variant in got)
    for name in names:
        assert after.get(name, 0) - before.get(name, 0) == counts[name]


def _ok_counts(text: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if (
            line.startswith("neural_sidecar_requests_total{")
            and 'code="OK"' in line
            and 'route="exp-checkout"' in line
        ):
            variant = line.split('variant="', 1)[1].split('"', 1)[0]
            out[variant] = float(line.rsplit(" ", 1)[1])
    return out


def test_variant_header_forces_a_variant_and_no_key_means_random(stack) -> None:  # noqa: ANN001
    address = stack["sidecar"].address
    forced = asyncio.run(
        _call_many(
            address, [f"u{i}" for i in range(50)], extra_md=(("x-neural-variant", "treatment"),)
        )
    )
    assert set(forced) == {("2", "treatment")}
    anonymous = asyncio.run(_call_many(address, [None] * 400))
    seen = Counter(v for _, v in anonymous)
    assert set(seen) == {"treatment", "control"}  # both arms drawn, by the weights
    assert 60 <= seen["treatment"] <= 180  # 400 * 0.3 = 120, far outside 5 sigma otherwise


def test_routing_change_reaches_the_sidecar_within_a_second(stack) -> None:  # noqa: ANN001
    sidecar = stack["sidecar"]
    before = sidecar.health()["table_version"]
    changed = dict(
        EXPERIMENT,
        variants=[
            {"name": "treatment", "weight": 0.5, "model_name": "m", "model_version": "2"},
            {"name": "control", "weight": 0.5, "model_name": "m", "model_version": "1"},
        ],
    )
    try:
        write_routes(stack["routes"], [changed])
        elapsed = _wait_version(sidecar, lambda v: v > before, timeout=10)
        assert elapsed < 1.0, f"routing change took {elapsed:.2f}s"
        # And a route removal turns the model back into plain proxying.
        write_routes(stack["routes"], [])
        _wait_version(sidecar, lambda v: v > before + 1, timeout=10)
        got = asyncio.run(_call_many(sidecar.address, ["u1", "u2"]))
        assert got == [("", ""), ("", "")]
    finally:
        last = sidecar.health()["table_version"]
        write_routes(stack["routes"], [EXPERIMENT])
        _wait_version(sidecar, lambda v: v > last, timeout=10)


def test_oip_metadata_calls_and_unknown_methods_pass_through_unchanged(stack) -> None:  # noqa: ANN001
    async def run() -> None:
        async with (
            grpc.aio.insecure_channel(stack["sidecar"].address) as via,
            grpc.aio.insecure_channel(stack["model"].address) as direct,
        ):
            for method, req in [
                ("ServerLive", oip_pb2.ServerLiveRequest()),
                ("ServerReady", oip_pb2.ServerReadyRequest()),
                ("ModelReady", oip_pb2.ModelReadyRequest(name="m", version="1")),
                ("ServerMetadata", oip_pb2.ServerMetadataRequest()),
                ("ModelMetadata", oip_pb2.ModelMetadataRequest(name="m")),
            ]:
                path = f"/inference.GRPCInferenceService/{method}"
                a = await via.unary_unary(path, request_serializer=type(req).SerializeToString)(req)
                b = await direct.unary_unary(path, request_serializer=type(req).SerializeToString)(
                    req
                )
                assert a == b, method
            # Upstream errors keep their status and message.
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await infer_stub(via)(request(model="nope"), timeout=5)
            assert err.value.code() == grpc.StatusCode.NOT_FOUND
            assert "nope" in err.value.details()
            # Any other method is forwarded as raw bytes (the demo model does not know it).
            for _ in range(3):
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await via.unary_unary("/triton.Custom/Anything")(b"\x01\x02", timeout=5)
                assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
            # Triton's bidirectional ModelStreamInfer is streamed both ways, message by message.
            stream = via.stream_stream(
                "/inference.GRPCInferenceService/ModelStreamInfer",
                request_serializer=Req.SerializeToString,
                response_deserializer=oip_pb2.ModelStreamInferResponse.FromString,
            )
            reqs = [request([float(i)]) for i in range(5)] + [request(model="nope")]
            got = [r async for r in stream(iter(reqs), timeout=10)]
            assert [r.infer_response.outputs[0].name for r in got[:5]] == ["x_out"] * 5
            assert [
                np.frombuffer(r.infer_response.raw_output_contents[0], "<f4")[0] for r in got[:5]
            ] == [2.0 * i for i in range(5)]
            assert "nope" in got[5].error_message

    asyncio.run(run())


def test_callers_deadline_is_forwarded(tmp_path: Path) -> None:
    slow = start_demo("m", "--latency-ms", "2000")
    sidecar = start_sidecar(slow.address, None, metrics=False)
    try:

        async def run() -> float:
            async with grpc.aio.insecure_channel(sidecar.address) as ch:
                t0 = time.monotonic()
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await infer_stub(ch)(request(), timeout=0.3)
                assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
                return time.monotonic() - t0

        assert asyncio.run(run()) < 2.0
    finally:
        sidecar.stop()
        slow.stop()


def test_upstream_down_gives_unavailable_counted_as_errors(tmp_path: Path) -> None:
    from peers.procs import free_port

    sidecar = start_sidecar(f"127.0.0.1:{free_port()}", None)
    try:

        async def run() -> None:
            async with grpc.aio.insecure_channel(sidecar.address) as ch:
                for _ in range(3):
                    with pytest.raises(grpc.aio.AioRpcError) as err:
                        await infer_stub(ch)(request(), timeout=5)
                    assert err.value.code() == grpc.StatusCode.UNAVAILABLE

        asyncio.run(run())
        text = sidecar.metrics()
        assert (
            'neural_sidecar_requests_total{code="UNAVAILABLE",model="m",route="",variant=""} 3.0'
            in text
        )
    finally:
        sidecar.stop()


def test_without_a_control_plane_it_is_a_plain_proxy_and_health_says_so(tmp_path: Path) -> None:
    from peers.procs import free_port

    model = start_demo("m")
    sidecar = start_sidecar(model.address, f"127.0.0.1:{free_port()}", "--grace-seconds", "0.5")
    try:
        got = asyncio.run(_call_many(sidecar.address, ["u1"]))
        assert got == [("", "")]
        h = sidecar.health()
        assert (h["routing"], h["table_version"], h["control_plane_connected"]) == (
            "none",
            0,
            False,
        )

        async def grpc_health() -> tuple[int, int]:
            async with grpc.aio.insecure_channel(sidecar.address) as ch:
                stub = health_pb2_grpc.HealthStub(ch)
                overall = await stub.Check(health_pb2.HealthCheckRequest(service=""))
                routing = await stub.Check(
                    health_pb2.HealthCheckRequest(service="neural.mlops.sidecar.routing")
                )
                return overall.status, routing.status

        assert asyncio.run(grpc_health()) == (
            health_pb2.HealthCheckResponse.SERVING,
            health_pb2.HealthCheckResponse.NOT_SERVING,
        )
        assert "neural_sidecar_routing_table_version 0.0" in sidecar.metrics()
    finally:
        sidecar.stop()
        model.stop()


def test_a_variant_can_live_on_another_upstream(stack) -> None:  # noqa: ANN001
    other = start_demo("m2", "--bias", "100")
    sidecar = stack["sidecar"]
    canary = {
        "model_name": "mm",
        "route_id": "canary-1",
        "kind": "deployment",
        "variants": [
            {"name": "stable", "weight": 0.5, "model_name": "m"},
            {"name": "canary", "weight": 0.5, "model_name": "m2", "upstream": other.address},
        ],
    }
    before = sidecar.health()["table_version"]
    write_routes(stack["routes"], [EXPERIMENT, canary])
    try:
        _wait_version(sidecar, lambda v: v > before)

        async def run() -> dict[str, set[float]]:
            seen: dict[str, set[float]] = {}
            async with grpc.aio.insecure_channel(sidecar.address) as ch:
                stub = infer_stub(ch)
                for i in range(40):
                    call = stub(
                        request([1.0], model="mm"), metadata=(("x-user-id", f"u{i}"),), timeout=10
                    )
                    resp = await call
                    variant = dict(await call.trailing_metadata())["x-neural-variant"]
                    value = float(np.frombuffer(resp.raw_output_contents[0], "<f4")[0])
                    seen.setdefault(variant, set()).add(value)
            return seen

        # stable: 2*x from the sidecar's own upstream; canary: 2*x + 100 from the other one.
        assert asyncio.run(run()) == {"stable": {2.0}, "canary": {102.0}}
    finally:
        last = sidecar.health()["table_version"]
        write_routes(stack["routes"], [EXPERIMENT])
        _wait_version(sidecar, lambda v: v > last)
        other.stop()


def test_upstream_initial_metadata_reaches_the_caller_with_the_variant_header(
    stack,  # noqa: ANN001 - the module's control plane, with EXPERIMENT live
) -> None:
    """With --variant-header initial, a model server that sends initial metadata of its
    own keeps it through the sidecar: on pass-through calls, on unrouted models and, next
    to x-neural-variant, on routed ModelInfer (the first answer from such an upstream
    carries it in its trailers, since the header went out before the upstream answered;
    every later one in its headers)."""
    model, other = start_all(
        lambda: start_demo("m", "--header", "x-served-by=demo-1"),
        lambda: start_demo("plain", "--header", "x-served-by=demo-2"),
    )
    sidecar = start_sidecar(model.address, stack["cp"].address, "--variant-header", "initial")
    plain = start_sidecar(other.address, None, "--variant-header", "initial")
    try:
        _wait_version(sidecar, lambda v: v >= 1)

        async def run() -> None:
            async with grpc.aio.insecure_channel(sidecar.address) as ch:
                stub = infer_stub(ch)
                seen = []
                for i in range(4):
                    call = stub(request(), metadata=(("x-user-id", f"u{i}"),), timeout=10)
                    await call
                    initial = dict(await call.initial_metadata())
                    trailing = dict(await call.trailing_metadata())
                    assert initial["x-neural-variant"] in ("treatment", "control")
                    seen.append((initial.get("x-served-by"), trailing.get("x-served-by")))
                assert seen[0] == (None, "demo-1")
                assert seen[1:] == [("demo-1", None)] * 3
                meta = ch.unary_unary(
                    "/inference.GRPCInferenceService/ServerMetadata",
                    request_serializer=oip_pb2.ServerMetadataRequest.SerializeToString,
                )(oip_pb2.ServerMetadataRequest(), timeout=10)
                await meta
                assert dict(await meta.initial_metadata())["x-served-by"] == "demo-1"
            async with grpc.aio.insecure_channel(plain.address) as ch:
                call = infer_stub(ch)(request(model="plain"), timeout=10)
                await call
                initial = dict(await call.initial_metadata())
                assert initial["x-served-by"] == "demo-2"
                assert "x-neural-variant" not in initial

        asyncio.run(run())
    finally:
        for p in (plain, sidecar, other, model):
            p.stop()


@pytest.mark.parametrize("mode", ["trailing", "initial"])
def test_the_variant_header_goes_where_the_mode_says(stack, mode: str) -> None:  # noqa: ANN001
    """x-neural-variant is in the trailing metadata by default, in the initial metadata
    with --variant-header initial: on every routed answer, naming the variant the response's
    model_version belongs to, and on an upstream's error. The upstream's own headers reach
    the caller's initial metadata either way (in trailing mode from the first call on)."""
    model = start_demo("m", "--header", "x-served-by=demo-1")
    flags = ("--variant-header", mode) if mode == "initial" else ()
    sidecar = start_sidecar(model.address, stack["cp"].address, *flags)
    here, elsewhere = ("initial", "trailing") if mode == "initial" else ("trailing", "initial")
    version_of = {v["name"]: v["model_version"] for v in EXPERIMENT["variants"]}
    try:
        _wait_version(sidecar, lambda v: v >= 1)

        async def run() -> None:
            async with grpc.aio.insecure_channel(sidecar.address) as ch:
                stub = infer_stub(ch)
                for i in range(6):
                    call = stub(request(), metadata=(("x-user-id", f"u{i}"),), timeout=10)
                    resp = await call
                    md = {"initial": dict(await call.initial_metadata()),
                          "trailing": dict(await call.trailing_metadata())}
                    assert version_of[md[here]["x-neural-variant"]] == resp.model_version
                    assert "x-neural-variant" not in md[elsewhere]
                    if mode == "trailing":
                        assert md["initial"]["x-served-by"] == "demo-1"
                model.stop()
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await stub(request(), metadata=(("x-user-id", "u0"),), timeout=10)
                assert err.value.code() == grpc.StatusCode.UNAVAILABLE
                md = {"initial": dict(err.value.initial_metadata() or ()),
                      "trailing": dict(err.value.trailing_metadata() or ())}
                assert md[here]["x-neural-variant"] in version_of

        asyncio.run(run())
    finally:
        for p in (sidecar, model):
            p.stop()
