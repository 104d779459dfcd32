"""The ``neural-mlops`` command.

Every sub-command lives in its own module in this package and exposes
``register(subparsers)``; :func:`main` discovers them, so adding a command touches no
shared file. Output is a table for people and JSON with ``--json``; errors print one line
``error: <reason>`` to stderr and exit non-zero (see :data:`EXIT_CODES`).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import pkgutil
import re
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


# Module docstrings double as command descriptions; their reST markup is for Sphinx-style
# readers of the source, not for a terminal.
_REST = re.compile(r"``([^`]+)``|:\w+:`~?([^`]+)`")

# Options that many commands share get one help text, so they read alike everywhere.
SHARED_HELP = {
    "--actor": "who does this (recorded in the audit trail)",
    "--reason": "why (recorded in the audit trail)",
    "--comment": "a note for the record",
    "--created-by": "who creates it (recorded in the audit trail)",
    "--page-size": "rows per page (0: the server's default)",
    "--page-token": "continue after the page that returned this token",
    "--log-level": "log verbosity",
}


def plain_text(text: str) -> str:
    """``text`` without reST markup: ````x```` and ``:role:`x``` become ``x``."""
    return _REST.sub(lambda m: m.group(1) or m.group(2), text)


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the descriptions' own line breaks, strips reST markup, and shows every
    option's default (unless it has none or its help already says it)."""

    def _format_text(self, text: str) -> str:
        return super()._format_text(plain_text(text))

    def _get_help_string(self, action: argparse.Action) -> str:
        help_text = action.help or ""
        default = action.default
        if (
            action.option_strings
            and "%(default)" not in help_text
            and "default" not in help_text
            and default not in (None, False, argparse.SUPPRESS, [], "")
        ):
            help_text += " (default: %(default)s)"
        return plain_text(help_text)


def _version() -> str:
    try:
        return importlib.metadata.version("neural-mlops")
    except importlib.metadata.PackageNotFoundError:  # running from a source tree
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="neural-mlops",
        description="Model registry, A/B tests, rollouts and audit for ML models.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"neural-mlops {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        module.register(sub)
    _house_style(parser)
    return parser


def _house_style(parser: argparse.ArgumentParser) -> None:
    """Every sub-command formats with :class:`HelpFormatter` (whatever its module asked
    for), and options a module left without help get the shared text for their name."""
    parser.formatter_class = HelpFormatter
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _house_style(child)
        elif action.option_strings and action.help is None:
            action.help = SHARED_HELP.get(action.option_strings[-1])


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from neural.mlops.cli._output import use_credentials

    use_credentials(args)  # --token/--ca-cert/--client-cert/--client-key for every channel
    try:
        return int(args.handler(args) or 0)
    except MLOpsError as exc:
        print(f"error: {exc.status.lower().replace('_', ' ')}: {exc}", file=sys.stderr)
        if exc.status == "UNAVAILABLE" and getattr(args, "target", None):
            print(_unavailable_hint(str(args.target)), file=sys.stderr)
        return EXIT_CODES.get(exc.status, 1)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


def _unavailable_hint(target: str) -> str:
    """What to do when nothing answers at ``target`` (the first thing a newcomer meets)."""
    address = target.removeprefix("grpc://").removeprefix("grpcs://")
    return (
        f"hint: no control plane answers at {target}. Start one with\n"
        f"  neural-mlops serve --data-dir ./mlops-data --listen {address}\n"
        "or work on a local store without a server: --target ./mlops-data"
    )


if __name__ == "__main__":
    sys.exit(main())
