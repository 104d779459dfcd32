"""Shadow traffic: never delays or fails the primary; agreement, errors and drops counted."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
import time
from pathlib import Path

import grpc
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from neural.mlops.sidecar.mirror import Tolerance, compare  # noqa: E402
from neural.mlops.v1 import oip_pb2  # noqa: E402
from peers.procs import start_control_plane, start_demo, start_sidecar, write_routes  # noqa: E402
from test_sidecar_routing import request  # noqa: E402


def _route(shadows: list[dict]) -> dict:
    return {
        "model_name": "m",
        "route_id": "dep-shadow",
        "kind": "shadow",
        "variants": [{"name": "primary", "weight": 1.0, "model_name": "m"}],
        "shadows": shadows,
    }


def _shadow_totals(data_dir: Path, shadow_id: str) -> dict:
    with sqlite3.connect(data_dir / "mlops.db") as db:
        row = db.execute(
            "SELECT stats FROM shadow_windows WHERE shadow_id = ? AND window_start_us = -1",
            (shadow_id,),
        ).fetchone()
    return json.loads(row[0]) if row else {}


async def _timed_calls(address: str, n: int) -> tuple[list[bytes], list[float]]:
    answers, latencies = [], []
    async with grpc.aio.insecure_channel(address) as ch:
        stub = ch.unary_unary(
            "/inference.GRPCInferenceService/ModelInfer",
            request_serializer=oip_pb2.ModelInferRequest.SerializeToString,
        )
        for i in range(n):
            t0 = time.perf_counter()
            answers.append(await stub(request([float(i), 1.0]), timeout=10))
            latencies.append(time.perf_counter() - t0)
    return answers, latencies


def test_slow_and_failing_shadows_change_nothing_for_the_primary(tmp_path: Path) -> None:
    primary = start_demo("m")
    slow = start_demo("m", "--latency-ms", "2000")
    broken = start_demo("m", "--error-rate", "1")
    routes = tmp_path / "routes.json"
    write_routes(
        routes,
        [
            _route(
                [
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
                ]
            )
        ],
    )
    cp = start_control_plane(tmp_path / "cp", routes)
    sidecar = start_sidecar(
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
    )
    try:
        deadline = time.monotonic() + 20
        while sidecar.health()["routing"] != "live" and time.monotonic() < deadline:
            time.sleep(0.05)
        direct, _ = asyncio.run(_timed_calls(primary.address, 60))
        via, latencies = asyncio.run(_timed_calls(sidecar.address, 60))
        assert via == direct  # byte-for-byte the primary's answers
        # No call waited for the 2 s shadow (each would take >= 2 s if it had).
        assert max(latencies) < 1.0
        time.sleep(1.0)
        text = sidecar.metrics()
        # 60 copies each into a queue of 8 with 4 in flight: the slow shadow must drop.
        dropped = [
            ln
            for ln in text.splitlines()
            if ln.startswith("neural_sidecar_shadow_total{")
            and 'shadow="slow"' in ln
            and 'outcome="dropped"' in ln
        ]
        assert dropped and float(dropped[0].rsplit(" ", 1)[1]) > 0
        errors = [
            ln for ln in text.splitlines() if 'shadow="broken"' in ln and 'outcome="error"' in ln
        ]
        assert float(errors[0].rsplit(" ", 1)[1]) > 0
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not _shadow_totals(tmp_path / "cp", "broken").get(
            "shadow_errors"
        ):
            time.sleep(0.1)
        stored = _shadow_totals(tmp_path / "cp", "broken")
        assert stored["shadow_errors"] > 0 and stored["compared"] == 0
    finally:
        for p in (sidecar, cp, primary, slow, broken):
            p.stop()


def test_disagreeing_shadow_is_measured_and_sampled(tmp_path: Path) -> None:
    primary = start_demo("m")
    same = start_demo("m")
    biased = start_demo("m", "--bias", "0.5")
    routes = tmp_path / "routes.json"
    write_routes(
        routes,
        [
            _route(
                [
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
                ]
            )
        ],
    )
    cp = start_control_plane(tmp_path / "cp", routes)
    sidecar = start_sidecar(primary.address, cp.address, "--flush-interval", "0.2")
    try:
        deadline = time.monotonic() + 20
        while sidecar.health()["routing"] != "live" and time.monotonic() < deadline:
            time.sleep(0.05)
        asyncio.run(_timed_calls(sidecar.address, 200))
        deadline = time.monotonic() + 10
        while (
            time.monotonic() < deadline
            and _shadow_totals(tmp_path / "cp", "same").get("compared", 0) < 200
        ):
            time.sleep(0.1)
        same_stats = _shadow_totals(tmp_path / "cp", "same")
        assert same_stats["compared"] == same_stats["agreements"] == 200
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and sidecar.health()["shadow_queue"]:
            time.sleep(0.1)
        time.sleep(0.5)
        biased_stats = _shadow_totals(tmp_path / "cp", "biased")
        assert 60 <= biased_stats["compared"] <= 140  # 50 % of 200
        assert biased_stats["agreements"] == 0
        sample = biased_stats["disagreements"][0]
        assert "x_out" in sample["reason"] or "score" in sample["reason"]
        assert (
            json.loads(sample["shadow"])["x_out"][0]
            == json.loads(sample["primary"])["x_out"][0] + 0.5
        )
    finally:
        for p in (sidecar, cp, primary, same, biased):
            p.stop()


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
