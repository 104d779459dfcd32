"""Conventions every ``neural-mlops`` command keeps, checked over the whole parser tree so
that commands added later keep them too."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from neural.mlops.cli import EXIT_CODES, HelpFormatter, build_parser
from neural.mlops.cli.completion import _walk, command_tree
from neural.mlops.server.errors import ERROR_CLASSES

# Commands that run processes, print scripts or write local files rather than report data.
NOT_DATA = {"serve", "sidecar", "demo", "demo-model", "completion", "dev-certs"}

# Data commands that work on a store where the command runs, never through a control
# plane, and why; they take the store the way ``serve`` does, so --target would mislead.
LOCAL_STORE = {
    # The first admin token: it must work before any token exists, so it writes straight
    # to the store (--data-dir / --database-url / --config), running server or not.
    "auth bootstrap": "writes the first admin token straight into the store",
    # Store administration moves whole stores, below any control plane.
    "admin migrate-store": "copies a store's rows and files into another (empty) database",
    "admin backup": "snapshots the store's database and files into one file",
    "admin restore": "writes a backup into a new, empty store",
}


def _leaves() -> dict[str, object]:
    return {
        path: node
        for path, node in _walk(command_tree(build_parser()))
        if path and not node.subcommands
    }


def test_every_data_command_has_json_output() -> None:
    missing = [
        path
        for path, node in _leaves().items()
        if path.split()[0] not in NOT_DATA and "--json" not in node.options
    ]  # type: ignore[attr-defined]
    assert missing == []


def test_every_client_command_can_choose_its_target() -> None:
    missing = [
        path
        for path, node in _leaves().items()
        if path.split()[0] not in NOT_DATA | {"ci"}
        and path not in LOCAL_STORE
        and "--target" not in node.options
    ]  # type: ignore[attr-defined]
    assert missing == []


def test_local_store_commands_name_their_store_not_a_target() -> None:
    leaves = _leaves()
    for path in LOCAL_STORE:
        options = leaves[path].options  # type: ignore[attr-defined]
        assert "--data-dir" in options and "--target" not in options, path


def test_every_command_has_a_help_line() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    helps = {a.dest: a.help for a in sub._choices_actions}
    assert all(helps.get(name) for name in sub.choices), helps


def test_exit_codes_are_distinct_per_kind_of_error() -> None:
    # Scripts branch on these: each domain error kind has its own code, none is 0 or 1
    # (1 is "the answer is no": a refused gate, a rolled-back canary).
    for cls in ERROR_CLASSES:
        if cls.status in EXIT_CODES:
            assert EXIT_CODES[cls.status] not in (0, 1)
    assert {
        "INVALID_ARGUMENT",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "FAILED_PRECONDITION",
        "PERMISSION_DENIED",
        "UNAVAILABLE",
    } <= set(EXIT_CODES)


def _arguments() -> Iterator[tuple[str, argparse.Action]]:
    """(command path, argument) for every argument of every sub-command, at any depth."""

    def walk(parser: argparse.ArgumentParser, path: str) -> Iterator[tuple[str, argparse.Action]]:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    yield from walk(child, f"{path} {name}")
            elif not isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
                yield path, action

    return walk(build_parser(), "neural-mlops")


def _name(action: argparse.Action) -> str:
    return "/".join(action.option_strings) or action.dest


def test_every_option_and_argument_has_a_help_line() -> None:
    missing = [
        f"{path} {_name(a)}"
        for path, a in _arguments()
        if a.help is not argparse.SUPPRESS and not (a.help or "").strip()
    ]
    assert missing == [], f"{len(missing)} without help: {missing}"


def test_every_option_with_a_default_shows_it_in_its_help() -> None:
    formatter = HelpFormatter("neural-mlops")
    hidden = []
    for path, action in _arguments():
        if not action.option_strings or action.help is argparse.SUPPRESS:
            continue
        if action.default in (None, False, [], "", argparse.SUPPRESS):
            continue
        text = formatter._expand_help(action)  # what --help prints for it
        if "default" not in text:
            hidden.append(f"{path} {_name(action)}")
    assert hidden == []
