"""Every List RPC pages by key (server/pagination.py): while a client walks a list page by
page, rows are added (before and after its position) and removed (behind it); the walk
must neither repeat a row nor skip one that existed when it started. An offset token fails
these checks (an added row shifts the rest, a removed one hides the next), which is why
each list's change is chosen to land where an offset would break. Runs on SQLite and, in
the PostgreSQL half of CI, on PostgreSQL (the storage mark)."""

from __future__ import annotations

import itertools
import json
import random
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
import sqlalchemy as sa
from support.databases import store_args
from support.processes import ServerProcess, start_server
from support.rpc import call, message

from neural.mlops.ab_testing import ABTestManager
from neural.mlops.audit import AuditLogger
from neural.mlops.deployment import DeploymentManager
from neural.mlops.registry import ModelRegistry
from neural.mlops.server.auth.roles import ROLES
from neural.mlops.server.pagination import after_clause
from neural.mlops.v1 import experiments_pb2

pytestmark = pytest.mark.storage

REG = "/neural.mlops.v1.RegistryService/"
EXP = "/neural.mlops.v1.ExperimentService/"
DEP = "/neural.mlops.v1.DeploymentService/"
AUDIT = "/neural.mlops.v1.AuditService/"
AUTH = "/neural.mlops.v1.AuthService/"
ME = "ops@x.com"
_ids = itertools.count()


def _unique(prefix: str) -> str:
    return f"{prefix}{next(_ids)}"


class Lister:
    """Walks one List RPC over gRPC: ``field`` holds the items, ``key`` names one."""

    def __init__(self, channel: grpc.Channel, path: str, field: str,
                 key: Callable[[Any], Any], token: str | None = None, **fields: Any) -> None:
        self.channel, self.path, self.field, self.key = channel, path, field, key
        self.token, self.fields = token, fields

    def page(self, size: int, page_token: str) -> tuple[list[Any], str]:
        req = message(self.path, page_size=size, page_token=page_token, **self.fields)
        resp = call(self.channel, self.path, req, token=self.token, timeout=30)
        return [self.key(i) for i in getattr(resp, self.field)], resp.next_page_token

    def everything(self) -> list[Any]:
        return self.walk(1000, lambda: None)

    def walk(self, size: int, between: Callable[[], None]) -> list[Any]:
        seen, token = [], ""
        while True:
            items, token = self.page(size, token)
            seen += items
            if not token:
                return seen
            between()


def check_walk(lister: Lister, change: Callable[[], None], size: int = 2) -> list[Any]:
    """Walk the list calling ``change`` between pages; no repeat, no skip."""
    before = lister.everything()
    assert len(before) > 2 * size, "the list must span several pages"
    seen = lister.walk(size, change)
    assert len(seen) == len(set(seen)), f"a row came twice: {seen}"
    missing = [k for k in before if k not in seen]
    gone = getattr(change, "removed", set())
    assert not [k for k in missing if k not in gone], f"rows skipped: {missing}"
    return seen


class Changes:
    """A sequence of changes, one per call; records the keys it removed."""

    def __init__(self, *steps: Callable[[], Any]) -> None:
        self.steps = iter(itertools.cycle(steps))
        self.removed: set[Any] = set()

    def __call__(self) -> None:
        key = next(self.steps)()
        if key is not None:
            self.removed.add(key)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = start_server(tmp_path_factory.mktemp("pagination"))
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def channel(server: ServerProcess) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(server.address) as ch:
        yield ch


@pytest.fixture(scope="module")
def registry(server: ServerProcess) -> ModelRegistry:
    return ModelRegistry(server.url)


def _register(registry: ModelRegistry, name: str, version: str) -> None:
    registry.register_model(name=name, version=version, created_by=ME,
                            artifact_uri=f"s3://bucket/{name}/{version}")


def test_models_by_name_with_names_added_before_and_after_the_position(
        registry: ModelRegistry, channel: grpc.Channel) -> None:
    for name in ("pm-c1", "pm-c2", "pm-c3", "pm-c4", "pm-c5", "pm-c6"):
        _register(registry, name, "v1")
    lister = Lister(channel, REG + "ListModels", "models", lambda m: m.name, name_prefix="pm-")
    made = iter(["pm-a1", "pm-z1", "pm-a2", "pm-z2", "pm-a3"])
    seen = check_walk(lister, lambda: _register(registry, next(made), "v1"))
    assert seen == sorted(seen)


def _versions_walk(registry: ModelRegistry, lister: Lister, name: str) -> None:
    walked: list[str] = []

    def delete_seen() -> str:
        victim = next(v for v in lister.everything() if v not in walked)
        walked.append(victim)
        registry.delete_model_version(name, victim, ME)
        return victim

    seen = check_walk(lister, Changes(delete_seen, lambda: _register(registry, name,
                                                                     _unique("n"))))
    assert set(walked) <= set(seen)


