"""Bad flags to `neural-mlops sidecar` / `demo-model`: exit 2, the field named, nothing starts."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["sidecar", "--listen", "nohostport", "--upstream", "127.0.0.1:1"], "listen"),
        (["sidecar", "--upstream", "127.0.0.1:1", "--control-plane", "x"], "control_plane"),
        (["sidecar", "--upstream", "127.0.0.1:1", "--flush-interval", "0"], "flush_interval"),
        (["sidecar", "--upstream", "127.0.0.1:1", "--shadow-queue", "0"], "shadow_queue"),
        (["demo-model", "--name", "m", "--error-rate", "1.5"], "--error-rate"),
        (["demo-model", "--name", "m", "--latency-ms", "-1"], "--latency-ms"),
        (["demo-model", "--name", "m", "--header", "no-equals-sign"], "--header"),
        (["demo-model", "--name", "m", "--header", "grpc-status=0"], "--header"),
    ],
)
def test_bad_flags_exit_2_naming_the_field(args: list[str], field: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "neural.mlops", *args], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: invalid argument:")
    assert field in proc.stderr
    assert proc.stdout == ""
