"""Console sessions end to end, with real control planes (``serve --auth token
--http-listen``) and a real HTTP client: a login survives a restart, a revoked token ends
its sessions at once, the stored row is no way in, an idle session ends, and two replicas
on one PostgreSQL database share their sessions (log in on A, use it on B, log out on B,
ended on A)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support import databases
from support.console import (
    Console,
    bootstrap_admin,
    console_url,
    cookie_attributes,
    start_console_server,
)
from support.databases import execute_sql
from support.processes import ServerProcess, start_server

from neural.mlops.server.app import check_exposure
from neural.mlops.server.config import ServerConfig

pytestmark = pytest.mark.storage


def new_user(admin: Console, url: str, name: str, role: str = "viewer") -> tuple[Console, str]:
    """A token for ``name`` created through the console, logged in at ``url``; (console,
    token id)."""
    made = admin.ok("AuthService", "CreateToken", {"name": name, "roles": [role]})
    console = Console(url)
    assert console.login(token=made["secret"]).status_code == 200
    console.secret = made["secret"]  # type: ignore[attr-defined]
    return console, made["token"]["token_id"]


def same_session(console: Console, url: str) -> Console:
    """The browser's cookie and CSRF token, sent to another console address."""
    return Console(url, cookie=console.cookie, csrf=console.csrf)


def refused_as_ended(r: Any, why: str) -> None:
    assert r.status_code == 401, r.text
    body = r.json()
    assert body["code"] == 16 and body["details"][0]["reason"] == "SESSION_ENDED", body
    assert why in body["message"]
    cleared = cookie_attributes(r.headers["Set-Cookie"])
    assert cleared["nmo_session"] in ("", '""') and cleared.get("max-age") == "0"


@dataclass
class Plane:
    """The module's control plane; :meth:`restart` replaces its process (a new port)."""

    data: Path
    server: ServerProcess
    url: str
    admin: Console

    def restart(self) -> None:
        assert self.server.stop() == 0
        self.server, self.url = start_console_server(self.data, "--auth", "token")


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Plane]:
    data = tmp_path_factory.mktemp("console-sessions") / "data"
    token = bootstrap_admin(data)
    server, url = start_console_server(data, "--auth", "token")
    holder = Plane(data, server, url, Console(url))
    try:
        assert holder.admin.login(token=token).status_code == 200
        yield holder
    finally:
        holder.server.stop()


def test_revoking_a_token_ends_the_console_sessions_opened_with_it(plane: Plane) -> None:
    url, admin = plane.url, plane.admin
    alice, token_id = new_user(admin, url, "alice@x.com")
    again = Console(url)  # a second browser of the same token
    assert again.login(token=alice.secret).status_code == 200  # type: ignore[attr-defined]
    bob, _ = new_user(admin, url, "bob@x.com")
    assert alice.rpc("RegistryService", "ListModels").status_code == 200
    admin.ok("AuthService", "RevokeToken", {"token_id": token_id})
    refused_as_ended(alice.rpc("RegistryService", "ListModels"), "its API token was revoked")
    assert alice.session()["authenticated"] is False
    refused_as_ended(again.get("/api/download/audit-export"), "its API token was revoked")
    assert bob.rpc("RegistryService", "ListModels").status_code == 200  # not bob's token
    relogin = Console(url).login(token=alice.secret)  # type: ignore[attr-defined]
    assert relogin.status_code == 401


def test_the_stored_row_holds_neither_token_nor_session_id_nor_csrf_token(
        plane: Plane) -> None:
    url, admin, data = plane.url, plane.admin, plane.data
    carol, token_id = new_user(admin, url, "carol@x.com")
    secret: str = carol.secret  # type: ignore[attr-defined]
    [rows] = execute_sql(data, "SELECT * FROM console_sessions")
    key = hashlib.sha256(carol.cookie.encode()).hexdigest()
    [row] = [r for r in rows if key in r]
    text = repr(rows)
    for value in (secret, secret.rsplit("_", 1)[1], carol.cookie, carol.csrf):
        assert value not in text
    assert "carol@x.com" in row and token_id in row  # who, and which token: not secrets
    # a stolen row's key used as a cookie is not a session
    thief = Console(url, cookie=key, csrf=carol.csrf)
    r = thief.rpc("RegistryService", "ListModels")
    assert r.status_code == 401 and r.json()["details"][0]["reason"] == "NO_SESSION"
    assert carol.rpc("RegistryService", "ListModels").status_code == 200


