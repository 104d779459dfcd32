"""A PostgreSQL outage seen from the control plane: health says NOT_SERVING, calls fail
with UNAVAILABLE (never INTERNAL), and the server recovers by itself once the database is
reachable again. The outage is a TCP proxy between the server and PostgreSQL that the test
cuts and restores (the machine's PostgreSQL is shared and stays up)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy.engine import make_url
from support.processes import start_server
from support.tcpproxy import TcpProxy

from neural.mlops.audit import AuditLogger
from neural.mlops.errors import Unavailable
from neural.mlops.registry import ModelRegistry

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def _health(address: str) -> int:
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        return stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=5).status


def _eventually(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"{what} within {timeout}s")
        time.sleep(0.2)
    return time.monotonic() - start


def test_a_database_outage_is_not_serving_and_unavailable_then_recovers_by_itself(
    tmp_path: Path, postgres_url: str
) -> None:
    db = make_url(postgres_url)
    proxy = TcpProxy(db.host or "127.0.0.1", db.port or 5432)
    url = db.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    srv = start_server(tmp_path / "data", "--database-url", url)
    try:
        registry = ModelRegistry(srv.url, timeout=20)
        registry.register_model(name="m", version="1", created_by="ds@x.com")
        assert _health(srv.address) == SERVING

        proxy.cut()
        _eventually(lambda: _health(srv.address) == NOT_SERVING, 15, "not NOT_SERVING")
        with pytest.raises(Unavailable):
            registry.get_model_version("m", "1")
        with pytest.raises(Unavailable):
            registry.register_model(name="m", version="2", created_by="ds@x.com")

        proxy.restore()
        _eventually(lambda: _health(srv.address) == SERVING, 20, "not SERVING again")
        assert registry.get_model_version("m", "1").version == "1"
        registry.register_model(name="m", version="3", created_by="ds@x.com")
        versions = [v.version for v in registry.list_versions("m")]
        assert sorted(versions) == ["1", "3"]  # the refused write left nothing behind
        assert AuditLogger(srv.url).verify_chain().valid
    finally:
        srv.stop()
        proxy.close()
