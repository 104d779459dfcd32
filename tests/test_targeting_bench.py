"""The targeting benchmark's smoke mode runs and prints every case with its ratio."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_benchmark_smoke() -> None:
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "targeting.py"), "--smoke"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["case", "median", "ns", "spread", "ns", "ratio"]
    cases = [ln[:38].strip() for ln in lines[1:]]
    assert cases == ["no condition (baseline)", "1 header condition", "3 header conditions",
                     "1 param condition, 64 KiB request", "1 param condition, 4 MiB request",
                     "protobuf decode, 64 KiB (reference)", "protobuf decode, 4 MiB (reference)"]
    assert all(ln.rstrip().endswith("x") for ln in lines[1:])
