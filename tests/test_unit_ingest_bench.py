"""The per-unit ingest benchmark's smoke mode (SQLite, and PostgreSQL when the local server
answers): it runs the server's ingest path and prints every row against its floor."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_benchmark_smoke() -> None:
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "unit_ingest.py"),
                          "--smoke"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    rows = [line.split() for line in out.stdout.splitlines() if line.startswith("sqlite")]
    assert [r[1] for r in rows] == ["fresh", "mixed", "floor"]
    assert all(float(r[2].removesuffix("us")) > 0 for r in rows)
