"""The overhead benchmark runs end to end in its --smoke mode (no timing is asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from neural.mlops.v1 import oip_pb2

ROOT = Path(__file__).resolve().parents[1]


def test_sidecar_overhead_benchmark_smoke(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "sidecar_overhead.py"),
            "--smoke",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "CPU (d)/(c)" in proc.stdout
    assert "CPU (l)/(d)" in proc.stdout  # 20 tests in 5 layers against one test
    rows = json.loads(out.read_text())
    targets = {r["target"] for r in rows}
    assert {
        "(a) direct",
        "(c) grpc.aio pass-through",
        "(d) sidecar A/B + metrics",
        "(e) (d) + 100% shadow",
        "(l) (d), 20 tests in 5 layers",
    } <= targets
    for r in rows:
        assert r["rps"] > 0
        if r["target"] != "(a) direct":
            assert r["cpu_us_per_request"] > 0


def test_passthrough_baseline_forwards_what_a_proxy_must() -> None:
    """Row (c) is the floor for forwarding a gRPC call, so it must forward one: the model's
    headers, trailers and error status come back through it; the bytes-only row (c0)
    drops the metadata."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from peers.procs import start_demo
    from sidecar_overhead import INFER, _request, start_passthrough

    # A trailing x-neural-metric-* and an initial x-served-by on every answer.
    model = start_demo("bench", "--emit-metric", "--header", "x-served-by=demo")
    procs = [model]
    try:
        full = start_passthrough(model.address)
        procs.append(full)
        bare = start_passthrough(model.address, "--bytes-only")
        procs.append(bare)
        with grpc.insecure_channel(full.address) as ch:
            call = ch.unary_unary(INFER)
            answer, outcome = call.with_call(
                _request(), metadata=(("x-user-id", "u1"),), timeout=10
            )
            assert answer
            assert any(k == "x-neural-metric-output_mean" for k, _ in outcome.trailing_metadata())
            assert ("x-served-by", "demo") in tuple(outcome.initial_metadata())
            unknown = oip_pb2.ModelInferRequest(model_name="nope").SerializeToString()
            with pytest.raises(grpc.RpcError) as err:
                call(unknown, timeout=10)
            assert err.value.code() == grpc.StatusCode.NOT_FOUND
            assert "nope" in err.value.details()
        with grpc.insecure_channel(bare.address) as ch:
            _, outcome = ch.unary_unary(INFER).with_call(_request(), timeout=10)
            assert not any(k.startswith("x-neural-") for k, _ in outcome.trailing_metadata())
            assert ("x-served-by", "demo") not in tuple(outcome.initial_metadata())
    finally:
        for p in reversed(procs):
            p.stop()


def test_grpc_header_cost_benchmark_smoke() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "grpc_header_cost.py"), "--smoke"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [
        line.split()
        for line in proc.stdout.splitlines()
        if line.split()[:1]
        and line.split()[0] in ("none", "trailing", "initial", "initial-concurrent")
    ]
    assert sorted({(r[0], r[1]) for r in rows}) == sorted(
        (m, c) for m in ("none", "trailing", "initial", "initial-concurrent") for c in ("1", "32")
    )
    assert all(float(r[2]) > 0 and float(r[4]) > 0 for r in rows)
