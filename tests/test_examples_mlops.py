"""examples/mlops/: every example runs, embedded (the default) and against a control plane."""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "mlops"
ORDER = [
    "model_lifecycle.py",
    "ab_testing_workflow.py",
    "shadow_deployment.py",
    "ci_integration.py",
    "compliance_reporting.py",
]
EXPECT = {
    "model_lifecycle.py": [
        "production: fraud_detector:v2.0.0; v1 is archived",
        "self-approval refused",
        "downloaded v2.0.0.pt: 'weights of fraud_detector v2.0.0'",
    ],
    "ab_testing_workflow.py": [
        "significant: True",
        "'action': 'ship_treatment'",
        "concluded: winner=treatment",
    ],
    "shadow_deployment.py": [
        "verdict pass",
        "deployment rolled back: ['latency p95 0.0800s > 0.0750s",
        "status rolled_back",
    ],
    "ci_integration.py": [
        "wrote .github/workflows/ml-pipeline.yml (github)",
        "promoted: credit_scorer:ci-1",
        "pipeline stopped at the gate; production is still credit_scorer:ci-1",
    ],
    "compliance_reporting.py": [
        "Security violations: 1",
        "Unapproved production changes:",
        "Audit chain valid: True",
        "export verifies: True",
        "tampered copy verifies: False",
    ],
}


def test_every_listed_example_exists() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(ORDER)


def _check(name: str, stdout: str) -> None:
    for expected in EXPECT[name]:
        assert expected in stdout, f"{name}: {expected!r} missing from:\n{stdout}"


def _run_in_process(
    cwd: Path, capsys: pytest.CaptureFixture[str], *extra: str, names: list[str] = ORDER
) -> dict[str, str]:
    """Run each example as __main__ in this interpreter (imports already warm)."""
    outputs = {}
    old_cwd, old_argv = Path.cwd(), sys.argv
    os.chdir(cwd)
    try:
        for name in names:
            sys.argv = [str(EXAMPLES / name), *extra]
            runpy.run_path(str(EXAMPLES / name), run_name="__main__")
            outputs[name] = capsys.readouterr().out
            _check(name, outputs[name])
    finally:
        os.chdir(old_cwd)
        sys.argv = old_argv
    return outputs


def test_examples_run_embedded(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = _run_in_process(tmp_path, capsys)
    assert (tmp_path / "mlops-example").is_dir()
    # The compliance report sees what the earlier examples did in the same store.
    assert "rollbacks: 1" in out["compliance_reporting.py"]


def test_examples_run_against_a_control_plane(
    server,
    tmp_path: Path,  # type: ignore[no-untyped-def]
    capsys: pytest.CaptureFixture[str],
) -> None:
    _run_in_process(tmp_path, capsys, "--target", server.url)
    assert not (tmp_path / "mlops-example").exists()  # nothing was stored locally


def test_an_example_runs_as_a_script(tmp_path: Path) -> None:
    name = "ci_integration.py"
    res = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert res.returncode == 0, f"{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    _check(name, res.stdout)
