"""Model lifecycle: register, review, promote, compare, alias, archive, download.

    python examples/mlops/model_lifecycle.py  # embedded store in ./mlops-example
    python examples/mlops/model_lifecycle.py --target grpc://127.0.0.1:50051

Every component of this example talks to the same place, so the registry's own audit
events are there too (see compliance_reporting.py).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from neural.mlops.errors import FailedPrecondition, PermissionDenied
from neural.mlops.registry import ModelRegistry, ModelStage


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--target", default="./mlops-example", help="store folder or grpc://HOST:PORT"
    )
    parser.add_argument("--model", default="fraud_detector")
    args = parser.parse_args()

    registry = ModelRegistry(args.target)
    work = Path(tempfile.mkdtemp(prefix="lifecycle-"))
    name = args.model

    # 1. Two trained versions with their evaluation metrics and artifacts.
    for version, accuracy, f1 in (("v1.0.0", 0.93, 0.90), ("v2.0.0", 0.96, 0.94)):
        artifact = work / f"{version}.pt"
        artifact.write_bytes(f"weights of {name} {version}".encode())
        mv = registry.register_model(
            name=name,
            version=version,
            model_path=str(artifact),
            framework="pytorch",
            created_by="data_scientist@company.com",
            metrics={"accuracy": accuracy, "f1": f1},
            tags=["fraud"],
            description=f"{name} {version}",
        )
        print(
            f"registered {mv.ref:24} stage={mv.stage.value:12} sha256={mv.artifact.sha256[:12]}..."
        )

    # 2. PRODUCTION needs an approved request; the requester cannot approve it.
    registry.request_promotion(
        name,
        "v1.0.0",
        ModelStage.PRODUCTION,
        "ml_engineer@company.com",
        "baseline model",
        reviewers=["ml_manager@company.com"],
    )
    try:
        registry.approve_promotion(name, "v1.0.0", "ml_engineer@company.com", "self-approval")
    except (PermissionDenied, FailedPrecondition) as exc:
        print(f"self-approval refused: {exc}")
    registry.approve_promotion(name, "v1.0.0", "ml_manager@company.com", "approved")
    print(f"production: {registry.get_production_version(name).ref}")

    # 3. Compare the candidate with production, then promote it (v1 is archived).
    comparison = registry.compare_models(name, "v1.0.0", "v2.0.0")
    for metric, row in sorted(comparison["metrics_comparison"].items()):
        print(
            f"  {metric:9} v1={row['version1']:.3f} v2={row['version2']:.3f} "
            f"difference={row['difference']:+.3f}"
        )
    registry.request_promotion(
        name,
        "v2.0.0",
        ModelStage.PRODUCTION,
        "ml_engineer@company.com",
        "better on every metric",
        reviewers=["ml_manager@company.com"],
    )
    pending = registry.list_pending_approvals("ml_manager@company.com")
    print(f"pending for ml_manager: {[r.version for r in pending]}")
    registry.approve_promotion(name, "v2.0.0", "ml_manager@company.com", "ship it")
    print(
        f"production: {registry.get_production_version(name).ref}; "
        f"v1 is {registry.get_model_version(name, 'v1.0.0').stage.value}"
    )

    # 4. Aliases move without touching stages; roll one back.
    registry.set_alias(name, "champion", "v1.0.0", "ml_manager@company.com")
    registry.set_alias(name, "champion", "v2.0.0", "ml_manager@company.com")
    back = registry.rollback_alias(name, "champion", "ml_manager@company.com", "check v1 again")
    print(f"@champion -> {back.version} (was {back.previous_version})")

    # 5. Search by metric, download with checksum verification, read the history.
    found = registry.search_models(filter="accuracy >= 0.95")
    print(f"accuracy >= 0.95: {[v.ref for v in found]}")
    (work / "downloaded").mkdir()
    path = registry.download_artifact(name, "v2.0.0", work / "downloaded")
    print(f"downloaded {path.name}: {path.read_bytes().decode()!r}")
    for entry in registry.get_history(name):
        print(
            f"  {entry.at:%H:%M:%S} {entry.kind:5} {entry.version:7} "
            f"{entry.from_value or '-':>11} -> {entry.to_value:11} by {entry.actor}"
        )
    registry.close()


if __name__ == "__main__":
    main()
