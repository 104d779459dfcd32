"""CI/CD integration: generate the pipelines, then run their steps as a CI job would.

    python examples/mlops/ci_integration.py  # embedded store in ./mlops-example
    python examples/mlops/ci_integration.py --target grpc://127.0.0.1:50051

1. Writes the GitHub Actions, GitLab CI, Jenkins and Azure Pipelines files for a model
   into a scratch repository (``neural-mlops ci init`` does the same from a shell).
2. Plays one pipeline run: metrics gate against production -> register -> request
   promotion -> (a reviewer approves) -> wait for the approval -> canary until promoted.
3. Plays a second run whose candidate regresses: the gate stops it with the reason.
"""

from __future__ import annotations

import argparse
import json
import shlex
import tempfile
import threading
from pathlib import Path

from neural.mlops.ci_templates import PipelineSettings, list_providers, write_template
from neural.mlops.cli import main as cli
from neural.mlops.registry import ModelRegistry


def step(*argv: str) -> int:
    """Run one pipeline command (as the CI job's shell would) and show its exit status."""
    print(f"$ neural-mlops {shlex.join(argv)}")
    code = cli(list(argv))
    print(f"  -> exit {code}")
    return code


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--target", default="./mlops-example", help="store folder or grpc://HOST:PORT"
    )
    parser.add_argument("--model", default="credit_scorer")
    args = parser.parse_args()
    t, model = args.target, args.model
    repo = Path(tempfile.mkdtemp(prefix="ml-repo-"))

    settings = PipelineSettings(
        model_name=model,
        min_metrics={"accuracy": 0.9, "auc": 0.85},
        max_regression={"accuracy": 0.01},
        target="grpc://mlops.company.internal:50051",
        token_secret="NEURAL_MLOPS_TOKEN",
        reviewers=("ml_manager@company.com",),
    )
    for provider in list_providers():
        path = write_template(provider, repo, settings)
        print(f"wrote {path.relative_to(repo)} ({provider})")

    registry = ModelRegistry(t)
    try:  # number this run's versions after the ones already registered
        run = len(registry.list_versions(model))
    except LookupError:
        run = 0

    def evaluate(version: str, accuracy: float, auc: float) -> tuple[Path, Path]:
        """What the pipeline's train step leaves behind: an artifact and its metrics."""
        (repo / "model.pt").write_bytes(f"{model} {version}".encode())
        (repo / "metrics.json").write_text(json.dumps({"accuracy": accuracy, "auc": auc}))
        return repo / "model.pt", repo / "metrics.json"

    def gate(metrics: Path) -> int:
        """The pipeline's quality gate: the same thresholds as the templates above."""
        return step(
            "gate",
            "--target",
            t,
            "--model",
            model,
            "--candidate-metrics",
            str(metrics),
            "--min",
            "accuracy=0.9,auc=0.85",
            "--max-regression",
            "accuracy=0.01",
        )

    # -- run 1: a good candidate goes all the way --------------------------------------
    version = f"ci-{run + 1}"
    artifact, metrics = evaluate(version, 0.93, 0.91)
    print(f"\n== pipeline run for {model}:{version}")
    assert gate(metrics) == 0
    assert (
        step(
            "ci",
            "register",
            "--target",
            t,
            "--model",
            model,
            "--version",
            version,
            "--model-path",
            str(artifact),
            "--metrics-file",
            str(metrics),
            "--framework",
            "sklearn",
            "--created-by",
            "ci-bot",
            "--tag",
            "git-1a2b3c4",
        )
        == 0
    )
    assert (
        step(
            "ci",
            "request-promotion",
            "--target",
            t,
            "--model",
            model,
            "--version",
            version,
            "--requested-by",
            "ci-bot",
            "--reviewers",
            "ml_manager@company.com",
            "--justification",
            "passed the metrics gate",
        )
        == 0
    )
    # The reviewer approves while the deploy job waits.
    reviewer = threading.Timer(
        1.0,
        lambda: registry.approve_promotion(model, version, "ml_manager@company.com", "looks good"),
    )
    reviewer.start()
    assert (
        step(
            "ci",
            "wait-approval",
            "--target",
            t,
            "--model",
            model,
            "--version",
            version,
            "--timeout",
            "60s",
            "--interval",
            "0.2s",
        )
        == 0
    )
    reviewer.join()
    assert (
        step(
            "ci",
            "canary",
            "--target",
            t,
            "--model",
            model,
            "--version",
            version,
            "--created-by",
            "ci-bot",
            "--steps",
            "10,50,100",
            "--min-requests",
            "0",
            "--step-duration",
            "0.2s",
            "--analysis-interval",
            "0.1s",
            "--interval",
            "0.1s",
            "--timeout",
            "60s",
        )
        == 0
    )

    # -- run 2: the candidate regresses; the gate stops the pipeline ---------------------
    version = f"ci-{run + 2}"
    artifact, metrics = evaluate(version, 0.915, 0.90)
    print(f"\n== pipeline run for {model}:{version}")
    code = gate(metrics)
    assert code == 1, "the gate must stop a regressed candidate"
    production = registry.get_production_version(model).ref
    print(f"pipeline stopped at the gate; production is still {production}")
    registry.close()


if __name__ == "__main__":
    main()
