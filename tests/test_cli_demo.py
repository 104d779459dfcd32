"""``neural-mlops demo``: the one command of the README's first line, run for real."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from neural.mlops.cli._demo_traffic import split_line


def _callers_saw(line: str) -> dict[str, int]:
    """``... | callers saw v2  90% v3  10% | ...`` -> {"v2": 90, "v3": 10}."""
    shares = line.split("callers saw ", 1)[1].split(" | ", 1)[0].split()
    return {name: int(pct.rstrip("%")) for name, pct in zip(shares[::2], shares[1::2],
                                                            strict=True)}


def test_callers_saw_is_the_split_by_version_of_the_calls_given() -> None:
    calls = [("v2", True)] * 9 + [("v3", False)]
    line = split_line(calls)
    assert _callers_saw(line) == {"v2": 90, "v3": 10}
    assert "errors 10.0%" in line and "10 req/s" in line
    assert split_line([]) == "no traffic yet"


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
    # The sidecar really carried traffic, and the progress display showed the live split
    # of each canary phase by version: only that phase's two versions, never role names.
    for version, stable in (("v2", "v1"), ("v3", "v2")):
        seen = [_callers_saw(line) for line in out.splitlines()
                if line.startswith(f"   {version} [") and "callers saw" in line]
        assert seen, out[-4000:]
        assert set().union(*seen) <= {version, stable}, seen
        assert any(set(s) == {version, stable} for s in seen), seen
    # At v3's first step (10%), v3 serves a minority of the calls, not the 92% of the
    # previous phase's canary.
    first_step = [_callers_saw(line) for line in out.splitlines()
                  if line.startswith("   v3 [##") and " 10.0% in_progress" in line
                  and "callers saw" in line]
    assert first_step and all(s.get("v3", 0) < 50 for s in first_step), first_step
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
