"""The console benchmark's smoke mode (it builds its own SQLite store, so it is not part of
the PostgreSQL half of CI): every page row is measured through the console and over gRPC."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_benchmark_smoke() -> None:
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "console.py"), "--smoke",
                          "--json"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    results = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(results) == {"overview", "model", "versions", "sorted", "audit",
                            "experiment"}
    for row in results.values():
        assert row["min_ms"] <= row["median_ms"] <= row["p95_ms"] <= row["max_ms"]
        assert row["first_ms"] > 0
        assert row["grpc_median_ms"] > 0