def test_versions_and_search_with_versions_deleted_behind_and_added(
        registry: ModelRegistry, channel: grpc.Channel) -> None:
    for name in ("pv", "pw"):
        for i in range(7):
            _register(registry, name, f"v{i}")
    _versions_walk(registry, Lister(channel, REG + "ListVersions", "versions",
                                    lambda v: v.version, name="pv"), "pv")
    _versions_walk(registry, Lister(channel, REG + "SearchModelVersions", "versions",
                                    lambda v: v.version, name_prefix="pw"), "pw")


def test_pending_approvals_with_requests_cancelled_behind_and_added(
        registry: ModelRegistry, channel: grpc.Channel) -> None:
    for i in range(7):
        _register(registry, "pp", f"v{i}")
        registry.request_promotion("pp", f"v{i}", "staging", ME, reviewers=["rev@x.com"])
    lister = Lister(channel, REG + "ListPendingApprovals", "requests", lambda r: r.version,
                    name="pp")
    order = lister.everything()
    cancelled = iter(order)

    def cancel_oldest() -> str:
        version = next(cancelled)
        registry.cancel_promotion("pp", version, ME)
        return version

    def add() -> None:
        version = _unique("n")
        _register(registry, "pp", version)
        registry.request_promotion("pp", version, "staging", ME, reviewers=["rev@x.com"])

    check_walk(lister, Changes(cancel_oldest, add))


def test_history_with_moves_added_while_reading(
        registry: ModelRegistry, channel: grpc.Channel) -> None:
    _register(registry, "ph", "v1")
    aliases = itertools.count()
    for _ in range(6):
        registry.set_alias("ph", f"a{next(aliases)}", "v1", ME)
    lister = Lister(channel, REG + "GetHistory", "entries", lambda e: e.alias, name="ph")
    seen = check_walk(lister, lambda: registry.set_alias("ph", f"a{next(aliases)}", "v1", ME))
    assert seen == [f"a{i}" for i in range(len(seen))]


def test_tests_of_a_status_with_tests_leaving_it_behind_and_added(
        server: ServerProcess, registry: ModelRegistry, channel: grpc.Channel) -> None:
    _register(registry, "pt", "v1")
    _register(registry, "pt", "v2")
    manager = ABTestManager(server.url)

    def create() -> None:
        manager.create_test(name=_unique("t"), control_variant="pt:v1",
                            treatment_variant="pt:v2", created_by=ME)

    for _ in range(7):
        create()
    lister = Lister(channel, EXP + "ListTests", "tests", lambda t: t.test_id,
                    status=experiments_pb2.TEST_STATUS_DRAFT)
    drafts = iter(lister.everything())

    def start_oldest() -> str:
        test_id = next(drafts)
        manager.start_test(test_id)
        manager.stop_test(test_id)
        return test_id

    check_walk(lister, Changes(start_oldest, create))


def test_deployments_newest_first_with_deployments_added(
        server: ServerProcess, registry: ModelRegistry, channel: grpc.Channel) -> None:
    manager = DeploymentManager(server.url)

    def deploy() -> None:
        name = _unique("pd")
        _register(registry, name, "v1")
        manager.create_deployment(name, "v1", created_by=ME, override_reason="paging test")

    for _ in range(6):
        deploy()
    lister = Lister(channel, DEP + "ListDeployments", "deployments", lambda d: d.deployment_id)
    check_walk(lister, deploy)


def test_deployment_events_with_events_appended(
        server: ServerProcess, registry: ModelRegistry, channel: grpc.Channel) -> None:
    manager = DeploymentManager(server.url)
    _register(registry, "pe", "v1")
    dep = manager.create_deployment("pe", "v1", created_by=ME, override_reason="paging test")
    paused = [False]

    def toggle() -> None:
        (manager.resume if paused[0] else manager.pause)(dep.deployment_id, ME)
        paused[0] = not paused[0]

    for _ in range(6):
        toggle()
    lister = Lister(channel, DEP + "ListDeploymentEvents", "events", lambda e: e.seq,
                    deployment_id=dep.deployment_id)
    seen = check_walk(lister, toggle)
    assert seen == sorted(seen)
    assert [e.seq for e in manager.get_events(dep.deployment_id)] == lister.everything()
    assert [e.seq for e in manager.get_events(dep.deployment_id, seen[2])] == \
        lister.everything()[3:]


def test_shadows_newest_first_with_shadows_added(
        server: ServerProcess, registry: ModelRegistry, channel: grpc.Channel) -> None:
    manager = DeploymentManager(server.url)

    def shadow() -> None:
        name = _unique("ps")
        _register(registry, name, "v1")
        _register(registry, name, "v2")
        manager.shadow_deploy(f"{name}:v1", f"{name}:v2", 10.0, ME)

    for _ in range(6):
        shadow()
    lister = Lister(channel, DEP + "ListShadows", "shadows", lambda s: s.shadow_id)
    check_walk(lister, shadow)