def test_a_login_survives_a_restart_of_the_control_plane(plane: Plane) -> None:
    before, _ = new_user(plane.admin, plane.url, "frank@x.com", "author")
    plane.restart()  # a new process on the same store, on another port
    after = same_session(before, plane.url)
    session = after.session()
    assert session["authenticated"] and session["subject"] == "frank@x.com"
    assert session["csrf_token"] == before.csrf
    r = after.rpc("AuditService", "LogEvent", {"event": {
        "event_type": "EVENT_TYPE_CUSTOM", "action": "after-restart",
        "resource_type": "note", "resource_id": "r1"}})
    assert r.status_code == 200 and r.json()["actor"] == "frank@x.com"
    assert after.post("/logout", {}).status_code == 200
    r = after.rpc("RegistryService", "ListModels")
    assert r.status_code == 401 and r.json()["details"][0]["reason"] == "NO_SESSION"


def test_an_idle_session_ends(tmp_path: Path) -> None:
    data = tmp_path / "data"
    # 0.05 minutes: 3 s without a request ends the session
    server, url = start_console_server(data, "--console-idle-minutes", "0.05")  # auth none
    try:
        console = Console(url)
        assert console.login(name="gina@x.com").status_code == 200
        for _ in range(4):  # 4 x 1 s: kept alive by its use
            time.sleep(1.0)
            assert console.rpc("RegistryService", "ListModels").status_code == 200
        time.sleep(3.5)
        refused_as_ended(console.rpc("RegistryService", "ListModels"), "idle for more than")
        [[(count,)]] = execute_sql(data, "SELECT COUNT(*) FROM console_sessions")
        assert count == 0
    finally:
        server.stop()


def test_a_lifetime_that_is_not_positive_is_refused_at_start() -> None:
    for flags in ({"console_idle_minutes": 0.0}, {"console_session_hours": -1.0}):
        with pytest.raises(ValueError, match="console-idle-minutes must be positive"):
            check_exposure(ServerConfig(http_listen="127.0.0.1:0", **flags))  # type: ignore[arg-type]


# --- two replicas on one PostgreSQL database ---


def _pg_store(data_dir: Path) -> str:
    pg = databases.reachable_postgres(only_in_storage_half=True)
    return pg.for_dir(data_dir)


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, str]]:
    """(console URL of A, of B, the admin token)."""
    data = tmp_path_factory.mktemp("console-replicas") / "shared"
    url = _pg_store(data)
    out = subprocess.run(
        [sys.executable, "-m", "neural.mlops", "auth", "bootstrap", "--data-dir", str(data),
         "--database-url", url, "--json"], capture_output=True, text=True, timeout=120,
        check=True)
    token = str(json.loads(out.stdout)["token"])
    started: list[ServerProcess] = []
    try:
        for _ in range(2):
            started.append(start_server(data, "--database-url", url, "--auth", "token",
                                        "--http-listen", "127.0.0.1:0"))
        yield console_url(started[0]), console_url(started[1]), token
    finally:
        for server in started:
            server.stop()


def test_a_login_on_one_replica_works_on_the_other_and_logout_ends_it_on_both(
        replicas: tuple[str, str, str]) -> None:
    a_url, b_url, token = replicas
    on_a = Console(a_url)
    assert on_a.login(token=token).status_code == 200
    on_b = same_session(on_a, b_url)
    assert on_b.session()["authenticated"] is True
    made = on_b.ok("AuthService", "CreateToken", {"name": "dana@x.com", "roles": ["viewer"]})
    dana_a = Console(a_url)
    assert dana_a.login(token=made["secret"]).status_code == 200
    dana_b = same_session(dana_a, b_url)
    assert dana_b.ok("AuthService", "WhoAmI")["principal"] == "dana@x.com"
    assert dana_b.post("/logout", {}).status_code == 200  # logged out on B ...
    r = dana_a.rpc("RegistryService", "ListModels")  # ... ended on A at once
    assert r.status_code == 401 and r.json()["details"][0]["reason"] == "NO_SESSION"
    assert dana_a.session()["authenticated"] is False
    assert on_a.rpc("RegistryService", "ListModels").status_code == 200  # others unaffected


def test_a_token_revoked_on_one_replica_ends_its_sessions_on_the_other(
        replicas: tuple[str, str, str]) -> None:
    a_url, b_url, token = replicas
    admin_b = Console(b_url)
    assert admin_b.login(token=token).status_code == 200
    made = admin_b.ok("AuthService", "CreateToken", {"name": "erin@x.com", "roles": ["viewer"]})
    erin_a = Console(a_url)
    assert erin_a.login(token=made["secret"]).status_code == 200
    assert erin_a.rpc("RegistryService", "ListModels").status_code == 200
    admin_b.ok("AuthService", "RevokeToken", {"token_id": made["token"]["token_id"]})
    refused_as_ended(erin_a.rpc("RegistryService", "ListModels"), "its API token was revoked")
