"""The seed's audit block, verbatim, embedded and against a real control plane."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

from support.processes import ServerProcess
from support.seed import python_blocks, remote

from neural.mlops.audit import AuditLogger, EventType, verify_export

BLOCK = python_blocks("### 4. Audit Logging")[0]


def _run(block: str) -> tuple[str, dict]:
    out = io.StringIO()
    scope: dict = {"__name__": "__seed__"}
    with contextlib.redirect_stdout(out):
        exec(compile(block, "MLOPS.md", "exec"), scope)
    return out.getvalue(), scope


def _check(location: str, printed: str, scope: dict, workdir: Path) -> None:
    assert printed.splitlines() == [
        "Total events: 3",
        "Security violations: 1",
        # three users with one event each: the tie goes to the first name in order
        "Most active user: devops@company.com",
    ]
    events = scope["events"]
    assert [e.event_type for e in events] == [EventType.MODEL_DEPLOYED]
    ev = events[0]
    assert ev.actor == "devops@company.com"
    assert ev.resource_id == "fraud_detector:v2.0.0"
    assert ev.details["environment"] == "production" and ev.details["strategy"] == "canary"
    assert ev.request_id and ev.peer and len(ev.hash) == 64
    # The export lands where the caller runs, complete and verifiable (Q1 2024 is empty).
    export = workdir / "audit_trail_Q1_2024.json"
    doc = json.loads(export.read_text())
    assert doc["events"] == [] and doc["seal"]["count"] == 0
    assert verify_export(export, AuditLogger(location).public_key()).valid
    report = scope["report"]
    assert report.summary["security_violation_count"] == 1
    assert [v["actor"] for v in report.security_violations] == ["unknown@external.com"]
    assert report.security_violations[0]["details"]["ip_address"] == "192.168.1.1"
    assert report.approvals_granted and report.approvals_granted[0]["actor"] == "ml_manager@company.com"
    # Deployed before it was approved: the report must say so.
    assert [c["resource_id"] for c in report.unapproved_production_changes] == ["fraud_detector:v2.0.0"]
    assert report.chain_valid
    assert AuditLogger(location).get_report(report.report_id).total_events == 3
    assert AuditLogger(location).verify_chain().valid


def test_seed_audit_block_embedded(in_tmp: Path) -> None:
    printed, scope = _run(BLOCK)
    _check("./audit_logs", printed, scope, in_tmp)
    assert (in_tmp / "audit_logs" / "keys" / "audit_ed25519.pem").stat().st_mode & 0o777 == 0o600


def test_seed_audit_block_remote(in_tmp: Path, server: ServerProcess) -> None:
    printed, scope = _run(remote(BLOCK, "AuditLogger", server.url))
    _check(server.url, printed, scope, in_tmp)
    assert scope["events"][0].peer.startswith(("ipv4:", "ipv6:"))
    assert not (server.data_dir / "audit_trail_Q1_2024.json").exists()
