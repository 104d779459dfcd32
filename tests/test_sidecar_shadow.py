"""Shadow traffic: never delays or fails the primary; agreement, errors and drops counted."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from peers.procs import (  # noqa: E402
    start_all,
    start_control_plane,
    start_demo,
    start_sidecar,
    write_routes,
)
from support.databases import execute_sql  # noqa: E402
from test_sidecar_routing import request  # noqa: E402

from neural.mlops.sidecar.mirror import Tolerance, compare  # noqa: E402
from neural.mlops.v1 import oip_pb2  # noqa: E402


@pytest.fixture(scope="module")
def shadows(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Five demo models, one control plane with two shadowed routes, two sidecars.

    Route ``m``: slow (2 s) and always-failing shadows, served by a sidecar with a tiny
    mirror queue (8) and 4 shadow calls in flight, so copies must be dropped.
    Route ``n`` (rewritten to model ``m``): an identical shadow (100 %) and one whose
    outputs are off by 0.5 (50 %), served by a sidecar with the default queue.
    """
    tmp = tmp_path_factory.mktemp("shadow")
    primary, slow, broken, same, biased = start_all(
        lambda: start_demo("m"),
        lambda: start_demo("m", "--latency-ms", "2000"),
        lambda: start_demo("m", "--error-rate", "1"),
        lambda: start_demo("m"),
        lambda: start_demo("m", "--bias", "0.5"),
    )
    routes = tmp / "routes.json"
    write_routes(
        routes,
        [
            {
                "model_name": "m",
                "route_id": "dep-shadow-m",
                "kind": "shadow",
                "shadows": [
                    {
                        "shadow_id": "slow",
                        "model_name": "m",
                        "upstream": slow.address,
                        "percentage": 100,
                    },
                    {
                        "shadow_id": "broken",
                        "model_name": "m",
                        "upstream": broken.address,
                        "percentage": 100,
                    },
                ],
            },
            {
                "model_name": "n",
                "route_id": "dep-shadow-n",
                "kind": "deployment",
                "variants": [{"name": "primary", "weight": 1.0, "model_name": "m"}],
                "shadows": [
                    {
                        "shadow_id": "same",
                        "model_name": "m",
                        "model_version": "2",
                        "upstream": same.address,
                        "percentage": 100,
                    },
                    {
                        "shadow_id": "biased",
                        "model_name": "m",
                        "upstream": biased.address,
                        "percentage": 50,
                    },
                ],
            },
        ],
    )
    cp = start_control_plane(tmp / "cp", routes)
    small, default = start_all(
        lambda: start_sidecar(
            primary.address,
            cp.address,
            "--flush-interval",
            "0.2",
            "--shadow-queue",
            "8",
            "--shadow-in-flight",
            "4",
            "--shadow-timeout",
            "5",
            "--grace-seconds",
            "1",
        ),
        lambda: start_sidecar(
            primary.address, cp.address, "--flush-interval", "0.2", "--grace-seconds", "1"
        ),
    )
    procs = [small, default, cp, primary, slow, broken, same, biased]
    try:
        for s in (small, default):
            deadline = time.monotonic() + 20
            while s.health()["routing"] != "live" and time.monotonic() < deadline:
                time.sleep(0.05)
        yield {"primary": primary, "small": small, "default": default, "data": tmp / "cp"}
    finally:
        for p in procs:
            p.stop()


def _shadow_totals(data_dir: Path, shadow_id: str) -> dict:
    rows = execute_sql(data_dir, (
        "SELECT stats FROM shadow_windows WHERE shadow_id = ? AND window_start_us = -1",
        (shadow_id,),
    ))[0]
    row = rows[0] if rows else None
    return json.loads(row[0]) if row else {}


async def _timed_calls(address: str, n: int, model: str = "m") -> tuple[list[bytes], list[float]]:
    answers, latencies = [], []
    async with grpc.aio.insecure_channel(address) as ch:
        stub = ch.unary_unary(
            "/inference.GRPCInferenceService/ModelInfer",
            request_serializer=oip_pb2.ModelInferRequest.SerializeToString,
        )
        for i in range(n):
            t0 = time.perf_counter()
            answers.append(await stub(request([float(i), 1.0], model=model), timeout=10))
            latencies.append(time.perf_counter() - t0)
    return answers, latencies


def _metric(text: str, *parts: str) -> float:
    for line in text.splitlines():
        if line.startswith("neural_sidecar_shadow_total{") and all(p in line for p in parts):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_slow_and_failing_shadows_change_nothing_for_the_primary(shadows: dict[str, Any]) -> None:
    direct, _ = asyncio.run(_timed_calls(shadows["primary"].address, 60))
    via, latencies = asyncio.run(_timed_calls(shadows["small"].address, 60))
    assert via == direct  # byte-for-byte the primary's answers
    # No call waited for the 2 s shadow (each would take >= 2 s if it had).
    assert max(latencies) < 1.0
    time.sleep(0.5)
    text = shadows["small"].metrics()
    # 60 copies into a queue of 8 with 4 in flight: the slow shadow must drop some.
    assert _metric(text, 'shadow="slow"', 'outcome="dropped"') > 0
    assert _metric(text, 'shadow="broken"', 'outcome="error"') > 0
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not _shadow_totals(shadows["data"], "broken").get(
        "shadow_errors"
    ):
        time.sleep(0.1)
    stored = _shadow_totals(shadows["data"], "broken")
    assert stored["shadow_errors"] > 0 and stored["compared"] == 0


