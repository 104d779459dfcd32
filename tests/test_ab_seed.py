"""The seed's A/B testing block, verbatim, embedded and against a real control plane."""

from __future__ import annotations

import contextlib
import io
import json
import random
from pathlib import Path

from support.processes import ServerProcess
from support.seed import python_blocks, remote

from neural.mlops.ab_testing import ABTestManager, TestStatus

BLOCK = python_blocks("### 2. A/B Testing Framework")[0]
ANALYSIS_PART = BLOCK[BLOCK.index("# Analyze results"):]


def _run(code: str, namespace: dict | None = None) -> tuple[str, dict]:
    ns = {"__name__": "__seed__", **(namespace or {})}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "MLOPS.md", "exec"), ns)
    return out.getvalue(), ns


def _check_block_effects(location: str, ns: dict) -> None:
    manager = ABTestManager(location)
    test = manager.get_test(ns["test"].test_id)
    assert test.status is TestStatus.RUNNING
    assert test.traffic_split == 0.1 and test.created_by == "ml_engineer@company.com"
    assert ns["variant"] in ("control", "treatment")
    # the same user gets the same variant again, in this process and any other
    assert manager.get_variant(test.test_id, user_id="user123") == ns["variant"]
    analysis = ns["analysis"]
    json.dumps(analysis, allow_nan=False)
    assert analysis["treatment"]["n"] == 1 and analysis["treatment"]["success_rate"] == 1.0
    assert analysis["treatment"]["custom_metrics"]["accuracy"]["mean"] == 0.96
    assert analysis["control"]["n"] == 0
    assert analysis["statistically_significant"] is False
    assert analysis["recommendation"]["action"] == "keep_running"
    assert analysis["warnings"]


def _significant_namespace(location: str) -> dict:
    """A test with enough traffic for the block's `if` branch (which only prints then)."""
    manager = ABTestManager(location)
    test = manager.create_test(name="significant", control_variant="m:v1", treatment_variant="m:v2",
                               traffic_split=0.5)
    manager.start_test(test.test_id)
    rng = random.Random(5)
    records = [{"variant": v, "success": rng.random() < p, "latency": 0.02}
               for v, p in (("control", 0.10), ("treatment", 0.15)) for _ in range(4000)]
    manager.record_requests(test.test_id, records)
    return {"manager": manager, "test": test}


def _check_printed(printed: str) -> None:
    lines = printed.strip().splitlines()
    assert lines[0] == "Treatment variant is significantly better!"
    assert lines[1].startswith("Improvement: ") and lines[1].endswith("%")
    assert 30 < float(lines[1].split()[1].rstrip("%")) < 70
    assert lines[2].startswith("Control success rate: ") and lines[3].startswith("Treatment success rate: ")


def test_seed_ab_block_embedded(in_tmp: Path) -> None:
    printed, ns = _run(BLOCK)
    assert printed == ""  # one request is not significant
    _check_block_effects("./ab_tests", ns)
    assert (in_tmp / "ab_tests").is_dir()
    printed, _ = _run(ANALYSIS_PART, _significant_namespace("./ab_tests"))
    _check_printed(printed)


def test_seed_ab_block_remote(in_tmp: Path, server: ServerProcess) -> None:
    printed, ns = _run(remote(BLOCK, "ABTestManager", server.url))
    assert printed == ""
    _check_block_effects(server.url, ns)
    assert not (in_tmp / "ab_tests").exists()
    printed, _ = _run(ANALYSIS_PART, _significant_namespace(server.url))
    _check_printed(printed)
