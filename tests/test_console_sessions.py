"""Console sessions in the store (server/console/sessions.py) on a real database (SQLite,
or PostgreSQL with NEURAL_MLOPS_TEST_DATABASE_URL) with a manual clock: what a row holds,
absolute and idle expiry, the caps and the sweep, a tampered row, a revoked token; and the
pending OIDC logins (server/console/oidc_pending.py)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from support.databases import open_database

from neural.mlops.server.clock import ManualClock, to_us
from neural.mlops.server.console.oidc_pending import (
    MAX_PENDING,
    PENDING_SECONDS,
    PendingLogins,
    derive,
)
from neural.mlops.server.console.sessions import (
    SWEEP_BATCH,
    SessionStore,
    csrf_token,
    digest,
    touch_seconds,
)
from neural.mlops.server.storage.schema import api_tokens, console_oidc_logins, console_sessions

pytestmark = pytest.mark.storage

TOKEN = "nmo_0123456789abcdef_" + "s" * 43
BEARER = (("authorization", f"Bearer {TOKEN}"),)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Any]:
    database = await open_database(tmp_path / "store", clock=ManualClock())
    try:
        yield database
    finally:
        await database.close()


def clock(db: Any) -> ManualClock:
    assert isinstance(db.clock, ManualClock)
    return db.clock


async def rows(db: Any) -> list[dict[str, Any]]:
    async with db.read() as conn:
        return [dict(r._mapping) for r in (await conn.execute(sa.select(console_sessions)))]


async def add_token(db: Any, token_id: str, **values: Any) -> None:
    row = {"token_id": token_id, "name": "alice@x.com", "secret_hash": "0" * 64,
           "roles": "[]", "models": "[]", "created_by": "t", "created_us": 0, **values}
    async with db.change(audited=False) as ch:
        await ch.conn.execute(api_tokens.insert().values(**row))


async def test_a_session_is_found_again_with_its_credential_and_csrf_token(db: Any) -> None:
    store = SessionStore(db)
    sid, made = await store.create("alice@x.com", "oidc", BEARER)
    found = await store.find(sid)
    assert found.session is not None and found.ended == ""
    assert found.session.subject == "alice@x.com" and found.session.method == "oidc"
    assert found.session.credential == BEARER
    assert found.session.csrf_token == made.csrf_token == csrf_token(sid)
    assert found.session.csrf_ok(made.csrf_token) and not found.session.csrf_ok(sid)
    assert (await store.find(sid[:-1] + ("A" if sid[-1] != "A" else "B"))).session is None
    assert (await store.find("")).session is None and (await store.find("x" * 500)).session is None


async def test_the_row_holds_no_session_id_no_credential_and_no_csrf_token(db: Any) -> None:
    store = SessionStore(db)
    sid, made = await store.create("alice@x.com", "oidc", BEARER)
    [row] = await rows(db)
    assert row["id_hash"] == hashlib.sha256(sid.encode()).hexdigest()
    text = repr(row)
    for secret in (sid, TOKEN, TOKEN.rsplit("_", 1)[1], made.csrf_token):
        assert secret not in text
    assert "Bearer" not in text
    # the row's key is no way in either: a cookie holding the hash finds nothing
    assert (await store.find(row["id_hash"])).session is None
    assert "s" * 20 not in repr(made) and TOKEN not in repr(made)


async def test_a_session_ends_at_its_absolute_expiry(db: Any) -> None:
    store = SessionStore(db, ttl_seconds=3600, idle_seconds=3600)
    sid, _ = await store.create("alice@x.com", "none", (("x-neural-user", "alice@x.com"),))
    for _ in range(3):  # used every 20 minutes: never idle
        clock(db).advance(1190)
        assert (await store.find(sid)).session is not None
    clock(db).advance(20)  # 3590 s
    assert (await store.find(sid)).session is not None
    clock(db).advance(10)
    found = await store.find(sid)
    assert found.session is None and "end of validity" in found.ended
    assert await rows(db) == []  # found ended: deleted


async def test_an_oidc_session_ends_when_its_id_token_does(db: Any) -> None:
    store = SessionStore(db, ttl_seconds=8 * 3600)
    exp = to_us(clock(db).now()) / 1e6 + 600
    sid, made = await store.create("alice@x.com", "oidc", BEARER, expires_at=exp)
    assert made.expires_at == pytest.approx(exp)
    clock(db).advance(599)
    assert (await store.find(sid)).session is not None
    clock(db).advance(1)
    assert (await store.find(sid)).session is None


async def test_a_session_unused_for_the_idle_time_ends_and_use_keeps_it(db: Any) -> None:
    store = SessionStore(db, ttl_seconds=8 * 3600, idle_seconds=600)
    assert touch_seconds(600) == 60.0
    kept, _ = await store.create("alice@x.com", "oidc", BEARER)
    left, _ = await store.create("bob@x.com", "oidc", BEARER)
    for _ in range(5):  # kept is used every 5 minutes, left never
        clock(db).advance(300)
        assert (await store.find(kept)).session is not None
    found = await store.find(left)
    assert found.session is None and "idle for more than 10 minutes" in found.ended
    clock(db).advance(601)
    assert (await store.find(kept)).session is None


async def test_logout_deletes_the_row(db: Any) -> None:
    store = SessionStore(db)
    sid, _ = await store.create("alice@x.com", "oidc", BEARER)
    other, _ = await store.create("alice@x.com", "oidc", BEARER)
    assert await store.end(sid) is True and await store.end(sid) is False
    assert (await store.find(sid)).session is None
    assert [r["id_hash"] for r in await rows(db)] == [digest(other)]


async def test_past_the_per_subject_cap_the_least_recently_used_session_ends(db: Any) -> None:
    store = SessionStore(db, idle_seconds=3600, max_per_subject=3)
    first, _ = await store.create("alice@x.com", "oidc", BEARER)
    clock(db).advance(120)
    second, _ = await store.create("alice@x.com", "oidc", BEARER)
    clock(db).advance(120)
    third, _ = await store.create("alice@x.com", "oidc", BEARER)
    clock(db).advance(120)
    assert (await store.find(first)).session is not None  # used again: now the newest use
    bob, _ = await store.create("bob@x.com", "oidc", BEARER)
    fourth, _ = await store.create("alice@x.com", "oidc", BEARER)
    assert await store.count("alice@x.com") == 3
    assert (await store.find(second)).session is None
    for sid in (first, third, fourth, bob):
        assert (await store.find(sid)).session is not None


async def test_past_the_total_cap_the_least_recently_used_session_ends(db: Any) -> None:
    store = SessionStore(db, max_sessions=4)
    made = []
    for n in range(6):
        made.append((await store.create(f"user{n}@x.com", "oidc", BEARER))[0])
        clock(db).advance(1)
    assert await store.count() == 4
    assert [(await store.find(s)).session is not None for s in made] == [False, False] + [True] * 4


async def test_each_login_sweeps_a_bounded_batch_of_ended_rows(db: Any) -> None:
    store = SessionStore(db, ttl_seconds=60, idle_seconds=60)
    for n in range(SWEEP_BATCH + 20):
        await store.create(f"user{n}@x.com", "oidc", BEARER)
    clock(db).advance(61)  # every one of them ended, none looked up
    fresh, _ = await store.create("new@x.com", "oidc", BEARER)
    assert await store.count() == 20 + 1  # SWEEP_BATCH deleted, the rest at the next login
    await store.create("newer@x.com", "oidc", BEARER)
    assert await store.count() == 2 and (await store.find(fresh)).session is not None


async def test_a_row_edited_in_place_is_no_session(db: Any) -> None:
    store = SessionStore(db)
    sid, _ = await store.create("viewer@x.com", "none", (("x-neural-user", "viewer@x.com"),))
    other, _ = await store.create("admin@x.com", "none", (("x-neural-user", "admin@x.com"),))
    t = console_sessions
    async with db.change(audited=False) as ch:  # someone with the database renames the row
        await ch.conn.execute(t.update().where(t.c.id_hash == digest(sid))
                              .values(subject="admin@x.com"))
    found = await store.find(sid)
    assert found.session is None and "does not match" in found.ended
    # nor can another session's sealed credential be moved into one's own row
    [theirs] = [r for r in await rows(db) if r["id_hash"] == digest(other)]
    mine, _ = await store.create("viewer@x.com", "none", (("x-neural-user", "viewer@x.com"),))
    async with db.change(audited=False) as ch:
        await ch.conn.execute(t.update().where(t.c.id_hash == digest(mine))
                              .values(credential=theirs["credential"], subject="admin@x.com"))
    assert (await store.find(mine)).session is None


async def test_a_revoked_expired_or_deleted_token_ends_the_sessions_opened_with_it(
        db: Any) -> None:
    store = SessionStore(db)
    now = to_us(clock(db).now())
    await add_token(db, "aaaa")
    await add_token(db, "bbbb", expires_us=now + 120 * 1_000_000)
    await add_token(db, "cccc")
    revoked, _ = await store.create("alice@x.com", "token", BEARER, token_id="aaaa")
    expiring, _ = await store.create("alice@x.com", "token", BEARER, token_id="bbbb")
    deleted, _ = await store.create("alice@x.com", "token", BEARER, token_id="cccc")
    for sid in (revoked, expiring, deleted):
        assert (await store.find(sid)).session is not None
    async with db.change(audited=False) as ch:
        await ch.conn.execute(api_tokens.update().where(api_tokens.c.token_id == "aaaa")
                              .values(revoked_us=now, revoked_by="admin@x.com"))
        await ch.conn.execute(api_tokens.delete().where(api_tokens.c.token_id == "cccc"))
    assert (await store.find(revoked)).ended == "its API token was revoked"
    assert (await store.find(deleted)).ended == "its API token no longer exists"
    assert (await store.find(expiring)).session is not None
    clock(db).advance(120)
    assert (await store.find(expiring)).ended == "its API token expired"
    assert await rows(db) == []


async def test_while_writes_are_refused_sessions_work_and_logins_are_refused(db: Any) -> None:
    from neural.mlops.server.errors import FailedPrecondition

    store = SessionStore(db, idle_seconds=600)
    sid, _ = await store.create("alice@x.com", "oidc", BEARER)
    db.writes_refused = "the audit chain is broken at seq 7"
    try:
        clock(db).advance(120)  # its last use cannot be written: the request goes on
        assert (await store.find(sid)).session is not None
        with pytest.raises(FailedPrecondition, match="broken"):
            await store.create("bob@x.com", "oidc", BEARER)
    finally:
        db.writes_refused = ""
    assert (await store.find(sid)).session is not None


def test_a_lifetime_that_is_not_positive_is_refused() -> None:
    with pytest.raises(ValueError, match="idle minutes must be positive"):
        SessionStore(None, idle_seconds=0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="session hours must be positive"):
        SessionStore(None, ttl_seconds=-1)  # type: ignore[arg-type]


async def test_a_pending_oidc_login_is_taken_once_with_its_cookie_and_in_time(db: Any) -> None:
    logins = PendingLogins(db)
    secret, started = await logins.begin("https://console.example/login/oidc/callback")
    assert started == derive(secret, started.redirect_uri)
    assert len(started.verifier) == 43 and len({secret, started.state, started.nonce,
                                                started.verifier}) == 4
    async with db.read() as conn:
        stored = repr((await conn.execute(sa.select(console_oidc_logins))).all())
    for value in (secret, started.state, started.nonce, started.verifier):
        assert value not in stored
    assert await logins.take(started.state, secret) == started
    assert await logins.take(started.state, secret) is None  # used up

    secret, started = await logins.begin("https://c/cb")
    other, _ = await logins.begin("https://c/cb")
    assert await logins.take(started.state, other) is None  # another browser's cookie
    assert await logins.take(started.state, secret) is None  # and the state is spent

    secret, started = await logins.begin("https://c/cb")
    clock(db).advance(PENDING_SECONDS)
    assert await logins.take(started.state, secret) is None  # too late


async def test_pending_oidc_logins_are_swept_and_capped(db: Any) -> None:
    logins = PendingLogins(db)
    for _ in range(30):
        await logins.begin("https://c/cb")
    clock(db).advance(PENDING_SECONDS + 1)
    secret, started = await logins.begin("https://c/cb")
    async with db.read() as conn:
        left = (await conn.execute(sa.select(sa.func.count()).select_from(console_oidc_logins)
                                   )).scalar_one()
    assert left == 1
    rows = [{"state_hash": f"{n:064x}", "redirect_uri": "x", "created_us": to_us(clock(db).now())}
            for n in range(MAX_PENDING + 5)]
    async with db.change(audited=False) as ch:
        await ch.conn.execute(console_oidc_logins.insert(), rows)
    await logins.begin("https://c/cb")
    await logins.begin("https://c/cb")
    async with db.read() as conn:
        left = (await conn.execute(sa.select(sa.func.count()).select_from(console_oidc_logins)
                                   )).scalar_one()
    assert left == MAX_PENDING
