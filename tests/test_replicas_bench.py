"""The replicas benchmark runs (smoke mode) and prints its table; needs PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from support import databases

ROOT = Path(__file__).resolve().parents[1]


def test_replicas_benchmark_smoke() -> None:
    if os.environ.get("CI") and not databases.on_postgres():
        pytest.skip("runs in the PostgreSQL half of CI (pytest -m storage)")
    why = databases.postgres().reachable()
    if why and not os.environ.get("CI"):
        pytest.skip(f"no PostgreSQL reachable ({why})")
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "replicas.py"), "--smoke"],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["row", "sqlite", "pg", "1", "replica", "pg", "3", "replicas"]
    assert lines[1].startswith("registry ops/s") and lines[2].startswith("audit events/s")
    assert lines[3].startswith("route fan-out") and "(5 trials)" in lines[3]
    assert lines[4].startswith("takeover after kill -9") and "(2 trials)" in lines[4]


pytestmark = pytest.mark.storage
