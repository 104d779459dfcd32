"""The audit benchmark's smoke mode (it builds and measures its own SQLite store, so it is
not part of the PostgreSQL half of CI)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_benchmark_smoke() -> None:
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "audit.py"), "--smoke"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    for metric in ("ingest", "query", "export", "verify"):
        assert metric in out.stdout
