"""Shadow deployment, then a canary with automated rollback.

    python examples/mlops/shadow_deployment.py  # embedded store in ./mlops-example
    python examples/mlops/shadow_deployment.py --target grpc://127.0.0.1:50051

1. The new version runs in shadow: it sees a copy of the traffic, callers never see
   its answers; we compare the two (agreement, latency) before trusting it.
2. It goes out as a canary with rollback thresholds; the reported metrics degrade and
   the health check rolls it back, with the reason recorded.

With a control plane, sidecars do both for real (`neural-mlops demo` shows it); here
the comparisons and metrics are reported through the API, as the seed documents.
"""

from __future__ import annotations

import argparse
import random

from neural.mlops.deployment import (
    DeploymentManager,
    DeploymentStrategy,
    PerformanceMetrics,
    RollbackConfig,
)
from neural.mlops.registry import ModelRegistry, ModelStage


def register(registry: ModelRegistry, name: str, version: str, *, promote: bool) -> None:
    """Register (once) and, with ``promote``, approve into PRODUCTION: a deployment that
    serves traffic needs an approved version, a shadow only a registered one."""
    try:
        registry.get_model_version(name, version)
    except LookupError:
        registry.register_model(
            name,
            version,
            artifact_uri=f"s3://models/{name}/{version}/model.pt",
            framework="pytorch",
            created_by="data_scientist@company.com",
            metrics={"accuracy": 0.95},
        )
    if promote and registry.get_model_version(name, version).stage is not ModelStage.PRODUCTION:
        registry.request_promotion(
            name, version, ModelStage.PRODUCTION, "ml_engineer@company.com", "example"
        )
        registry.approve_promotion(name, version, "ml_manager@company.com", "example")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--target", default="./mlops-example", help="store folder or grpc://HOST:PORT"
    )
    parser.add_argument("--model", default="churn_model")
    args = parser.parse_args()
    rng = random.Random(7)
    name = args.model

    registry = ModelRegistry(args.target)
    manager = DeploymentManager(args.target, registry=registry)

    register(registry, name, "v1.0.0", promote=True)
    register(registry, name, "v2.0.0", promote=False)

    # 1. Shadow: copy 100% of v1's traffic to v2.
    shadow = manager.shadow_deploy(
        primary_model=f"{name}:v1.0.0",
        shadow_model=f"{name}:v2.0.0",
        traffic_percentage=100.0,
        created_by="devops@company.com",
    )
    for _ in range(500):
        label = rng.randint(0, 1)
        shadow_label = label if rng.random() < 0.98 else 1 - label
        manager.record_shadow_comparison(
            shadow_id=shadow.shadow_id,
            primary_result={"prediction": label},
            shadow_result={"prediction": shadow_label},
            primary_latency=rng.uniform(0.030, 0.040),
            shadow_latency=rng.uniform(0.034, 0.046),
        )
    comparison = manager.compare_shadow_deployment(shadow.shadow_id, min_agreement_rate=0.95)
    print(
        f"shadow {shadow.shadow_id}: agreement {comparison['agreement_rate']:.2%} "
        f"over {comparison['n']} calls"
    )
    print(
        f"  primary p95 {comparison['primary_latency']['p95']:.3f}s, "
        f"shadow p95 {comparison['shadow_latency']['p95']:.3f}s -> verdict {comparison['verdict']}"
    )
    manager.stop_shadow(shadow.shadow_id, stopped_by="devops@company.com")

    # 2. Canary of v2 over v1 with rollback thresholds.
    register(registry, name, "v2.0.0", promote=True)
    deployment = manager.create_deployment(
        model_name=name,
        model_version="v2.0.0",
        strategy=DeploymentStrategy.CANARY,
        created_by="devops@company.com",
        baseline_metrics=PerformanceMetrics(latency_p95=0.050, error_rate=0.001),
        rollback_config=RollbackConfig(
            error_rate_threshold=0.01,
            latency_threshold_multiplier=1.5,
            min_requests_before_check=1000,
        ),
        steps=[10, 50, 100],
    )
    print(f"canary {deployment.deployment_id}: {deployment.traffic_percentage:g}% on v2.0.0")

    needs_rollback, _ = manager.check_deployment_health(deployment.deployment_id, request_count=200)
    print(f"  200 requests: needs rollback={needs_rollback} (too few requests to judge)")
    manager.update_metrics(
        deployment.deployment_id, PerformanceMetrics(latency_p95=0.080, error_rate=0.005)
    )
    needs_rollback, reasons = manager.check_deployment_health(
        deployment.deployment_id, request_count=2000
    )
    if needs_rollback:
        print(f"  deployment rolled back: {reasons}")
    final = manager.get_deployment(deployment.deployment_id)
    print(f"  status {final.status.value}; traffic on v2: {final.traffic_percentage:g}%")
    for event in manager.get_events(deployment.deployment_id):
        print(f"  {event.at:%H:%M:%S} {event.action:12} -> {event.to_status.value}")
    manager.close()
    registry.close()


if __name__ == "__main__":
    main()
