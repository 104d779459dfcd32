"""The REST overhead benchmark runs end to end in its --smoke mode (no timing is asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_sidecar_rest_benchmark_smoke(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "sidecar_rest.py"), "--smoke",
         "--json", str(out)],
        capture_output=True, text=True, timeout=280,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "CPU (d)/(c)" in proc.stdout and "CPU (f)/(e)" in proc.stdout
    rows = json.loads(out.read_text())
    assert {r["target"] for r in rows} == {
        "(a) direct", "(c) aiohttp pass-through", "(d) sidecar REST, A/B + metrics",
        "(e) sidecar REST, param.* targeting", "(f) sidecar REST, param.* on gzip",
    }
    assert {r["concurrency"] for r in rows} == {1, 4}
    for r in rows:
        assert r["n"] > 0 and r["rps"] > 0
        if r["target"] != "(a) direct":
            assert r["cpu_us"] > 0
