"""A compliance reviewer's view of one release: approval, canary promotion, report."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from neural.mlops.audit import AuditLogger
from neural.mlops.deployment import DeploymentManager, DeploymentStrategy
from neural.mlops.registry import ModelRegistry, ModelStage


def test_approved_release_promoted_by_canary_is_not_an_unapproved_change(tmp_path: Path) -> None:
    store = tmp_path / "store"
    registry = ModelRegistry(store)
    for version in ("v1", "v2"):
        registry.register_model(name="fraud", version=version, created_by="ds@x.com")
        registry.request_promotion("fraud", version, ModelStage.PRODUCTION, requested_by="ml@x.com")
        registry.approve_promotion("fraud", version, approver="boss@x.com")
    deployments = DeploymentManager(store, registry=registry)
    dep = deployments.create_deployment(model_name="fraud", model_version="v2",
                                        strategy=DeploymentStrategy.CANARY, created_by="sre@x.com")
    done = deployments.promote(dep.deployment_id, actor="sre@x.com", reason="looks good", full=True)
    assert done.status.value == "completed"

    report = AuditLogger(store).generate_compliance_report(
        start_date=datetime.now() - timedelta(hours=1), end_date=datetime.now() + timedelta(hours=1)
    )
    assert report.unapproved_production_changes == []
    assert report.summary["deployment_count"] >= 2
    assert report.chain_verification["valid"] is True

    # A production change with no approval behind it is listed.
    AuditLogger(store).log_model_deployment(model_name="rogue", version="v9", user="mallory@x.com",
                                            environment="production", strategy="direct")
    again = AuditLogger(store).generate_compliance_report(
        start_date=datetime.now() - timedelta(hours=1), end_date=datetime.now() + timedelta(hours=1)
    )
    assert [e["resource_id"] for e in again.unapproved_production_changes] == ["rogue:v9"]
