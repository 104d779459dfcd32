"""The Python API: the registry gate embedded, remote errors equal embedded errors, watch."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.databases import open_services
from support.processes import ServerProcess

from neural.mlops.deployment import (
    DeploymentManager,
    DeploymentStatus,
    DeploymentStrategy,
    PerformanceMetrics,
    RollbackConfig,
)
from neural.mlops.errors import FailedPrecondition, InvalidArgument, NotFound
from neural.mlops.registry import ModelRegistry, ModelStage
from neural.mlops.server.clock import ManualClock
from neural.mlops.server.deployments.model import GatePolicy
from neural.mlops.server.deployments.planning import CreateSpec
from neural.mlops.server.deployments.service import DeploymentService


def _register(
    registry: ModelRegistry,
    *versions: str,
    approve: str = "",
    stage: ModelStage = ModelStage.PRODUCTION,
) -> None:
    for version in versions:
        registry.register_model(name="fraud", version=version, artifact_uri=f"s3://m/{version}",
                                created_by="ds@x.com")
    if approve:
        registry.request_promotion(
            name="fraud",
            version=approve,
            target_stage=stage,
            requested_by="eng@x.com",
            justification="ok",
        )
        registry.approve_promotion(name="fraud", version=approve, approver="boss@x.com")


def test_embedded_gate_with_a_registry_in_another_folder(in_tmp: Path) -> None:
    registry = ModelRegistry("./models")
    _register(registry, "v1", "v2", "v3", approve="v2")
    gated = DeploymentManager("./deployments", registry=registry)
    with pytest.raises(NotFound):
        gated.create_deployment("fraud", "v404", created_by="ops@x.com")
    with pytest.raises(FailedPrecondition, match="DEVELOPMENT"):
        gated.create_deployment("fraud", "v3", created_by="ops@x.com")
    assert gated.list_deployments() == []
    d = gated.create_deployment("fraud", "v2", created_by="ops@x.com")
    assert d.gate["checked"] and d.gate["stage"] == "production" and not d.gate["local"]
    # Without a registry the same folder has no gate (the seed's separate folders).
    ungated = DeploymentManager("./other")
    assert ungated.create_deployment("fraud", "v3", created_by="ops@x.com").gate["checked"] is False


def test_embedded_gate_with_the_registry_in_the_same_folder_promotes_it(in_tmp: Path) -> None:
    registry = ModelRegistry("./store")
    _register(registry, "v1", "v2", approve="v2", stage=ModelStage.STAGING)
    manager = DeploymentManager("./store", registry=registry)
    with pytest.raises(FailedPrecondition, match="STAGING"):
        manager.create_deployment("fraud", "v2", created_by="ops@x.com")
    d = manager.create_deployment(
        "fraud", "v2", created_by="ops@x.com", override_reason="staging soak"
    )
    d = manager.promote(d.deployment_id, "ops@x.com", full=True)
    assert d.status is DeploymentStatus.COMPLETED
    assert registry.get_model_version("fraud", "v2").stage is ModelStage.PRODUCTION


async def test_staging_policy_admits_staging_versions(tmp_path: Path) -> None:
    s = await open_services(tmp_path / "s", clock=ManualClock())
    try:
        from neural.mlops.server.registry.service import RegisterSpec

        await s.registry.register_model(
            RegisterSpec(
                name="fraud", version="v2", created_by="ds@x.com", artifact_uri="s3://m/v2"
            )
        )
        await s.registry.request_promotion("fraud", "v2", ModelStage.STAGING, "eng@x.com", "ok")
        await s.registry.approve_promotion("fraud", "v2", "boss@x.com")
        staging = DeploymentService(
            s.db, clock=s.clock, registry=s.registry, gate_policy=GatePolicy.STAGING
        )
        d = await staging.create_deployment(CreateSpec("fraud", "v2", created_by="ops@x.com"))
        assert d.gate["passed"] and d.gate["policy"] == "staging"
        await staging.promote(d.deployment_id, "ops@x.com", full=True)
        assert (await s.registry.get_model_version("fraud", "v2")).stage is ModelStage.PRODUCTION
    finally:
        await s.close()


def test_remote_errors_and_results_match_embedded(in_tmp: Path, server: ServerProcess) -> None:
    _register(ModelRegistry(server.url), "v1", "v2", approve="v2")
    remote = DeploymentManager(server.url)
    local = DeploymentManager("./local")
    for m in (remote, local):
        with pytest.raises(InvalidArgument) as err:
            m.create_deployment("fraud", "v2", created_by="ops@x.com", steps=[50, 10])
        assert err.value.field == "steps"
        with pytest.raises(InvalidArgument) as err:
            m.create_deployment("fraud", "v2", created_by="ops@x.com",
                                rollback_config=RollbackConfig(error_rate_threshold=-1))
        assert err.value.field == "rollback_config.error_rate_threshold"
        with pytest.raises(NotFound):
            m.get_deployment("dep-missing")
        d = m.create_deployment(
            "fraud",
            "v2",
            strategy=DeploymentStrategy.CANARY,
            created_by="ops@x.com",
            baseline_metrics=PerformanceMetrics(latency_p95=0.05),
            steps=[10, 50],
        )
        assert (d.strategy, d.traffic_percentage, d.plan.steps) == (DeploymentStrategy.CANARY, 10.0,
                                                                    [10.0, 50.0, 100.0])
        with pytest.raises(FailedPrecondition):
            m.create_deployment("fraud", "v2", created_by="ops@x.com")
        m.update_metrics(d.deployment_id, PerformanceMetrics(latency_p95=0.04, error_rate=0.5))
        assert m.check_deployment_health(d.deployment_id) == (
            False,
            [],
        )  # 0 requests reported: wait
        needs, reasons = m.check_deployment_health(d.deployment_id, request_count=500)
        assert needs and reasons == ["error rate 0.5000 > threshold 0.0500 (n=500)"]
        updates = list(m.watch(d.deployment_id))
        assert updates[-1][0].status is DeploymentStatus.ROLLED_BACK
        assert [e.action for _, events in updates for e in events] == ["created", "rolled_back"]
        with pytest.raises(FailedPrecondition):
            m.promote(d.deployment_id, "ops@x.com")
        with pytest.raises(InvalidArgument):
            m.shadow_deploy("fraud:v1", "fraud:v2", traffic_percentage=250)
        live = m.create_deployment("fraud", "v2", created_by="ops@x.com")
        updates = list(m.watch(live.deployment_id, timeout=1.5))  # ends quietly at the timeout
        assert updates and updates[0][0].status is DeploymentStatus.IN_PROGRESS
