"""``neural-mlops deploy`` and ``neural-mlops shadow`` against an embedded store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import structlog

from neural.mlops.cli import main
from neural.mlops.server.logging import configure_logging


@pytest.fixture(scope="module", autouse=True)
def _logging_outside_capsys() -> None:
    """Configure structlog before capsys swaps sys.stderr: loggers cache the stream they
    were built with, and a test's captured stream is closed after it (later tests would log
    into a closed file)."""
    if not structlog.is_configured():
        configure_logging("warning")


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_deploy_lifecycle_from_the_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = str(tmp_path / "d")
    code, out, _ = _run(
        capsys,
        "deploy",
        "create",
        "fraud",
        "v2",
        "--target",
        target,
        "--created-by",
        "ops@x.com",
        "--steps",
        "10,50",
        "--interval",
        "1",
        "--json",
    )
    assert code == 0
    dep = json.loads(out)
    assert dep["status"] == "in_progress" and dep["plan"]["steps"] == [10.0, 50.0, 100.0]
    dep_id = dep["deployment_id"]

    code, out, err = _run(
        capsys, "deploy", "create", "fraud", "v3", "--target", target, "--created-by", "ops@x.com"
    )
    assert code == 5 and "already has an active deployment" in err
    code, _, err = _run(
        capsys,
        "deploy",
        "create",
        "other",
        "v1",
        "--target",
        target,
        "--created-by",
        "x",
        "--steps",
        "50,10",
    )
    assert code == 2 and "strictly increasing" in err

    code, out, _ = _run(
        capsys, "deploy", "promote", dep_id, "--target", target, "--actor", "lead@x.com"
    )
    assert code == 0 and "[50%]" in out
    assert _run(capsys, "deploy", "pause", dep_id, "--target", target, "--reason", "lunch")[0] == 0
    assert _run(capsys, "deploy", "resume", dep_id, "--target", target)[0] == 0
    code, out, _ = _run(
        capsys, "deploy", "rollback", dep_id, "--target", target, "--reason", "drill"
    )
    assert code == 0 and "rolled_back" in out

    code, out, _ = _run(capsys, "deploy", "status", dep_id, "--target", target)
    lines = out.splitlines()
    assert any(line.startswith("status") and "rolled_back" in line for line in lines)
    actions = [line.split()[1] for line in lines if line[:2].isdigit() and ":" in line[:8]]
    assert actions == ["created", "advanced", "paused", "resumed", "rolled_back"]

    code, out, _ = _run(capsys, "deploy", "watch", dep_id, "--target", target)
    assert code == 1 and out.strip().endswith("rolled_back (manual rollback by anonymous: drill)")
    code, out, _ = _run(capsys, "deploy", "status", "--target", target, "--json")
    assert [d["status"] for d in json.loads(out)] == ["rolled_back"]
    assert _run(capsys, "deploy", "status", "dep-missing", "--target", target)[0] == 3


def test_shadow_start_compare_stop(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from neural.mlops.deployment import DeploymentManager

    target = str(tmp_path / "s")
    code, out, _ = _run(
        capsys,
        "shadow",
        "start",
        "fraud:v1",
        "fraud:v2",
        "--target",
        target,
        "--percentage",
        "25",
        "--json",
    )
    assert code == 0
    shadow_id = json.loads(out)["shadow_id"]
    m = DeploymentManager(target)
    for i in range(100):
        m.record_shadow_comparison(shadow_id, {"y": 1}, {"y": 1 if i % 50 else 0}, 0.010, 0.012)
    code, out, _ = _run(capsys, "shadow", "compare", shadow_id, "--target", target)
    assert code == 0 and "agreement_rate" in out and "98.00%" in out and "pass" in out
    assert "disagreement: primary={'y': 1} shadow={'y': 0}" in out
    assert (
        _run(
            capsys,
            "shadow",
            "start",
            "fraud:v1",
            "fraud:v2",
            "--target",
            target,
            "--percentage",
            "120",
        )[0]
        == 2
    )
    code, out, _ = _run(capsys, "shadow", "stop", shadow_id, "--target", target)
    assert code == 0 and "stopped" in out
    assert _run(capsys, "shadow", "stop", shadow_id, "--target", target)[0] == 5
