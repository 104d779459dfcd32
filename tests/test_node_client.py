"""The Node.js client (clients/node), built only from protos/ and the specs beside them,
against a real control plane.

Needs node, npm and the client's node_modules (``tests/peers/setup_peers.sh`` runs
``npm ci``; in CI the fixture does it when they are missing). Runs the client's own unit
tests (assignment, audit and latency vectors), its A/B workflow script against a
``neural-mlops serve`` subprocess, and its offline audit verifier on exports a real
control plane made of a store holding hash version 1 and 2 events; checks the results
from Python.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from support.legacy_audit import make_pre_0012_store, v1_events
from support.peers import SETUP, in_ci, require_peer
from support.processes import start_server

from neural.mlops.ab_testing import ABTestManager
from neural.mlops.audit import AuditLogger, EventType, verify_export
from neural.mlops.registry import ModelRegistry

NODE_DIR = Path(__file__).resolve().parents[1] / "clients" / "node"
# What the client may depend on: gRPC, and for the specs a JCS library (RFC 8785), a JSON
# parser that keeps numbers' text (hash version 1) and a CSV parser (CSV exports).
ALLOWED_DEPENDENCIES = {"@grpc/grpc-js", "@grpc/proto-loader", "canonicalize", "lossless-json",
                        "csv-parse"}

pytestmark = pytest.mark.peers


@pytest.fixture(scope="module")
def node() -> str:
    node_bin, npm_bin = shutil.which("node"), shutil.which("npm")
    require_peer(bool(node_bin and npm_bin), "Node.js (node and npm)",
                 f"apt-get install nodejs npm, then {SETUP}")
    assert node_bin and npm_bin
    installed = all((NODE_DIR / "node_modules" / dep).is_dir() for dep in ALLOWED_DEPENDENCIES)
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
    assert set(pkg["dependencies"]) == ALLOWED_DEPENDENCIES
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


def _node_verify(node: str, path: Path, key: Path) -> tuple[int, dict]:
    res = subprocess.run([node, "examples/verify_audit_export.js", str(path), str(key)],
                         cwd=NODE_DIR, capture_output=True, text=True, timeout=120)
    assert res.returncode in (0, 1), res.stderr
    return res.returncode, json.loads(res.stdout)


@pytest.mark.skipif(bool(os.environ.get("NEURAL_MLOPS_TEST_DATABASE_URL")),
                    reason="builds an old SQLite store by hand")
def test_node_verifies_a_real_export_with_both_hash_versions(node: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    legacy = v1_events()
    make_pre_0012_store(data, legacy)
    server = start_server(data)
    try:
        with AuditLogger(server.url) as logger:
            logger.log_event(EventType.CUSTOM, resource_type="model", resource_id="m:new",
                             action="touch", details={"accuracy": 1.0, "threshold": 1e-07,
                                                      "\U0001f600": "astral", "\uff61": "bmp"})
            logger.log_model_deployment("m", "v2", user="ops@example.com",
                                        environment="production")
            key = tmp_path / "audit.pub"
            key.write_text(logger.public_key(), encoding="utf-8")
            exports = {}
            for fmt in ("jsonl", "json", "csv"):
                exports[fmt] = tmp_path / f"trail.{fmt}"
                logger.export_audit_trail(exports[fmt], format=fmt)
        # QueryEvents results verify from the messages alone, pages of 2, both versions.
        res = subprocess.run([node, "examples/verify_query_events.js", server.url, "2"],
                             cwd=NODE_DIR, capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stdout + res.stderr
        queried = json.loads(res.stdout)
        assert queried["valid"] and queried["versions"] == [1, 2]
        assert queried["eventsChecked"] >= len(legacy) + 2
    finally:
        server.stop()
    for fmt, path in exports.items():
        code, result = _node_verify(node, path, key)
        assert code == 0 and result["valid"], (fmt, result)
        assert result["eventsChecked"] >= len(legacy) + 2 and result["signatureValid"]
    lines = exports["jsonl"].read_text(encoding="utf-8").rstrip("\n").split("\n")
    versions = [json.loads(line)["hash_version"] for line in lines[1:]]
    assert versions[:len(legacy) + 1] == [1] * len(legacy) + [2]
    assert '"accuracy":1.0' in lines[1] and '"accuracy":1,' in lines[len(legacy) + 1]

    # An edit Python's float spelling hides from JSON.parse (1.0 -> 1, version 1), an edit
    # of a version 2 event, and a seal from another key: Node and Python agree.
    for name, old, new in (("v1", '"accuracy":1.0', '"accuracy":1'),
                           ("v2", '"threshold":1e-7', '"threshold":2e-7')):
        edited = tmp_path / f"edited-{name}.jsonl"
        edited.write_text(exports["jsonl"].read_text(encoding="utf-8").replace(old, new, 1),
                          encoding="utf-8")
        code, result = _node_verify(node, edited, key)
        python = verify_export(edited, public_key=key)
        assert code == 1 and not python.valid
        assert result["firstBadSeq"] == python.first_bad_seq > 0, (result, python)
    other = tmp_path / "other.pub"
    other.write_text(AuditLogger(tmp_path / "other-store").public_key(), encoding="utf-8")
    code, result = _node_verify(node, exports["csv"], other)
    assert code == 1 and not result["signatureValid"]
