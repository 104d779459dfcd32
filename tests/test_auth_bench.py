"""benchmarks/auth_cost.py --smoke runs end to end and prints every row and the verdict."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "auth_cost.py"


def test_auth_cost_benchmark_smoke() -> None:
    out = subprocess.run([sys.executable, str(BENCH), "--smoke"], capture_output=True, text=True,
                         timeout=280, check=True).stdout
    for row in ("none (TLS)", "API token", "OIDC JWT (same token)", "OIDC JWT (new token per call)",
                "mTLS", "none (plaintext, reference)", "target <= 1.15x"):
        assert row in out, out
    # Timing is reported, not asserted; the numbers must at least be numbers.
    line = next(x for x in out.splitlines() if x.startswith("mTLS"))
    assert float(line.split()[1]) > 0
