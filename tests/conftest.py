"""Shared fixtures: real control-plane processes on free loopback ports."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from support.processes import ServerProcess, start_server  # noqa: E402


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A `neural-mlops serve` subprocess with its own store; stopped with SIGTERM."""
    srv = start_server(tmp_path / "server-data")
    yield srv
    srv.stop()


@pytest.fixture
def in_tmp(tmp_path: Path) -> Iterator[Path]:
    """Run the test with tmp_path as the working directory (the guide uses relative paths)."""
    old = Path.cwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(old)
