"""The Node.js client (clients/node), built only from protos/, against a real control plane.

Needs node, npm and the client's node_modules (``tests/peers/setup_peers.sh`` runs
``npm ci``; in CI the fixture does it when they are missing). Runs the client's own unit
tests (assignment vectors) and its A/B workflow script against a ``neural-mlops serve``
subprocess, and checks the result from Python.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from support.peers import SETUP, in_ci, require_peer

from neural.mlops.ab_testing import ABTestManager
from neural.mlops.registry import ModelRegistry

NODE_DIR = Path(__file__).resolve().parents[1] / "clients" / "node"

pytestmark = pytest.mark.peers


@pytest.fixture(scope="module")
def node() -> str:
    node_bin, npm_bin = shutil.which("node"), shutil.which("npm")
    require_peer(bool(node_bin and npm_bin), "Node.js (node and npm)",
                 f"apt-get install nodejs npm, then {SETUP}")
    assert node_bin and npm_bin
    installed = (NODE_DIR / "node_modules" / "@grpc" / "grpc-js").is_dir()
    require_peer(installed or in_ci(), "the Node.js client's packages (clients/node/node_modules)")
    if not installed:
        res = subprocess.run(
            [npm_bin, "ci", "--no-audit", "--no-fund"],
            cwd=NODE_DIR,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    return node_bin


def test_package_is_built_from_the_contract_only() -> None:
    pkg = json.loads((NODE_DIR / "package.json").read_text())
    assert set(pkg["dependencies"]) == {"@grpc/grpc-js", "@grpc/proto-loader"}
    lock = json.loads((NODE_DIR / "package-lock.json").read_text())
    assert lock["packages"][""]["dependencies"] == pkg["dependencies"]
    sources = "".join(p.read_text() for p in (NODE_DIR / "src").glob("*.js"))
    assert "protoLoader.loadSync" in sources and "_pb" not in sources


def test_node_assignment_reproduces_the_contract_vectors(node: str) -> None:
    res = subprocess.run(
        [node, "--test", "test/"], cwd=NODE_DIR, capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "# fail 0" in res.stdout


def test_node_ab_workflow_against_a_real_server(node: str, server) -> None:  # type: ignore[no-untyped-def]
    res = subprocess.run(
        [node, "examples/ab_workflow.js", server.url, "fraud_detector"],
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["recorded"] == 4000
    assert summary["assignments_checked"] == 50
    assert summary["status"] == "TEST_STATUS_RUNNING"
    assert summary["statistically_significant"] is True
    assert summary["treatment_success_rate"] > summary["control_success_rate"]

    # What Node wrote is what Python reads.
    with ModelRegistry(server.url) as registry:
        v2 = registry.get_model_version("fraud_detector", "v2.0.0")
        assert v2.metrics == {"accuracy": 0.96}
        assert v2.artifact.sha256 == summary["versions"][1]["sha256"]
    with ABTestManager(server.url) as manager:
        analysis = manager.analyze_test(summary["test_id"], confidence_level=0.95)
        assert analysis["statistically_significant"] is True
        assert analysis["treatment"]["success_rate"] == pytest.approx(
            summary["treatment_success_rate"]
        )
        assert analysis["control"]["success_rate"] == pytest.approx(summary["control_success_rate"])

    # Server errors arrive as status + reason, and the script exits non-zero.
    again = subprocess.run(
        [node, "examples/ab_workflow.js", server.url, "fraud_detector"],
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 1
    assert "ALREADY_EXISTS: model version fraud_detector:v1.0.0 already exists" in again.stderr
