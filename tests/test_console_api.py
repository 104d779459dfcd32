"""The web console's HTTP API against a real control plane (``serve --auth token
--http-listen 127.0.0.1:0``) through a real HTTP client: transcoding of every service,
errors with their details, sessions, cookie flags, CSRF and Origin checks, permissions
and the audit trail seen through the console, security headers, live changes, export."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

sys.path.insert(0, str(Path(__file__).parent))

from support.console import (  # noqa: E402
    Console,
    bootstrap_admin,
    cookie_attributes,
    start_console_server,
)

pytestmark = pytest.mark.storage

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    data = tmp_path_factory.mktemp("console") / "data"
    admin = bootstrap_admin(data)
    server, url = start_console_server(data, "--auth", "token")
    try:
        yield url, admin
    finally:
        server.stop()


@pytest.fixture(scope="module")
def admin(plane: tuple[str, str]) -> Console:
    url, token = plane
    console = Console(url)
    assert console.login(token=token).status_code == 200
    return console


def user(plane: tuple[str, str], admin: Console, name: str, role: str) -> Console:
    secret = admin.ok("AuthService", "CreateToken", {"name": name, "roles": [role]})["secret"]
    console = Console(plane[0])
    assert console.login(token=secret).status_code == 200
    return console


def test_login_sets_a_strict_http_only_secure_cookie_and_answers_the_session(
        plane: tuple[str, str]) -> None:
    console = Console(plane[0])
    r = console.login(token=plane[1])
    assert r.status_code == 200, r.text
    cookie = cookie_attributes(r.headers["Set-Cookie"])
    assert len(cookie["nmo_session"]) >= 43  # 256 bits in base64url
    assert {"httponly", "secure"} <= set(cookie)
    assert cookie["samesite"] == "Strict" and cookie["path"] == "/"
    body = r.json()
    assert body["authenticated"] and body["auth_mode"] == "token"
    assert body["roles"] == ["admin"] and body["csrf_token"] and not body["oidc_login"]
    assert "neural.mlops.v1.RegistryService/ApprovePromotion" in body["allowed"]
    assert console.session()["subject"] == body["subject"]


def test_a_wrong_token_is_refused_with_the_servers_status(plane: tuple[str, str]) -> None:
    r = Console(plane[0]).login(token="nmo_nope_nope")
    assert r.status_code == 401
    assert r.json()["code"] == 16 and "Set-Cookie" not in r.headers
    r = Console(plane[0]).login(name="alice@x.com")  # no declared names with --auth token
    assert r.status_code == 400 and r.json()["code"] == 3


def test_logout_ends_the_session(plane: tuple[str, str], admin: Console) -> None:
    console = user(plane, admin, "leaver@x.com", "viewer")
    assert console.post("/logout", {}, **{"X-CSRF-Token": "wrong"}).status_code == 403
    assert console.post("/logout", {}).status_code == 200
    r = console.rpc("RegistryService", "ListModels")
    assert r.status_code == 401 and r.json()["code"] == 16
    assert console.session()["authenticated"] is False


def test_api_calls_need_a_session(plane: tuple[str, str]) -> None:
    r = Console(plane[0]).rpc("RegistryService", "ListModels")
    assert r.status_code == 401 and r.json()["details"][0]["reason"] == "NO_SESSION"


def test_csrf_token_missing_or_wrong_is_refused_and_the_right_one_accepted(
        admin: Console) -> None:
    for token in (None, "", "x" * 43, admin.csrf[:-1] + ("A" if admin.csrf[-1] != "A" else "B")):
        r = admin.rpc("AuthService", "WhoAmI", **{"X-CSRF-Token": token})  # type: ignore[arg-type]
        assert r.status_code == 403, token
        assert r.json()["code"] == 7 and r.json()["message"] == "CSRF token missing or wrong"
    assert admin.rpc("AuthService", "WhoAmI").status_code == 200


def test_a_foreign_origin_is_refused_even_with_the_token(plane: tuple[str, str],
                                                         admin: Console) -> None:
    r = admin.rpc("AuthService", "WhoAmI", Origin="https://evil.example")
    assert r.status_code == 403 and r.json()["code"] == 7
    r = requests.post(f"{plane[0]}/login", json={"token": plane[1]},
                      headers={"Origin": "https://evil.example"})
    assert r.status_code == 403 and "Set-Cookie" not in r.headers


def test_another_host_name_is_refused(plane: tuple[str, str]) -> None:
    r = requests.get(f"{plane[0]}/api/session", headers={"Host": "rebound.example:80"})
    assert r.status_code == 421


def test_security_headers_on_every_response(plane: tuple[str, str], admin: Console) -> None:
    responses = [
        requests.get(f"{plane[0]}/"), requests.get(f"{plane[0]}/static/nothing.js"),
        requests.get(f"{plane[0]}/api/session"), admin.rpc("RegistryService", "NoSuch"),
        admin.rpc("AuthService", "WhoAmI"), requests.get(f"{plane[0]}/nowhere"),
    ]
    for r in responses:
        for name, value in SECURITY_HEADERS.items():
            assert r.headers.get(name) == value, (r.url, name)


def test_one_rpc_of_every_service_transcodes(admin: Console) -> None:
    assert admin.ok("RegistryService", "ListModels") == {"models": [], "next_page_token": ""}
    assert admin.ok("ExperimentService", "ListTests")["tests"] == []
    assert admin.ok("DeploymentService", "ListDeployments")["deployments"] == []
    table = admin.ok("RoutingService", "GetRoutingTable")
    assert isinstance(table["version"], str)  # int64 as a string
    chain = admin.ok("AuditService", "VerifyChain")
    assert chain["valid"] is True
    who = admin.ok("AuthService", "WhoAmI")
    assert who["authenticated"] is True and who["method"].lower().endswith("token")


def test_a_server_streaming_rpc_answers_its_chunks_merged(admin: Console) -> None:
    page = admin.ok("AuditService", "QueryEvents", {"page_size": 2})
    assert len(page["events"]) == 2 and page["next_page_token"]
    created = page["events"][0]["time"]
    assert created.endswith("Z") and "T" in created  # RFC 3339


def test_errors_keep_status_and_details(admin: Console) -> None:
    r = admin.rpc("RegistryService", "GetModelVersion", {"name": "ghost", "version": "1"})
    assert r.status_code == 404
    body = r.json()
    assert body["code"] == 5 and "ghost" in body["message"]
    info = body["details"][0]
    assert info["@type"] == "type.googleapis.com/google.rpc.ErrorInfo"
    assert info["domain"] == "neural.mlops" and info["metadata"]["request_id"]
    r = admin.rpc("AuthService", "CreateGrant", {"subject": "bob@x.com", "role": "wizard"})
    assert r.status_code == 400
    kinds = {d["@type"].rsplit(".", 1)[1]: d for d in r.json()["details"]}
    assert kinds["BadRequest"]["field_violations"][0]["field"] == "role"


def test_malformed_requests_are_refused_naming_the_problem(admin: Console) -> None:
    r = admin.rpc("RegistryService", "GetModelVersion", {"nme": "x"})
    assert r.status_code == 400 and "nme" in r.json()["message"]
    r = admin.post("/api/v1/neural.mlops.v1.RegistryService/ListModels", ["not", "an object"])
    assert r.status_code == 400
    r = admin.rpc("RegistryService", "ListModels", {"page_size": "many"})
    assert r.status_code == 400 and r.json()["code"] == 3
    r = admin.post("/api/v1/neural.mlops.v1.RegistryService/ListModels", {"x": "y" * 5_000_000})
    assert r.status_code == 413


def test_the_request_id_is_passed_on_when_well_formed(admin: Console) -> None:
    r = admin.rpc("RegistryService", "GetModelVersion", {"name": "ghost", "version": "1"},
                  **{"X-Request-Id": "trace-42"})
    assert r.headers["X-Request-Id"] == "trace-42"
    assert r.json()["details"][0]["metadata"]["request_id"] == "trace-42"
    r = admin.rpc("RegistryService", "ListModels", **{"X-Request-Id": "bad id"})
    assert r.status_code == 200 and r.headers["X-Request-Id"] != "bad id"


def test_unknown_and_streaming_only_methods_are_404(admin: Console) -> None:
    for path in ("RegistryService/NoSuch", "NoService/ListModels", "RoutingService/WatchRoutes",
                 "RegistryService/RegisterModel"):
        r = admin.post(f"/api/v1/neural.mlops.v1.{path}", {})
        assert r.status_code == 404 and r.json()["code"] == 5, path
    r = admin.post("/api/v2/anything", {})
    assert r.status_code == 404 and r.json()["code"] == 5


def test_a_viewer_cannot_approve_and_is_not_offered_to(plane: tuple[str, str],
                                                       admin: Console) -> None:
    viewer = user(plane, admin, "viewer@x.com", "viewer")
    session = viewer.session()
    assert session["roles"] == ["viewer"]
    assert "neural.mlops.v1.RegistryService/ApprovePromotion" not in session["allowed"]
    assert "neural.mlops.v1.RegistryService/ListModels" in session["allowed"]
    r = viewer.rpc("RegistryService", "ApprovePromotion", {"name": "churn", "version": "1"})
    assert r.status_code == 403
    assert r.json()["code"] == 7 and r.json()["details"][0]["reason"] == "PERMISSION_MISSING"
    reviewer = user(plane, admin, "reviewer@x.com", "reviewer")
    assert "neural.mlops.v1.RegistryService/ApprovePromotion" in reviewer.session()["allowed"]


def test_console_actions_are_audited_under_the_logged_in_subject(
        plane: tuple[str, str], admin: Console) -> None:
    author = user(plane, admin, "author@x.com", "author")
    r = author.rpc("AuditService", "LogEvent", {"event": {
        "event_type": "EVENT_TYPE_CUSTOM", "action": "console-check",
        "resource_type": "note", "resource_id": "n1"}})
    assert r.status_code == 200, r.text
    assert r.json()["actor"] == "author@x.com"
    page = admin.ok("AuditService", "QueryEvents", {"resource_type": "note"})
    assert [e["actor"] for e in page["events"]] == ["author@x.com"]


def _changes(console: Console, until: float) -> Iterator[dict[str, str]]:
    with console.http.get(f"{console.url}/api/events", headers=console.headers(csrf=False),
                          stream=True, timeout=10) as r:
        assert r.status_code == 200
        assert r.headers["Content-Type"].startswith("text/event-stream")
        event = ""
        for line in r.iter_lines(decode_unicode=True):
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "change":
                yield json.loads(line[6:])
            if time.monotonic() > until:
                return


def test_live_changes_arrive_as_server_sent_events(plane: tuple[str, str],
                                                   admin: Console) -> None:
    import threading

    seen: list[dict[str, str]] = []
    ready = threading.Event()

    def listen() -> None:
        ready.set()
        for change in _changes(admin, time.monotonic() + 8):
            seen.append(change)
            if change["topic"] == "audit":
                return

    thread = threading.Thread(target=listen)
    thread.start()
    ready.wait()
    time.sleep(1.0)  # the stream is open and the feed has read the head
    admin.ok("AuthService", "CreateGrant", {"subject": "sse@x.com", "role": "viewer"})
    changed = time.monotonic()
    thread.join()
    assert any(c["topic"] == "audit" for c in seen), seen
    assert time.monotonic() - changed < 2.0 + 0.5  # the contract: within ~1 s, tested at 2 s


def test_audit_export_downloads_with_its_seal(plane: tuple[str, str], admin: Console) -> None:
    r = admin.get("/api/download/audit-export?format=jsonl")
    assert r.status_code == 200, r.text
    assert r.headers["Content-Disposition"] == 'attachment; filename="audit-export.jsonl"'
    lines = [json.loads(line) for line in r.text.splitlines() if line]
    header, events = lines[0], lines[1:]
    assert header["exported_by"] == admin.session()["subject"]
    assert len(events) == header["count"] and all("event_id" in e for e in events)
    assert r.headers["X-Neural-Audit-Seal"]
    seal = admin.get("/api/download/audit-export?format=csv&part=seal")
    assert seal.status_code == 200 and json.loads(seal.text)
    assert admin.get("/api/download/audit-export?format=xml").status_code == 400
    viewer = user(plane, admin, "peeker@x.com", "viewer")
    assert viewer.get("/api/download/audit-export?format=jsonl").status_code == 403
