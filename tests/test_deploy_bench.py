"""The rollout benchmark runs (smoke mode) and prints its table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_rollout_benchmark_smoke() -> None:
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "rollout.py"), "--smoke"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.splitlines()
    assert lines[0].split()[:3] == ["row", "measured", "(median)"]
    assert lines[1].startswith("reaction 1 sidecar") and "(1 trial)" in lines[1]
    assert lines[2].startswith("cycle 20 active")
