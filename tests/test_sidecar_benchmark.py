"""The overhead benchmark runs end to end in its --smoke mode (no timing is asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
    rows = json.loads(out.read_text())
    targets = {r["target"] for r in rows}
    assert {
        "(a) direct",
        "(c) grpc.aio pass-through",
        "(d) sidecar A/B + metrics",
        "(e) (d) + 100% shadow",
    } <= targets
    for r in rows:
        assert r["rps"] > 0
        if r["target"] != "(a) direct":
            assert r["cpu_us_per_request"] > 0
