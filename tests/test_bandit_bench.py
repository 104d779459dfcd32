"""benchmarks/bandit.py --smoke runs end to end and prints every row."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bandit.py"


def test_bandit_benchmark_smoke() -> None:
    out = subprocess.run([sys.executable, str(BENCH), "--smoke"], capture_output=True, text=True,
                         timeout=240, check=True).stdout
    for row in ("resolve hash", "resolve bandit new", "resolve bandit seen",
                "resolve bandit full", "reweight 2 arms", "reweight 16 arms"):
        assert row in out, out
