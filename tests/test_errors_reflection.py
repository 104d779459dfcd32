"""Server reflection v1 (what newer clients try first) beside v1alpha, read by an outside
client: `buf curl`, forced to one protocol at a time."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support.processes import ServerProcess

SERVICES = {
    "neural.mlops.v1.RegistryService",
    "neural.mlops.v1.ExperimentService",
    "neural.mlops.v1.DeploymentService",
    "neural.mlops.v1.AuditService",
    "neural.mlops.v1.RoutingService",
    "neural.mlops.v1.AuthService",
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
}


def _buf_curl(server: ServerProcess, protocol: str, *args: str) -> str:
    buf = shutil.which("buf") or str(Path(sys.executable).parent / "buf")
    if not Path(buf).exists():
        pytest.fail("buf is missing: pip install -e '.[dev]' (buf-bin)")
    out = subprocess.run(
        [buf, "curl", "--protocol", "grpc", "--http2-prior-knowledge",
         "--reflect-protocol", protocol, *args, f"http://{server.address}"],
        capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.fixture
def server(shared_server: ServerProcess) -> ServerProcess:
    """Reflection reads no state: the module's tests share one control plane."""
    return shared_server


@pytest.mark.parametrize("protocol", ["grpc-v1", "grpc-v1alpha"])
def test_reflection_lists_every_service(server: ServerProcess, protocol: str) -> None:
    listed = set(_buf_curl(server, protocol, "--list-services").split())
    assert listed == SERVICES


def test_reflection_v1_describes_methods_of_every_service(server: ServerProcess) -> None:
    """Listing methods resolves each service's file (and its imports) through v1."""
    methods = _buf_curl(server, "grpc-v1", "--list-methods").split()
    assert "neural.mlops.v1.RegistryService/GetModelVersion" in methods
    assert "grpc.reflection.v1.ServerReflection/ServerReflectionInfo" in methods
