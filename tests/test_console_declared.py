"""The console on a server without authentication (declared names, as every client
declares them) and the ``--http-listen`` address rules."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from support.console import Console, console_url, start_console_server  # noqa: E402
from support.databases import store_args  # noqa: E402
from support.processes import start_server  # noqa: E402

pytestmark = pytest.mark.storage


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server, console_url = start_console_server(tmp_path_factory.mktemp("declared") / "data")
    try:
        yield console_url
    finally:
        server.stop()


def test_a_declared_name_logs_in_and_may_call_everything(url: str) -> None:
    alice = Console(url)
    r = alice.login(name=" Alice@Example.com ")
    assert r.status_code == 200, r.text
    session = r.json()
    assert session["auth_mode"] == "none" and session["subject"] == "alice@example.com"
    assert "neural.mlops.v1.AuditService/Purge" in session["allowed"]  # no authorization
    assert alice.ok("AuthService", "WhoAmI")["principal"] == "alice@example.com"


def test_a_session_cannot_act_under_another_name(url: str) -> None:
    alice = Console(url)
    alice.login(name="alice@example.com")
    r = alice.rpc("RegistryService", "ApprovePromotion",
                  {"name": "m", "version": "1", "approver": "bob@example.com"})
    assert r.status_code == 403
    assert r.json()["details"][0]["reason"] == "IMPERSONATION"


def test_a_login_needs_a_printable_ascii_name(url: str) -> None:
    for body in ({}, {"name": ""}, {"name": "al\u200bice"}, {"name": "ålice"},
                 {"token": "nmo_x_y"}):
        r = Console(url).login(**body)
        assert r.status_code == 400, body
        assert r.json()["code"] == 3


def test_a_busy_explicit_console_port_is_an_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        out = subprocess.run(
            [sys.executable, "-m", "neural.mlops", "serve", *store_args(tmp_path / "d"),
             "--listen", "127.0.0.1:0", "--http-listen", f"127.0.0.1:{port}"],
            capture_output=True, text=True, timeout=120)
    assert out.returncode == 8
    assert f"cannot serve the console on 127.0.0.1:{port}" in out.stderr


def test_http_listen_off_serves_no_console(tmp_path: Path) -> None:
    server = start_server(tmp_path / "d", "--http-listen", "off")
    try:
        server.stop()
        assert server.proc.stdout is not None
        assert "console at" not in server.proc.stdout.read()
    finally:
        server.stop()


def test_a_non_loopback_console_without_authentication_is_refused(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "neural.mlops", "serve", *store_args(tmp_path / "d"),
         "--listen", "127.0.0.1:0", "--http-listen", "0.0.0.0:0"],
        capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "console" in out.stderr


def test_a_busy_default_port_falls_back_to_an_ephemeral_one(tmp_path: Path) -> None:
    busy = socket.socket()
    try:
        busy.bind(("127.0.0.1", 8080))
        busy.listen(1)
    except OSError:
        pass  # another process holds it: busy all the same
    try:
        server = start_server(tmp_path / "d")  # no --http-listen: the default address
        try:
            url = console_url(server)
        finally:
            server.stop()
    finally:
        busy.close()
    assert url.startswith("http://127.0.0.1:") and not url.endswith(":8080")
