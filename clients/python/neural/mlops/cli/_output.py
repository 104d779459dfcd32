"""Shared CLI plumbing: the target option, JSON conversion and table rendering."""

from __future__ import annotations

import argparse
import dataclasses
import enum
import json
import os
import sys
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

DEFAULT_TARGET = "grpc://127.0.0.1:50051"


def add_common(parser: argparse.ArgumentParser) -> None:
    """Options every client sub-command accepts."""
    parser.add_argument(
        "--target",
        default=os.environ.get("NEURAL_MLOPS_TARGET", DEFAULT_TARGET),
        help="grpc://HOST:PORT (grpcs:// for TLS) of a control plane, or a folder for the "
        "embedded store (env NEURAL_MLOPS_TARGET; default %(default)s)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")
    add_credentials(parser)


CREDENTIAL_FLAGS = {
    "--token": "API token or OIDC JWT sent as a bearer token (env NEURAL_MLOPS_TOKEN)",
    "--ca-cert": "CA certificate (PEM) that verifies a grpcs:// server (env NEURAL_MLOPS_CA_CERT;"
    " default: the system's trust store)",
    "--client-cert": "client certificate (PEM) for mTLS (env NEURAL_MLOPS_CLIENT_CERT)",
    "--client-key": "key of --client-cert (PEM) (env NEURAL_MLOPS_CLIENT_KEY)",
}


def add_credentials(parser: argparse.ArgumentParser) -> None:
    """The credential flags, each unless the command defines it already (some commands
    read --token themselves). :func:`neural.mlops.cli.main` hands them to the channel
    settings, over the environment."""
    for flag, text in CREDENTIAL_FLAGS.items():
        if flag not in parser._option_string_actions:
            parser.add_argument(flag, help=text)


def use_credentials(args: argparse.Namespace) -> None:
    """Hand this command's credential flags to every channel it opens (flags over env)."""
    values = {name: getattr(args, name, None) for name in ("token", "ca_cert", "client_cert",
                                                             "client_key")}
    # Plain commands (--help, serve, dev-certs) do not pay for importing grpc; an earlier
    # command's flags in the same process are cleared all the same.
    if any(values.values()) or "neural.mlops._channel" in sys.modules:
        from neural.mlops._channel import ChannelSettings

        ChannelSettings.set_flags(**values)


def jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, datetime):
        return obj.isoformat()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, float) and obj != obj:  # NaN never reaches JSON
        return None
    return obj


def print_json(obj: Any) -> None:
    json.dump(jsonable(obj), sys.stdout, indent=2, sort_keys=True, allow_nan=False)
    sys.stdout.write("\n")


def _cell(value: Any) -> str:
    value = jsonable(value)
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list):
        return ",".join(_cell(v) for v in value)
    if isinstance(value, dict):
        return " ".join(f"{k}={_cell(v)}" for k, v in value.items())
    return str(value)


def print_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    line = "  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True))
    print(line.rstrip())
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def print_record(fields: Iterable[tuple[str, Any]]) -> None:
    items = list(fields)
    width = max((len(k) for k, _ in items), default=0)
    for key, value in items:
        print(f"{key.ljust(width)}  {_cell(value)}")


def emit(args: argparse.Namespace, obj: Any, render: Any) -> None:
    """``--json`` prints ``obj``; otherwise ``render()`` prints for people."""
    if getattr(args, "json", False):
        print_json(obj)
    else:
        render()