def test_disagreeing_shadow_is_measured_and_sampled(shadows: dict[str, Any]) -> None:
    sidecar = shadows["default"]
    asyncio.run(_timed_calls(sidecar.address, 200, model="n"))
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and (
        _shadow_totals(shadows["data"], "same").get("compared", 0) < 200
        or sidecar.health()["shadow_queue"]
    ):
        time.sleep(0.1)
    time.sleep(0.5)
    same_stats = _shadow_totals(shadows["data"], "same")
    assert same_stats["compared"] == same_stats["agreements"] == 200
    biased_stats = _shadow_totals(shadows["data"], "biased")
    assert 60 <= biased_stats["compared"] <= 140  # 50 % of 200
    assert biased_stats["agreements"] == 0
    sample = biased_stats["disagreements"][0]
    assert "x_out" in sample["reason"] or "score" in sample["reason"]
    assert (
        json.loads(sample["shadow"])["x_out"][0] == json.loads(sample["primary"])["x_out"][0] + 0.5
    )


def _resp(outputs: dict[str, np.ndarray]) -> bytes:
    r = oip_pb2.ModelInferResponse()
    for name, arr in outputs.items():
        dt = {"f": "FP32" if arr.dtype == np.float32 else "FP64", "i": "INT64", "b": "BOOL"}[
            arr.dtype.kind
        ]
        r.outputs.add(name=name, datatype=dt, shape=list(arr.shape))
        r.raw_output_contents.append(arr.tobytes())
    return r.SerializeToString()


def test_comparison_is_exact_for_ints_and_tolerant_for_floats() -> None:
    tol = Tolerance(rtol=1e-5, atol=1e-8)
    f = np.array([1.0, 2.0, 3.0], dtype=np.float32)
    assert compare(_resp({"y": f}), _resp({"y": f * (1 + 1e-7)}), tol)[0]
    assert not compare(_resp({"y": f}), _resp({"y": f + 1e-3}), tol)[0]
    i = np.array([1, 2, 3], dtype=np.int64)
    assert compare(_resp({"c": i}), _resp({"c": i.copy()}), tol)[0]
    assert not compare(_resp({"c": i}), _resp({"c": i + np.array([0, 0, 1])}), tol)[0]
    b = np.array([True, False])
    assert not compare(_resp({"b": b}), _resp({"b": ~b}), tol)[0]
    ok, why = compare(_resp({"y": f}), _resp({"z": f}), tol)
    assert not ok and "outputs differ" in why
    ok, why = compare(_resp({"y": f}), _resp({"y": f.reshape(3, 1)}), tol)
    assert not ok and "shape" in why
    # Top-1 mode: scores may move as long as every row's argmax holds.
    scores = np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2]], dtype=np.float32)
    drifted = np.array([[0.2, 0.5, 0.3], [0.4, 0.35, 0.25]], dtype=np.float32)
    flipped = np.array([[0.2, 0.5, 0.3], [0.3, 0.45, 0.25]], dtype=np.float32)
    top1 = Tolerance(top1=True)
    assert not compare(_resp({"p": scores}), _resp({"p": drifted}), tol)[0]
    assert compare(_resp({"p": scores}), _resp({"p": drifted}), top1)[0]
    assert not compare(_resp({"p": scores}), _resp({"p": flipped}), top1)[0]


async def test_a_mirrored_call_is_rewritten_for_the_shadow_and_marked_as_shadow_traffic() -> None:
    from neural.mlops.sidecar.demo_model import DemoModelConfig, DemoModelServer
    from neural.mlops.sidecar.metrics import Aggregator
    from neural.mlops.sidecar.mirror import Mirror
    from neural.mlops.sidecar.router import Shadow
    from neural.mlops.sidecar.upstream import Upstreams

    target = DemoModelServer(DemoModelConfig(listen="127.0.0.1:0", name="m"))
    await target.start()
    upstreams = Upstreams(target.address)
    mirror = Mirror(upstreams, queue_size=4, max_in_flight=1)
    mirror.start()
    try:
        slot = Aggregator().shadow_slot("m", "dep-1", "s1")
        shadow = Shadow("s1", "m", "v9", "", 1.0, slot)
        original = request([1.0, 2.0])
        original.model_version = "1"
        original.parameters["content_type"].string_param = "np"
        primary = await upstreams.unary("", "/inference.GRPCInferenceService/ModelInfer")(
            original.SerializeToString()
        )
        mirror.submit(shadow, original.SerializeToString(), (), primary, 0.001, "req-1")
        await asyncio.wait_for(mirror.queue.join(), 10)
        seen = target.model.last_request
        assert seen is not None
        assert (seen.model_name, seen.model_version) == ("m", "v9")
        assert seen.parameters["neural_shadow"].bool_param is True
        assert seen.parameters["content_type"].string_param == "np"  # the caller's are kept
        assert list(seen.raw_input_contents) == list(original.raw_input_contents)
        assert (slot.mirrored, slot.agreed, slot.errors) == (1, 1, 0)
    finally:
        await mirror.stop(1)
        await upstreams.close()
        await target.stop()
