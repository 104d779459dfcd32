"""Third-party peers some tests start (MLServer and tritonclient virtualenvs, Node.js, an
MLflow virtualenv): one rule for when one is missing.

CI prepares every peer first (``.ci/run``), so there a missing peer is a failure. On a
developer's machine the README's test command must pass on a fresh clone, so a missing
peer skips its tests with one line saying how to get it.
"""

from __future__ import annotations

import os

import pytest

SETUP = "bash tests/peers/setup_peers.sh"


def in_ci() -> bool:
    return bool(os.environ.get("CI"))


def require_peer(ready: bool, what: str, how: str = SETUP, *, required_in_ci: bool = True) -> None:
    """Return when the peer is ``ready``; otherwise fail in CI, skip elsewhere."""
    if ready:
        return
    message = f"{what} not installed; to run these tests: {how}"
    if required_in_ci and in_ci():
        pytest.fail(message)
    pytest.skip(message)
