"""benchmarks/abtest.py --smoke runs end to end and prints every row."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "abtest.py"


def test_abtest_benchmark_smoke() -> None:
    out = subprocess.run([sys.executable, str(BENCH), "--smoke"], capture_output=True, text=True,
                         timeout=240, check=True).stdout
    for row in ("assign pure", "assign grpc", "record batched", "analyze 10^3", "analyze 10^8",
                "analysis engine"):
        assert row in out, out
    if "gbstats not installed" not in out:
        line = next(x for x in out.splitlines() if x.startswith("agreement with gbstats"))
        rel = float(line.split("Welch p-value max relative diff = ")[1].split(",")[0])
        assert rel < 1e-9
