"""``neural-mlops ci init``: write a pipeline file for a CI system."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from neural.mlops import ci_templates as ct
from neural.mlops.cli._output import emit, print_record
from neural.mlops.cli.ci import parse_duration

# What to set up in the CI system after writing its pipeline, said in its own words.
_HINTS = {
    ct.Provider.GITHUB: "add the repository secret {secret} (Settings > Secrets and variables "
    "> Actions) and required reviewers on the 'production' environment",
    ct.Provider.GITLAB: "add a masked, protected CI/CD variable {secret} (Settings > CI/CD > "
    "Variables) and protect the 'production' environment",
    ct.Provider.JENKINS: "add a 'Secret text' credential with id {secret} (Manage Jenkins > "
    "Credentials)",
    ct.Provider.AZURE: "add a secret pipeline variable {secret} and approvals on the "
    "'production' environment (Pipelines > Environments)",
}


def add_init(ci: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """The ``init`` sub-command."""
    d = ct.PipelineSettings()
    init = ci.add_parser("init", help="write a pipeline file for a CI system")
    init.add_argument(
        "--provider",
        required=True,
        choices=ct.list_providers(),
        help="CI system: github, gitlab, jenkins or azure",
    )
    init.add_argument(
        "--output",
        default=".",
        metavar="DIR",
        help="repository root to write into (default: current folder); the file "
        "goes to the provider's usual path, e.g. .github/workflows/ml-pipeline.yml",
    )
    init.add_argument("--force", action="store_true", help="overwrite an existing pipeline file")
    init.add_argument(
        "--stdout", action="store_true", help="print the pipeline instead of writing it"
    )
    init.add_argument("--model", default=d.model_name, help="model name (default %(default)s)")
    init.add_argument(
        "--min",
        action="append",
        metavar="METRIC=VALUE",
        help="gate: minimum candidate metric (default accuracy=0.9)",
    )
    init.add_argument(
        "--max-regression",
        action="append",
        metavar="METRIC=DELTA",
        help="gate: largest allowed drop against production (default accuracy=0.01)",
    )
    init.add_argument(
        "--control-plane",
        default=d.target,
        metavar="grpc://HOST:PORT",
        help="control-plane address the pipeline talks to (default %(default)s)",
    )
    init.add_argument(
        "--token-secret",
        default=d.token_secret,
        metavar="NAME",
        help="name of the CI secret holding the API token (default %(default)s)",
    )
    init.add_argument(
        "--python-version", default=d.python_version, help="Python the pipeline's jobs run"
    )
    init.add_argument(
        "--install-command",
        default=d.install_command,
        help="installs your project and neural-mlops in the job",
    )
    init.add_argument(
        "--test-command", default=d.test_command, help="your tests, run before training"
    )
    init.add_argument(
        "--train-command",
        default=d.train_command,
        help="must write --model-path and --metrics-file (default: %(default)s)",
    )
    init.add_argument(
        "--model-path", default=d.model_path, help="the artifact the training command writes"
    )
    init.add_argument(
        "--metrics-file",
        default=d.metrics_file,
        help="the training command's JSON object of metric: number (the gate reads it)",
    )
    init.add_argument(
        "--framework", default=d.framework, help="recorded with the registered version"
    )
    init.add_argument("--reviewer", action="append", default=[], help="promotion reviewer (repeat)")
    init.add_argument(
        "--canary-percent",
        type=float,
        default=d.canary_percent,
        help="share of traffic the canary starts at",
    )
    init.add_argument(
        "--approval-timeout",
        default=f"{d.approval_timeout_minutes}m",
        help="how long the deploy step waits for approval (default %(default)s)",
    )
    init.add_argument(
        "--watch-timeout",
        default=f"{d.watch_timeout_minutes}m",
        help="how long the canary is watched (default %(default)s)",
    )
    init.add_argument("--json", action="store_true", help="print JSON for scripts")
    init.set_defaults(handler=cmd_init)


def cmd_init(args: argparse.Namespace) -> int:
    approval = parse_duration(args.approval_timeout, "--approval-timeout")
    watch = parse_duration(args.watch_timeout, "--watch-timeout")
    settings = ct.PipelineSettings(
        model_name=args.model,
        min_metrics=ct.parse_thresholds(args.min, "--min") if args.min else {"accuracy": 0.9},
        max_regression=(
            ct.parse_thresholds(args.max_regression, "--max-regression")
            if args.max_regression
            else {"accuracy": 0.01}
        ),
        target=args.control_plane,
        token_secret=args.token_secret,
        python_version=args.python_version,
        install_command=args.install_command,
        test_command=args.test_command,
        train_command=args.train_command,
        model_path=args.model_path,
        metrics_file=args.metrics_file,
        framework=args.framework,
        reviewers=tuple(args.reviewer),
        canary_percent=args.canary_percent,
        approval_timeout_minutes=max(1, round(approval / 60)),
        watch_timeout_minutes=max(1, round(watch / 60)),
    )
    provider = ct.parse_provider(args.provider)
    if args.stdout:
        sys.stdout.write(ct.render_template(provider, settings))
        return 0
    path = ct.write_template(provider, Path(args.output), settings, force=args.force)
    record = {
        "provider": provider.value,
        "path": str(path),
        "model": settings.model_name,
        "control_plane": settings.target,
        "token_secret": settings.token_secret,
    }

    def render() -> None:
        print(f"wrote {path}")
        print_record(
            [
                ("provider", provider.value),
                ("model", settings.model_name),
                (
                    "gate",
                    f"min {ct.format_thresholds(settings.min_metrics) or '-'}; "
                    f"max regression {ct.format_thresholds(settings.max_regression) or '-'}",
                ),
                ("control plane", settings.target),
                ("token secret", settings.token_secret),
            ]
        )
        print("next: " + _HINTS[provider].format(secret=settings.token_secret))

    emit(args, record, render)
    return 0
