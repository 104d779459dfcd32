"""Authentication and authorization on a real `neural-mlops serve --auth token` process:
every role against every RPC (driven from the permission table), each token path,
impersonation, four-eyes between two principals, revocation, scoped grants."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from support.databases import store_args
from support.processes import ServerProcess, start_server
from support.rpc import call, message, status
from support.status import details

from neural.mlops.server.auth.permissions import RULES
from neural.mlops.server.auth.roles import PUBLIC, ROLES, SESSION

AUTH = "/neural.mlops.v1.AuthService/"
REG = "/neural.mlops.v1.RegistryService/"
AUDIT = "/neural.mlops.v1.AuditService/"


def _whole_time() -> object:
    from google.protobuf.timestamp_pb2 import Timestamp

    return message(AUDIT + "GenerateComplianceReport", start_time=Timestamp(seconds=0),
                   end_time=Timestamp(seconds=4_102_444_800))
DENIED = grpc.StatusCode.PERMISSION_DENIED
UNAUTH = grpc.StatusCode.UNAUTHENTICATED


def bootstrap(data_dir: Path, *extra: str) -> dict[str, str]:
    out = subprocess.run(
        [sys.executable, "-m", "neural.mlops", "auth", "bootstrap", *store_args(data_dir),
         "--json", *extra], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


class Plane:
    def __init__(self, srv: ServerProcess, admin: str) -> None:
        self.srv = srv
        self.admin = admin
        self.channel = grpc.insecure_channel(srv.address)

    def token(self, name: str, *roles: str, models: tuple[str, ...] = (),
              expires: int = 0) -> tuple[str, str]:
        """(secret, token id) of a new token."""
        resp = call(self.channel, AUTH + "CreateToken", message(
            AUTH + "CreateToken", name=name, roles=list(roles), models=list(models),
            expires_in_seconds=expires), token=self.admin)
        return resp.secret, resp.token.token_id


def _plane(tmp: Path) -> Iterator[Plane]:
    admin = bootstrap(tmp)["token"]
    srv = start_server(tmp, "--auth", "token")
    plane = Plane(srv, admin)
    yield plane
    plane.channel.close()
    srv.stop()


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Plane]:
    yield from _plane(tmp_path_factory.mktemp("auth-plane"))


@pytest.fixture(scope="module")
def matrix_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Plane]:
    """A server of its own: the admin row purges and rotates keys with empty requests."""
    yield from _plane(tmp_path_factory.mktemp("auth-matrix"))


def _allowed(role: str | None, permission: str) -> bool:
    if permission == PUBLIC:
        return True
    if role is None:
        return False
    return permission == SESSION or permission in ROLES[role]


@pytest.mark.parametrize("role", [None, *ROLES])
def test_every_role_against_every_rpc(matrix_plane: Plane, role: str | None) -> None:
    secret = matrix_plane.token(f"matrix-{role}", role)[0] if role else None
    wrong = []
    for path, rule in sorted(RULES.items(), key=lambda kv: kv[0].endswith("/Purge")):
        code = status(matrix_plane.channel, path, token=secret, timeout=5)
        if _allowed(role, rule.permission):
            if code in (DENIED, UNAUTH):
                wrong.append(f"{path}: {code.name}, expected allowed ({rule.permission})")
        elif code != (UNAUTH if role is None else DENIED):
            wrong.append(f"{path}: {code.name}, expected refused ({rule.permission})")
    assert not wrong, "\n".join(wrong)


def test_missing_malformed_unknown_and_wrong_secret_are_unauthenticated(plane: Plane) -> None:
    secret, token_id = plane.token("probe", "viewer")
    path = REG + "ListModels"
    for bad in (None, "garbage", "nmo_", f"nmo_{token_id}", f"nmo_ffffffffffffffff_{'x' * 43}",
                secret[:-2] + ("AA" if not secret.endswith("AA") else "BB")):
        try:
            call(plane.channel, path, token=bad)
        except grpc.RpcError as err:
            assert err.code() == UNAUTH, (bad, err.details())
            assert err.details()
        else:
            pytest.fail(f"{bad!r} was accepted")
    basic = (("authorization", "Basic dXNlcjpwYXNz"),)
    assert status(plane.channel, path, metadata=basic) == UNAUTH
    assert status(plane.channel, path, token=secret) == grpc.StatusCode.OK


def test_a_revoked_token_fails_on_its_next_call(plane: Plane) -> None:
    secret, token_id = plane.token("short-lived", "viewer")
    assert status(plane.channel, REG + "ListModels", token=secret) == grpc.StatusCode.OK
    call(plane.channel, AUTH + "RevokeToken", message(AUTH + "RevokeToken", token_id=token_id),
         token=plane.admin)
    with pytest.raises(grpc.RpcError) as err:
        call(plane.channel, REG + "ListModels", token=secret)
    assert err.value.code() == UNAUTH and "revoked" in err.value.details()


def test_an_expired_token_is_unauthenticated(plane: Plane) -> None:
    import time

    secret, _ = plane.token("expiring", "viewer", expires=1)
    time.sleep(1.2)
    with pytest.raises(grpc.RpcError) as err:
        call(plane.channel, REG + "ListModels", token=secret)
    assert err.value.code() == UNAUTH and "expired" in err.value.details()


def _register(plane: Plane, token: str, name: str, version: str = "v1") -> object:
    meta = message(REG + "RegisterModel").metadata.__class__(
        name=name, version=version, framework="sklearn", artifact_uri=f"s3://b/{name}/{version}")
    return call(plane.channel, REG + "RegisterModel", message(REG + "RegisterModel", metadata=meta),
                token=token)


def test_four_eyes_between_two_principals(plane: Plane) -> None:
    alice, _ = plane.token("alice@example.com", "author", "reviewer")
    bob, bob_id = plane.token("bob@example.com", "reviewer")
    version = _register(plane, alice, "fraud")
    assert version.created_by == "alice@example.com"  # filled from the principal
    req = message(REG + "RequestPromotion", name="fraud", version="v1", target_stage=2)
    promo = call(plane.channel, REG + "RequestPromotion", req, token=alice)
    assert promo.requested_by == "alice@example.com"

    approve = message(REG + "ApprovePromotion", name="fraud", version="v1")
    with pytest.raises(grpc.RpcError) as own:
        call(plane.channel, REG + "ApprovePromotion", approve, token=alice)
    assert own.value.code() == DENIED and "requested this promotion" in own.value.details()

    # Mallory's trick from issue #12: claim to be someone else in the request field.
    as_bob = message(REG + "ApprovePromotion", name="fraud", version="v1",
                     approver="bob@example.com")
    with pytest.raises(grpc.RpcError) as imp:
        call(plane.channel, REG + "ApprovePromotion", as_bob, token=alice)
    assert imp.value.code() == DENIED
    assert details(imp.value).metadata["field"] == "approver"

    done = call(plane.channel, REG + "ApprovePromotion", approve, token=bob,
                metadata=(("x-neural-user", "mallory"),))  # a declared name is ignored
    assert done.approvals[0].approver == "bob@example.com"

    auditor, _ = plane.token("auditor", "auditor")
    chunk = call(plane.channel, AUDIT + "QueryEvents", message(
        AUDIT + "QueryEvents", event_types=["EVENT_TYPE_PROMOTION_APPROVED"]), token=auditor)
    [event] = [e for e in chunk.events if e.resource_id.startswith("fraud")]
    assert event.actor == "bob@example.com"
    assert json.loads(event.details_json)["auth"] == {"method": "token", "token_id": bob_id}


def test_an_actor_field_naming_someone_else_is_refused_with_the_field(plane: Plane) -> None:
    author, _ = plane.token("carol", "author")
    _register(plane, author, "churn")
    same = message(REG + "UpdateModelVersion", name="churn", version="v1", updated_by=" carol ")
    assert status(plane.channel, REG + "UpdateModelVersion", same, token=author).name == "OK"
    other = message(REG + "DeleteModelVersion", name="churn", version="v1", deleted_by="dave")
    with pytest.raises(grpc.RpcError) as err:
        call(plane.channel, REG + "DeleteModelVersion", other, token=author)
    assert err.value.code() == DENIED and "deleted_by" in err.value.details()
    assert status(plane.channel, REG + "GetModelVersion", message(
        REG + "GetModelVersion", name="churn", version="v1"), token=author).name == "OK"


def test_grants_scoped_to_model_globs(plane: Plane) -> None:
    scoped, _ = plane.token("fraud-team", "author", models=("fraud-*",))
    _register(plane, scoped, "fraud-eu")
    with pytest.raises(grpc.RpcError) as err:
        _register(plane, scoped, "pricing")
    assert err.value.code() == DENIED and "fraud-*" in err.value.details()
    get = REG + "GetModelVersion"
    assert status(plane.channel, get, message(get, name="fraud-eu", version="v1"),
                  token=scoped).name == "OK"
    assert status(plane.channel, get, message(get, name="pricing", version="v1"),
                  token=scoped) == DENIED
    # Listing across models needs an unscoped grant.
    assert status(plane.channel, REG + "ListModels", token=scoped) == DENIED


def test_grants_by_rpc_add_roles_and_are_audited(plane: Plane) -> None:
    viewer, _ = plane.token("erin", "viewer")
    req = message(REG + "RequestPromotion", name="fraud", version="v1", target_stage=2)
    assert status(plane.channel, REG + "RequestPromotion", req, token=viewer) == DENIED
    call(plane.channel, AUTH + "CreateGrant", message(
        AUTH + "CreateGrant", subject="erin", role="author", models="x-*"), token=plane.admin)
    me = call(plane.channel, AUTH + "WhoAmI", token=viewer)
    assert me.principal == "erin" and {g.role for g in me.grants} == {"viewer", "author"}
    x_req = message(REG + "RequestPromotion", name="x-1", version="v1", target_stage=2)
    assert status(plane.channel, REG + "RequestPromotion", x_req, token=viewer).name == "NOT_FOUND"
    assert status(plane.channel, REG + "RequestPromotion", req, token=viewer) == DENIED
    removed = call(plane.channel, AUTH + "DeleteGrant", message(
        AUTH + "DeleteGrant", subject="erin", role="author"), token=plane.admin)
    assert removed.removed == 1
    chunk = call(plane.channel, AUDIT + "QueryEvents", message(
        AUDIT + "QueryEvents", resource_type="role_grant"), token=plane.admin)
    assert {e.action for e in chunk.events} >= {"role_granted", "role_revoked"}


def test_a_sidecar_reports_metrics_only_under_its_own_name(plane: Plane) -> None:
    sidecar, _ = plane.token("sidecar-eu", "sidecar")
    batch = message("/neural.mlops.v1.RoutingService/ReportMetrics", sidecar_id="other",
                    sequence=1, created_us=1)
    ack = call(plane.channel, "/neural.mlops.v1.RoutingService/ReportMetrics", batch,
               token=sidecar)
    assert ack.sidecar_id == "sidecar-eu/other"
    assert status(plane.channel, AUTH + "CreateToken", token=sidecar) == DENIED
    assert status(plane.channel, AUDIT + "Purge", token=sidecar) == DENIED


def test_failed_authentications_are_audited_rate_limited(tmp_path: Path) -> None:
    for fresh in _plane(tmp_path):
        for _ in range(5):
            assert status(fresh.channel, REG + "ListModels",
                          token="nmo_0000000000000000_nope") == UNAUTH
        chunk = call(fresh.channel, AUDIT + "QueryEvents", message(
            AUDIT + "QueryEvents", event_types=["EVENT_TYPE_ACCESS_DENIED"]), token=fresh.admin)
        [event] = chunk.events  # five refusals, one event per peer and reason a minute
        assert event.actor == "unauthenticated" and event.resource_id == REG + "ListModels"
        assert json.loads(event.details_json)["message"] == "unknown API token"


def test_health_needs_no_credentials(plane: Plane) -> None:
    assert status(plane.channel, "/grpc.health.v1.Health/Check").name == "OK"


def test_bootstrap_writes_the_token_file_owner_only(tmp_path: Path) -> None:
    out = tmp_path / "admin.token"
    subprocess.run([sys.executable, "-m", "neural.mlops", "auth", "bootstrap", "--data-dir",
                    str(tmp_path / "d"), "--output", str(out)], check=True, capture_output=True)
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    assert out.read_text().startswith("nmo_")


def test_token_authenticated_changes_are_no_finding(plane: Plane) -> None:
    auditor, _ = plane.token("report-auditor", "auditor")
    report = call(plane.channel, AUDIT + "GenerateComplianceReport", _whole_time(),
                  token=auditor)
    body = json.loads(report.report_json)
    assert body["summary"]["unauthenticated_change_count"] == 0
    assert body["unauthenticated_changes"] == []
