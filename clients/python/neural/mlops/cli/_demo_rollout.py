"""The demo's registry and rollouts: three versions registered and v1 approved, then a
version approved and canaried through the sidecar under live traffic."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from neural.mlops.cli._demo_traffic import MODEL, Traffic
from neural.mlops.cli._progress import Live, bar

if TYPE_CHECKING:
    from neural.mlops.cli.demo import Pace


def registry_summary(target: str) -> str:
    """What the registry says now: after a rollback it names the version serving again."""
    from neural.mlops.registry import ModelRegistry, ModelStage

    with ModelRegistry(target) as reg:
        versions = list(reg.list_versions(MODEL))
    by_stage: dict[str, list[str]] = {}
    for mv in versions:
        by_stage.setdefault(mv.stage.value.upper(), []).append(mv.version)
    prod = by_stage.get(ModelStage.PRODUCTION.value.upper(), [])
    archived = by_stage.get(ModelStage.ARCHIVED.value.upper(), [])
    return f"PRODUCTION {', '.join(prod) or '-'}; archived {', '.join(archived) or '-'}"


def registry_phase(target: str, live: Live) -> None:
    from neural.mlops.registry import ModelRegistry, ModelStage

    live.line("")
    live.line("1. REGISTRY: three versions; v1 approved into PRODUCTION")
    with ModelRegistry(target) as reg:
        for version, acc in (("v1", 0.931), ("v2", 0.957), ("v3", 0.962)):
            mv = reg.register_model(
                MODEL,
                version,
                artifact_uri=f"s3://demo/{MODEL}/{version}/model.onnx",
                framework="onnx",
                created_by="data_scientist@company.com",
                metrics={"accuracy": acc},
                tags=["demo"],
            )
            live.line(f"   registered {mv.ref} accuracy={acc}")
        reg.request_promotion(
            MODEL,
            "v1",
            ModelStage.PRODUCTION,
            "ml_engineer@company.com",
            "baseline",
            ["ml_manager@company.com"],
        )
        reg.approve_promotion(MODEL, "v1", "ml_manager@company.com", "baseline approved")
        live.line("   v1 -> PRODUCTION (requested by ml_engineer, approved by ml_manager)")


def canary_phase(
    target: str, version: str, upstream: str, pace: Pace, traffic: Traffic, live: Live
) -> str:
    from neural.mlops.deployment import (
        DeploymentManager,
        DeploymentStatus,
        DeploymentStrategy,
        RollbackConfig,
    )
    from neural.mlops.registry import ModelRegistry, ModelStage

    live.line("")
    faulty = version == "v3"
    live.line(
        f"{4 if faulty else 3}. CANARY: {MODEL}:{version} through the sidecar under live "
        "traffic" + (" (this build fails 25% of its calls)" if faulty else "")
    )
    with ModelRegistry(target) as reg:
        reg.request_promotion(
            MODEL,
            version,
            ModelStage.PRODUCTION,
            "ml_engineer@company.com",
            "hotfix" if faulty else "won the A/B test",
            ["ml_manager@company.com"],
        )
        reg.approve_promotion(MODEL, version, "ml_manager@company.com", "approved")
    live.line(f"   {version} approved into PRODUCTION; rollout starts at 10% of traffic")
    with DeploymentManager(target) as dm:
        dep = dm.create_deployment(
            MODEL,
            version,
            DeploymentStrategy.CANARY,
            created_by="devops@company.com",
            rollback_config=RollbackConfig(
                error_rate_threshold=0.05,
                latency_threshold_multiplier=5.0,
                min_requests_before_check=pace.min_requests,
            ),
            steps=[10, 25, 50, 100],
            step_duration_seconds=pace.step_seconds,
            analysis_interval_seconds=pace.interval,
            upstream=upstream,
        )
        traffic.begin_phase({dep.new_variant: version, dep.stable_variant: dep.stable_version})
        seq = 0
        deadline = time.monotonic() + 40 * pace.step_seconds + 60

        def progress() -> str:
            share = bar(dep.traffic_percentage)
            return f"   {version} {share} {dep.status.value:<11} | {traffic.split()}"

        while True:
            dep = dm.get_deployment(dep.deployment_id)
            for event in dm.get_events(dep.deployment_id, seq):
                seq = event.seq
                reasons = (event.details or {}).get("reasons") or []
                why = f": {'; '.join(reasons)}" if reasons else ""
                live.line(
                    f"   {event.at.astimezone():%H:%M:%S} {event.action:<11} "
                    f"{bar(event.traffic_percentage)} -> {event.to_status.value}{why}"
                )
            live.status(progress())
            if not dep.active or time.monotonic() > deadline:
                break
            time.sleep(0.25)
        live.settle()
        live.line(progress())
        if dep.active:
            dm.abort(dep.deployment_id, "devops@company.com", "demo time limit")
            return "timed out (aborted)"
    if dep.status is DeploymentStatus.COMPLETED:
        return f"promoted to 100% in {len(dep.plan.steps)} steps"
    if dep.status is DeploymentStatus.ROLLED_BACK:
        return "rolled back: " + "; ".join(dep.rollback_reasons)
    return dep.status.value
