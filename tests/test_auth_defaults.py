"""Without authentication: loopback only unless --insecure, declared identities recorded
as unauthenticated."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from support.processes import ServerProcess, start_server
from support.rpc import call, message

from neural.mlops.server.app import is_loopback
from neural.mlops.v1 import auth_pb2

AUDIT = "/neural.mlops.v1.AuditService/"


def _whole_time() -> object:
    from google.protobuf.timestamp_pb2 import Timestamp

    return message(AUDIT + "GenerateComplianceReport", start_time=Timestamp(seconds=0),
                   end_time=Timestamp(seconds=4_102_444_800))


def test_a_non_loopback_listen_without_auth_is_refused(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "neural.mlops", "serve", "--data-dir", str(tmp_path),
         "--listen", "0.0.0.0:0"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "without authentication" in out.stderr and "--insecure" in out.stderr
    assert not (tmp_path / "mlops.db").exists()  # refused before the store opens


def test_insecure_allows_a_non_loopback_listen(tmp_path: Path) -> None:
    srv = start_server(tmp_path, "--insecure", listen="0.0.0.0:0")
    try:
        assert srv.proc.poll() is None
    finally:
        srv.stop()


@pytest.mark.parametrize(("listen", "loopback"), [
    ("127.0.0.1:1", True), ("localhost:1", True), ("[::1]:1", True), ("127.8.0.1:1", True),
    ("0.0.0.0:1", False), ("[::]:1", False), ("10.0.0.1:1", False), ("example.com:1", False),
])
def test_loopback_addresses(listen: str, loopback: bool) -> None:
    assert is_loopback(listen) is loopback


@pytest.fixture
def server(shared_server: ServerProcess) -> ServerProcess:
    """The module's tests on a running server share one (none needs a fresh store)."""
    return shared_server


def test_declared_identities_are_recorded_as_unauthenticated(server: ServerProcess) -> None:
    with grpc.insecure_channel(server.address) as channel:
        event = message(AUDIT + "LogEvent").event.__class__(
            event_type="EVENT_TYPE_CUSTOM", action="probe",
            details_json='{"auth": {"method": "token"}}')
        logged = call(channel, AUDIT + "LogEvent", message(AUDIT + "LogEvent", event=event),
                      metadata=(("x-neural-user", "mallory"),))
    assert logged.actor == "mallory"
    # A caller cannot forge the authentication record.
    assert json.loads(logged.details_json)["auth"] == {"method": "none"}


def test_without_auth_a_bearer_token_is_ignored_and_the_name_declared(
    server: ServerProcess,
) -> None:
    with grpc.insecure_channel(server.address) as channel:
        me = call(channel, "/neural.mlops.v1.AuthService/WhoAmI", token="nmo_1_2",
                  metadata=(("x-neural-user", "dana"),))
    assert not me.authenticated and me.principal == "dana"
    assert me.method == auth_pb2.AUTH_METHOD_NONE


def test_the_compliance_report_lists_unauthenticated_changes(server: ServerProcess) -> None:
    with grpc.insecure_channel(server.address) as channel:
        event = message(AUDIT + "LogEvent").event.__class__(event_type="EVENT_TYPE_CUSTOM",
                                                            action="x")
        call(channel, AUDIT + "LogEvent", message(AUDIT + "LogEvent", event=event),
             metadata=(("x-neural-user", "mallory"),))
        report = call(channel, AUDIT + "GenerateComplianceReport", _whole_time())
    body = json.loads(report.report_json)
    assert body["summary"]["unauthenticated_change_count"] >= 1
    assert "mallory" in {e["actor"] for e in body["unauthenticated_changes"]}
