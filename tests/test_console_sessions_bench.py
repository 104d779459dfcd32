"""The console session store benchmark's smoke mode: every row measured on SQLite (and
on PostgreSQL when one answers), the ratios against the floor printed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_benchmark_smoke() -> None:
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "console_sessions.py"),
                          "--smoke"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    rows = [line.split() for line in out.stdout.splitlines() if line.startswith("sqlite")]
    assert [r[1] for r in rows] == ["floor", "unseal", "find", "find+touch", "create"]
    for row in rows:
        assert row[2].endswith("us") and float(row[2][:-2]) > 0
        assert row[3].endswith("x")
