"""A/B testing workflow: create, start, assign users, record traffic, analyse, conclude.

    python examples/mlops/ab_testing_workflow.py  # embedded store in ./mlops-example
    python examples/mlops/ab_testing_workflow.py --target grpc://127.0.0.1:50051

The "prediction service" below asks for each user's variant (hash-based, sticky),
serves the prediction and records the outcome in batches, as a real service would.
The treatment converts a little better; the test finds it and ships the treatment.
"""

from __future__ import annotations

import argparse
import hashlib

from neural.mlops.ab_testing import ABTestManager, TrafficSplitStrategy
from neural.mlops.v1.assignment import assign


def converted(user_id: str, variant: str) -> bool:
    """A deterministic stand-in for user behaviour: 10% vs 13% conversion."""
    u = int.from_bytes(hashlib.sha256(f"outcome:{user_id}".encode()).digest()[:8], "big") / 2**64
    return u < (0.13 if variant == "treatment" else 0.10)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--target", default="./mlops-example", help="store folder or grpc://HOST:PORT"
    )
    parser.add_argument("--users", type=int, default=12000)
    args = parser.parse_args()

    manager = ABTestManager(args.target)
    test = manager.create_test(
        name="Model V2 A/B Test",
        description="Testing new model version against current production",
        control_variant="fraud_detector:v1.0.0",
        treatment_variant="fraud_detector:v2.0.0",
        traffic_split=0.5,
        strategy=TrafficSplitStrategy.HASH_BASED,
        created_by="ml_engineer@company.com",
        minimum_detectable_effect=0.2,  # plan for a 20% relative lift: ~7,700 requests
    )
    manager.start_test(test.test_id)
    print(f"started {test.test_id}: {[(v.name, v.model_ref, v.weight) for v in test.variants]}")

    # The variant is a pure function of (test_id, user): the same answer here, in the
    # sidecar and in any other language (protos/neural/mlops/v1/ASSIGNMENT.md).
    assert manager.get_variant(test.test_id, user_id="user123") == manager.get_variant(
        test.test_id, "user123"
    )
    batch: list[dict[str, object]] = []
    counts = {"control": 0, "treatment": 0}
    for i in range(args.users):
        user = f"user{i}"
        variant = manager.get_variant(test.test_id, user_id=user) if i < 20 else None
        if variant is None:  # beyond a few calls, compute locally: no round trip per request
            variant = test.variants[
                assign(test.test_id, user, [v.weight for v in test.variants])
            ].name
        counts[variant] += 1
        batch.append(
            {
                "variant": variant,
                "user_id": user,
                "success": converted(user, variant),
                "latency": 0.030 + (0.004 if variant == "treatment" else 0.0),
                "custom_metrics": {"accuracy": 0.96 if variant == "treatment" else 0.93},
            }
        )
        if len(batch) == 1000:
            manager.record_requests(test.test_id, batch)
            batch = []
    if batch:
        manager.record_requests(test.test_id, batch)
    print(f"recorded {sum(counts.values())} requests: {counts}")

    analysis = manager.analyze_test(test.test_id, confidence_level=0.95)
    print(f"control success rate:   {analysis['control']['success_rate']:.2%}")
    print(f"treatment success rate: {analysis['treatment']['success_rate']:.2%}")
    print(
        f"p-value: {analysis['p_value']:.4g}; significant: {analysis['statistically_significant']}"
    )
    if analysis["statistically_significant"]:
        print(f"Improvement: {analysis['improvement']['relative_improvement']:.2f}%")
    srm = analysis["srm"]
    print(f"sample ratio mismatch: detected={srm['detected']} (p={srm['p_value']:.3f})")
    print(f"recommendation: {analysis['recommendation']}")

    # Without a winner, the test concludes with the analysis' recommendation.
    done = manager.conclude_test(test.test_id, reason="planned sample reached, significant at 95%")
    print(f"concluded: winner={done.winner} status={done.status.value}")
    manager.close()


if __name__ == "__main__":
    main()