def test_audit_events_reports_and_checkpoints_with_rows_added(
        server: ServerProcess, channel: grpc.Channel) -> None:
    audit = AuditLogger(server.url)
    for _ in range(6):
        audit.log_event("custom", user=ME, resource_id=_unique("r"))
    events = Lister(channel, AUDIT + "QueryEvents", "events", lambda e: e.seq)
    seen = check_walk(events, lambda: audit.log_event("custom", user=ME, resource_id="x"))
    assert seen == sorted(seen, reverse=True)

    def report() -> None:
        audit.generate_compliance_report("2020-01-01", "2100-01-01")

    for _ in range(6):
        report()
    check_walk(Lister(channel, AUDIT + "ListReports", "reports", lambda r: r.report_id), report)

    def checkpoint() -> None:
        audit.log_event("custom", user=ME, resource_id="x")
        audit.checkpoint()

    for _ in range(6):
        checkpoint()
    check_walk(Lister(channel, AUDIT + "ListCheckpoints", "checkpoints", lambda c: c.signature),
               checkpoint)


def test_a_token_of_one_list_is_refused_by_another(channel: grpc.Channel) -> None:
    _, token = Lister(channel, AUDIT + "ListReports", "reports", lambda r: r).page(1, "")
    assert token
    with pytest.raises(grpc.RpcError) as err:
        Lister(channel, DEP + "ListShadows", "shadows", lambda s: s).page(1, token)
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "page_token" in (err.value.details() or "")


# ----------------------------------------------------------------------------- auth lists


@pytest.fixture(scope="module")
def auth_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[grpc.Channel, str]]:
    data = tmp_path_factory.mktemp("pagination-auth")
    out = subprocess.run([sys.executable, "-m", "neural.mlops", "auth", "bootstrap",
                          *store_args(data), "--json"], check=True, capture_output=True,
                         text=True)
    admin = json.loads(out.stdout)["token"]
    srv = start_server(data, "--auth", "token")
    with grpc.insecure_channel(srv.address) as ch:
        yield ch, admin
    srv.stop()


def test_tokens_grants_and_roles_page_with_rows_removed_behind_and_added(
        auth_plane: tuple[grpc.Channel, str]) -> None:
    ch, admin = auth_plane

    def create_token() -> None:
        call(ch, AUTH + "CreateToken", message(AUTH + "CreateToken", name=_unique("tok"),
                                                roles=["viewer"]), token=admin)

    for _ in range(6):
        create_token()
    tokens = Lister(ch, AUTH + "ListTokens", "tokens", lambda t: t.token_id, token=admin)
    oldest = iter(tokens.everything()[1:])  # not the admin's own token

    def revoke_oldest() -> str:
        token_id = next(oldest)
        call(ch, AUTH + "RevokeToken", message(AUTH + "RevokeToken", token_id=token_id),
             token=admin)
        return token_id

    check_walk(tokens, Changes(revoke_oldest, create_token))

    def grant(subject: str) -> None:
        call(ch, AUTH + "CreateGrant", message(AUTH + "CreateGrant", subject=subject,
                                                role="viewer", models="*"), token=admin)

    for i in range(6):
        grant(f"m{i}@x.com")
    grants = Lister(ch, AUTH + "ListGrants", "grants", lambda g: g.subject, token=admin)
    first = iter(grants.everything())

    def delete_first() -> str:
        subject = next(first)
        call(ch, AUTH + "DeleteGrant", message(AUTH + "DeleteGrant", subject=subject,
                                                role="viewer", models="*"), token=admin)
        return subject

    made = iter(["a1@x.com", "z1@x.com", "a2@x.com", "z2@x.com", "a3@x.com"])
    check_walk(grants, Changes(delete_first, lambda: grant(next(made))))
    roles = Lister(ch, AUTH + "ListRoles", "roles", lambda r: r.name, token=admin)
    assert roles.walk(1, lambda: None) == sorted(ROLES)


@pytest.mark.parametrize("descending", [False, True])
def test_the_sql_key_condition_is_the_tuple_order(descending: bool) -> None:
    """after_clause (written out as ORs) selects exactly the rows whose key tuple comes
    after the given one, in either direction, with ties in the leading columns."""
    rng = random.Random(5)
    meta = sa.MetaData()
    t = sa.Table("t", meta, sa.Column("a", sa.Integer), sa.Column("b", sa.String),
                 sa.Column("c", sa.Integer))
    rows = {(rng.randrange(4), rng.choice("xyz"), rng.randrange(3)) for _ in range(60)}
    engine = sa.create_engine("sqlite://")
    meta.create_all(engine)
    with engine.begin() as conn:
        conn.execute(t.insert(), [dict(zip("abc", r, strict=True)) for r in rows])
        for key in sorted(rows):
            got = {tuple(r) for r in conn.execute(
                sa.select(t.c.a, t.c.b, t.c.c).where(after_clause([t.c.a, t.c.b, t.c.c], key,
                                                                  descending)))}
            assert got == {r for r in rows if (r < key if descending else r > key)}, key
