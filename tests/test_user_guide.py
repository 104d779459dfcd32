"""docs/user-guide.md runs as written, embedded in an empty folder and against a real
control plane, and does what it says: after each section we look at the store the way a
user would (what is in production, what the test concluded, what the audit trail holds).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from support.guide import GuideRun, python_blocks
from support.processes import ServerProcess

from neural.mlops.ab_testing import ABTestManager, TestStatus, TrafficSplitStrategy
from neural.mlops.audit import AuditLogger, EventType, verify_export
from neural.mlops.deployment import DeploymentManager, DeploymentStatus
from neural.mlops.registry import ModelRegistry, ModelStage

EMBEDDED = "./mlops"


def _lines(printed: str) -> list[str]:
    return printed.strip().splitlines()


def _check_registry(location: str, printed: str, store_root: Path, workdir: Path) -> None:
    assert "refused: ana@example.com requested this promotion and may not approve it" in printed
    assert "auc: 0.871 -> 0.894 (+0.023)" in printed
    registry = ModelRegistry(location)
    v1 = registry.get_model_version("churn_model", "1.0.0")
    v2 = registry.get_model_version("churn_model", "1.1.0")
    assert v1.stage is ModelStage.PRODUCTION and v2.stage is ModelStage.DEVELOPMENT
    assert v2.tags == ["churn", "tabular"] and v2.metrics == {"auc": 0.894, "recall": 0.66}
    assert v2.created_by == "ana@example.com" and v2.framework == "sklearn"
    upload = (workdir / "churn-1.1.0.pkl").read_bytes()
    assert v2.artifact.stored and v2.artifact.sha256 == hashlib.sha256(upload).hexdigest()
    stored = store_root / "models" / "churn_model" / "1.1.0" / "churn-1.1.0.pkl"
    assert stored.read_bytes() == upload
    assert registry.list_pending_approvals() == []
    assert registry.get_model_by_alias("churn_model", "champion").version == "1.0.0"
    # Only the named reviewer's approval counts; the refused attempt changed nothing.
    approvals = [h for h in registry.get_history("churn_model", "1.0.0") if h.kind == "stage"]
    assert [h.to_value for h in approvals] == ["production"]
    assert approvals[0].actor == "lee@example.com"


def _check_ab(location: str, printed: str, scope: dict[str, Any]) -> None:
    lines = _lines(printed)
    assert lines[0] == "customer-7 keeps their arm: True" and lines[1] == "recorded: 2000"
    rates = {ln.split(":")[0]: float(ln.split(", ")[1].split("%")[0]) for ln in lines[2:4]}
    assert 10 < rates["control"] < 20 and 24 < rates["treatment"] < 36
    lift = float(lines[4].split("lift: ")[1].split("%")[0])
    assert 40 < lift < 200
    assert lines[5:] == ["recommendation: ship_treatment -> treatment",
                         "status: concluded | winner: treatment"]
    manager = ABTestManager(location)
    test = manager.get_test(scope["test"].test_id)
    assert test.status is TestStatus.CONCLUDED and test.winner == "treatment"
    assert test.traffic_split == 0.5 and test.created_by == "ana@example.com"
    # Assignment is the documented pure function of test and user (ASSIGNMENT.md), so
    # any process computes the same arm; once concluded, everyone gets the winner.
    batch: list[dict[str, object]] = scope["batch"]
    for n, record in enumerate(batch[:200]):
        digest = hashlib.sha256(f"{test.test_id}:customer-{n}".encode()).digest()
        bucket = int.from_bytes(digest[:8], "big") / 2**64
        assert record["variant"] == ("treatment" if bucket < 0.5 else "control")
    assert {manager.get_variant(test.test_id, user_id=f"customer-{n}") for n in range(5)} == {
        "treatment"
    }
    analysis = manager.analyze_test(test.test_id)
    json.dumps(analysis, allow_nan=False)
    assert analysis["control"]["n"] + analysis["treatment"]["n"] == 2001
    assert analysis["statistically_significant"] is True
    assert analysis["sequential"]["p_value"] < 0.05 and analysis["srm"]["detected"] is False
    assert set(analysis["treatment"]["custom_metrics"]) == {"offer_value"}
    assert analysis["recommendation"]["guardrails"] == []


def _check_deployments(location: str, printed: str, scope: dict[str, Any]) -> None:
    assert "shadow: 99.5% agreement over 200 pairs" in printed
    assert printed.count("verdict pass") == 1
    manager = DeploymentManager(location)
    shadow = manager.get_shadow(scope["shadow"].shadow_id)
    assert shadow.status.value == "stopped"
    dep = manager.get_deployment(scope["canary"].deployment_id)
    assert dep.status is DeploymentStatus.ROLLED_BACK and dep.stable_version == "1.0.0"
    assert dep.gate["checked"] and dep.gate["stage"] == "production"
    assert dep.rollback_reasons == ["latency p95 0.0710s > 0.0600s (1.5x baseline p95 0.0400s)"]
    events = manager.get_events(dep.deployment_id)
    assert [e.action for e in events] == ["created", "rolled_back"]
    assert events[-1].details["measured"]["request_count"] == 1500
    # Asking again gives the same answer and changes nothing.
    assert manager.check_deployment_health(dep.deployment_id, request_count=1500)[0] is True
    assert len(manager.get_events(dep.deployment_id)) == 2
    registry = ModelRegistry(location)
    production = registry.get_production_version("churn_model")
    assert production is not None and production.version == "1.0.0"
    assert registry.get_model_version("churn_model", "1.1.0").stage is ModelStage.ARCHIVED


def _check_audit(location: str, printed: str, scope: dict[str, Any], workdir: Path) -> None:
    lines = _lines(printed)
    assert lines[0] == "what happened to churn_model:1.1.0:"
    assert [ln.split()[1:] for ln in lines[1:7]] == [
        ["model_registered", "by", "ana@example.com"],
        ["promotion_requested", "by", "ana@example.com"],
        ["promotion_approved", "by", "lee@example.com"],
        ["model_stage_changed", "by", "lee@example.com"],
        ["model_deployed", "by", "ops@example.com"],
        ["model_stage_changed", "by", "ops@example.com"],
    ]
    assert "security violations: ['intruder@example.net']" in lines
    assert "unapproved production changes: ['churn_model:1.2.0-hotfix']" in lines
    audit = AuditLogger(location)
    report: Any = scope["report"]
    assert report.summary["security_violation_count"] == 1
    assert report.security_violations[0]["details"]["ip_address"] == "203.0.113.9"
    assert {a["actor"] for a in report.approvals_granted} == {"lee@example.com"}
    assert audit.get_report(report.report_id).total_events == report.total_events
    [violation] = audit.query_events(event_type=EventType.SECURITY_VIOLATION)
    assert violation.actor == "intruder@example.net" and len(violation.hash) == 64
    assert violation.request_id and violation.peer
    # The export is where the program ran, verifies with the public key alone, and
    # stops verifying when one event in it is edited.
    export = workdir / "churn-audit.jsonl"
    assert verify_export(export, audit.public_key()).valid
    exported: Any = scope["exported"]
    assert exported.count == len(export.read_text().splitlines()) - 1  # the seal's line
    tampered = workdir / "tampered.jsonl"
    tampered.write_text(export.read_text().replace("intruder@example.net", "someone@example.net"))
    assert not verify_export(tampered, audit.public_key()).valid
    assert audit.verify_chain().valid


def _check_ci(workdir: Path) -> None:
    workflow = (workdir / "churn-service" / ".github/workflows/ml-pipeline.yml").read_text()
    assert 'MODEL_NAME: "churn_model"' in workflow and "auc=0.85" in workflow
    assert (workdir / "churn-service" / ".gitlab-ci.yml").is_file()


def _check_lineage(location: str) -> None:
    registry = ModelRegistry(location)
    lineage = registry.get_model_version("churn_model", "1.3.0").lineage
    assert lineage.parent_version == "1.0.0" and lineage.code_revision.startswith("9fceb02")
    assert [d.uri for d in lineage.training_data] == ["s3://data/churn/2024-07/train.parquet"]
    assert [str(t.datatype) for t in lineage.signature.outputs] == ["FP32"]
    # Versions registered without lineage have an empty one.
    assert registry.get_model_version("churn_model", "1.1.0").lineage.empty


def _check_bandit(location: str, printed: str, scope: dict[str, Any]) -> None:
    lines = _lines(printed)
    assert lines[0] == "hour 1: treatment 0.50, control 0.50"  # the burn-in
    assert lines[1:4] == [f"hour {h}: treatment 0.90, control 0.10" for h in (2, 3, 4)]
    assert lines[-2:] == ["p-values valid: False", "recommendation: ship_treatment -> treatment"]
    manager = ABTestManager(location)
    test = manager.get_test(scope["bandit"].test_id)
    assert test.strategy == TrafficSplitStrategy.MULTI_ARMED_BANDIT
    assert test.bandit is not None and test.bandit.min_share == 0.1
    assert test.status is TestStatus.CONCLUDED and test.winner == "treatment"
    assert test.weights == {"treatment": 0.9, "control": 0.1}
    bandit = manager.analyze_test(test.test_id)["bandit"]
    assert [h["sequence"] for h in bandit["weight_history"]] == [1, 2, 3]
    assert bandit["p_best"]["treatment"] > 0.99
    assert bandit["regret"]["expected_cumulative_regret"] > 0


def _check_layers(location: str, printed: str, scope: dict[str, Any]) -> None:
    lines = _lines(printed)
    assert lines[0].startswith("churn 1.1.0 for enterprise: layer churn_model:default, range "
                               "(0.0, 0.4)")
    assert lines[1].startswith("offer wording: layer churn-copy, range (0.0, 1.0)")
    assert lines[2:] == ["refused: LAYER_RANGE_TAKEN | names the holder: True",
                         "customers in the enterprise test's range: 389 of 1000"]
    manager = ABTestManager(location)
    for name in ("enterprise", "wording", "too_big"):
        assert manager.get_test(scope[name].test_id).status is TestStatus.STOPPED
    assert manager.get_test(scope["wording"].test_id).targeting == ("x-country in [DE, AT, CH]",)


def test_every_python_block_of_the_guide_shows_its_output() -> None:
    blocks = python_blocks()
    assert len(blocks) >= 9
    assert all(b.output for b in blocks), [b.line for b in blocks if not b.output]


def test_user_guide_embedded(in_tmp: Path) -> None:
    run = GuideRun()
    assert _lines(run.section("1.")) == ["models so far: []"]
    assert (in_tmp / "mlops" / "mlops.db").is_file()
    _check_registry(EMBEDDED, run.section("2."), in_tmp / "mlops", in_tmp)
    _check_ab(EMBEDDED, run.section("3."), run.namespace)
    _check_deployments(EMBEDDED, run.section("4."), run.namespace)
    _check_audit(EMBEDDED, run.section("5."), run.namespace, in_tmp)
    key = in_tmp / "mlops" / "keys" / "audit_ed25519.pem"
    assert key.stat().st_mode & 0o777 == 0o600
    run.section("6.")
    _check_ci(in_tmp)
    run.section("8.")
    _check_lineage(EMBEDDED)
    _check_bandit(EMBEDDED, run.section("9."), run.namespace)
    assert _lines(run.section("11.")) == [
        "churn_model [('features_out', [1, 4]), ('score', [1])]", "ready: 200"
    ]
    _check_layers(EMBEDDED, run.section("12."), run.namespace)
    assert run.finished()


def test_user_guide_against_a_control_plane(in_tmp: Path, server: ServerProcess) -> None:
    run = GuideRun(server.url)
    assert _lines(run.section("1.")) == ["models so far: []"]
    _check_registry(server.url, run.section("2."), server.data_dir, in_tmp)
    _check_ab(server.url, run.section("3."), run.namespace)
    _check_deployments(server.url, run.section("4."), run.namespace)
    _check_audit(server.url, run.section("5."), run.namespace, in_tmp)
    events = AuditLogger(server.url).query_events(resource_id="churn_model:1.1.0")
    assert all(e.peer.startswith(("ipv4:", "ipv6:")) for e in events)
    run.section("6.")
    _check_ci(in_tmp)
    run.section("8.")
    _check_lineage(server.url)
    _check_bandit(server.url, run.section("9."), run.namespace)
    run.section("11.")
    _check_layers(server.url, run.section("12."), run.namespace)
    assert run.finished()
    # Nothing of the store is written where the client runs.
    assert not (in_tmp / "mlops").exists()
    assert not (server.data_dir / "churn-audit.jsonl").exists()
