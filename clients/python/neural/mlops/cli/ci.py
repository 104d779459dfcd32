"""``neural-mlops ci ...``: generate a CI/CD pipeline, and the steps that pipeline runs.

``ci init`` writes a pipeline for GitHub Actions, GitLab CI, Jenkins or Azure Pipelines
(see :mod:`neural.mlops.ci_templates`). The other sub-commands are the pipeline's own
steps, made for non-interactive use: they read the token from ``NEURAL_MLOPS_TOKEN``,
take metrics from the evaluation's JSON file, and report success only through the exit
status (0) so a CI job fails exactly when it should:

* ``ci register``: register the candidate with the metrics of its evaluation;
* ``ci request-promotion``: ask the reviewers for PRODUCTION;
* ``ci wait-approval``: block until the request is approved (0), rejected or cancelled
  (5), or the timeout passes (1);
* ``ci canary``: start a canary deployment and watch it until it is promoted (0) or
  rolled back (1).
"""

from __future__ import annotations

import argparse
import os
import re

from neural.mlops.server.errors import InvalidArgument

EXIT_TIMEOUT = 1
EXIT_ROLLED_BACK = 1


def parse_duration(value: str, field: str) -> float:
    """``"90"`` / ``"90s"`` / ``"15m"`` / ``"2h"`` -> seconds."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", value or "")
    if not m:
        raise InvalidArgument(
            f"{field}: expected a duration such as 90s, 15m or 2h, got {value!r}", field=field
        )
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def add_token(parser: argparse.ArgumentParser) -> None:
    """The token every step reads; in CI it comes from the secret store via the env."""
    parser.add_argument(
        "--token",
        default=os.environ.get("NEURAL_MLOPS_TOKEN"),
        help="API token (env NEURAL_MLOPS_TOKEN; in CI, from the secret store)",
    )


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    # Imported here: the step modules use this module's helpers.
    from neural.mlops.cli._ci_canary import add_canary
    from neural.mlops.cli._ci_init import add_init
    from neural.mlops.cli._ci_promotion import add_registry_steps

    p = sub.add_parser(
        "ci",
        help="generate a CI/CD pipeline, and run its steps",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ci = p.add_subparsers(dest="ci_command", metavar="STEP", required=True)
    add_init(ci)
    add_registry_steps(ci)
    add_canary(ci)
