"""The ``neural-mlops`` command.

Every sub-command lives in its own module in this package and exposes
``register(subparsers)``; :func:`main` discovers them, so adding a command touches no
shared file. Output is a table for people and JSON with ``--json``; errors print one line
``error: <reason>`` to stderr and exit non-zero (see :data:`EXIT_CODES`).
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from neural.mlops.server.errors import MLOpsError

# Exit codes are part of the CLI's contract (scripts branch on them).
EXIT_CODES = {
    "INVALID_ARGUMENT": 2,
    "NOT_FOUND": 3,
    "ALREADY_EXISTS": 4,
    "FAILED_PRECONDITION": 5,
    "PERMISSION_DENIED": 6,
    "UNAUTHENTICATED": 6,
    "DATA_LOSS": 7,
    "UNAVAILABLE": 8,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="neural-mlops",
        description="Model registry, A/B tests, rollouts and audit for ML models.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except MLOpsError as exc:
        print(f"error: {exc.status.lower().replace('_', ' ')}: {exc}", file=sys.stderr)
        return EXIT_CODES.get(exc.status, 1)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
