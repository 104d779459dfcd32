"""``neural-mlops demo``: the one command of the README's first line, run for real."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_demo_runs_ab_test_canary_and_rollback(tmp_path: Path) -> None:
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "neural.mlops",
            "demo",
            "--fast",
            "--data-dir",
            str(tmp_path / "demo"),
        ],
        capture_output=True,
        text=True,
        timeout=280,
    )
    out = res.stdout
    assert res.returncode == 0, out[-4000:] + res.stderr[-4000:]
    # The A/B test reached a verdict and was concluded.
    assert "verdict after" in out and ": ship_treatment (" in out
    assert "winner treatment" in out
    # v2 went through every canary step under live traffic and was promoted.
    for pct in (
        "10.0% -> in_progress",
        " 25.0% -> in_progress",
        " 50.0% -> in_progress",
        "100.0% -> completed",
    ):
        assert pct in out
    assert "canary v2       promoted to 100% in 4 steps" in out
    # v3 failed a quarter of its calls and the controller rolled it back by itself.
    assert "canary v3       rolled back: error rate" in out
    # The rollback put the registry back: v2 serves and is PRODUCTION again, v3 archived.
    assert "registry        PRODUCTION v2; archived v1, v3" in out
    # The sidecar really carried traffic, and the progress display showed the live split.
    assert "callers saw" in out and "stable" in out and "canary" in out
    sent = int(out.split("requests sent through the sidecar:")[1].split()[0])
    assert sent > 100
    # Every child process was stopped; their logs stay in the given folder.
    assert sorted(p.name for p in (tmp_path / "demo" / "logs").iterdir()) == [
        "control-plane.log",
        "model-v1.log",
        "model-v2.log",
        "model-v3.log",
        "sidecar.log",
    ]
