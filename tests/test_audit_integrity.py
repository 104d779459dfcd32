"""The audit chain cannot be rewritten without the key (issue #18): the probe's rewrite that
recomputes every hash and drops the checkpoints is caught by the coverage rule, by the
anchor outside the store and by a pinned hash; nothing is signed over a broken chain; a
store found broken at start refuses writes until an operator acknowledges the break.
Plus the purge's robustness: no archive left by a failed purge, file names checked, files
0600."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from support.databases import execute_sql, on_postgres, open_services
from support.processes import ServerProcess, start_server

from neural.mlops.audit import AuditLogger
from neural.mlops.errors import FailedPrecondition, InvalidArgument
from neural.mlops.registry import ModelRegistry
from neural.mlops.server.audit.hashchain import EVENT_FIELDS, event_hash
from neural.mlops.server.audit.service import EventInput, EventQuery
from neural.mlops.server.clock import ManualClock, to_us
from neural.mlops.server.config import ServerConfig
from neural.mlops.v1 import audit_pb2, audit_pb2_grpc

sqlite_only = pytest.mark.skipif(on_postgres(), reason="reads the store folder's SQLite file")
HOUR = 3600.0


def _events(n: int, tag: str) -> list[EventInput]:
    return [EventInput("custom", "model", f"m:{i}", tag, {"i": i}) for i in range(n)]


def _rewrite_and_drop_checkpoints(data: Path, seq: int) -> None:
    """The probe: edit event ``seq``, recompute every later hash and the head, delete the
    checkpoint rows and empty the store's checkpoints.jsonl. Needs no key."""
    (rows,) = execute_sql(data, f"SELECT {', '.join(EVENT_FIELDS)} FROM audit_events ORDER BY seq")
    events = [dict(zip(EVENT_FIELDS, r, strict=True)) for r in rows]
    prev = events[seq - 2]["hash"] if seq > 1 else "0" * 64
    statements: list = []
    for ev in events[seq - 1 :]:
        if ev["seq"] == seq:
            ev["actor"] = "mallory@x.com"
        ev["prev_hash"] = prev
        ev["hash"] = prev = event_hash({**ev, "details": json.loads(ev["details"])})
        statements.append(("UPDATE audit_events SET actor=?, prev_hash=?, hash=? WHERE seq=?",
                           (ev["actor"], ev["prev_hash"], ev["hash"], ev["seq"])))
    statements += [("UPDATE audit_chain_head SET hash=?", (prev,)), "DELETE FROM audit_checkpoints"]
    execute_sql(data, *statements)
    (data / "audit" / "checkpoints.jsonl").write_text("")


async def _store_over_hours(data: Path, anchor: Path | None = None) -> tuple[int, str]:
    """A store a control plane signed for three hours; returns its last checkpoint."""
    clock = ManualClock()
    config = ServerConfig.load({"audit_anchor": str(anchor) if anchor else None})
    services = await open_services(data, clock=clock, config=config)
    try:
        for _ in range(3):
            await services.audit.log_events(_events(4, "work"))
            await services.audit.checkpoint("periodic")
            clock.advance(HOUR)
        cp = await services.audit.checkpoint("manual")
    finally:
        await services.close()
    return cp.seq, cp.hash


async def test_rewrite_dropping_every_checkpoint_fails_the_coverage_rule(tmp_path: Path) -> None:
    data = tmp_path / "store"
    await _store_over_hours(data)
    _rewrite_and_drop_checkpoints(data, 2)
    services = await open_services(data)
    try:
        result = await services.audit.verify_chain()
        assert not result.valid and result.first_bad_seq == 1
        assert "covered by no signed checkpoint" in result.reason
        # Nothing is signed over the forged chain, and it takes no writes.
        with pytest.raises(FailedPrecondition, match="CHAIN_BROKEN"):
            await services.audit.checkpoint()
        with pytest.raises(FailedPrecondition, match="audit chain broken at seq 1"):
            await services.audit.log_events(_events(1, "more"))
        assert not (await services.audit.list_checkpoints())
    finally:
        await services.close()


async def test_a_fresh_store_verifies_without_any_checkpoint(tmp_path: Path) -> None:
    services = await open_services(tmp_path / "store", clock=ManualClock())
    try:
        await services.audit.log_events(_events(3, "new"))
        result = await services.audit.verify_chain()
        assert result.valid and result.checkpoints_checked == 0
    finally:
        await services.close()


async def test_the_anchor_and_a_pin_catch_a_rewrite_the_coverage_rule_cannot(
    tmp_path: Path,
) -> None:
    """A rewrite within the interval (all events minutes old) passes the coverage rule; the
    anchor outside the store and a pinned hash still name what is missing or changed."""
    data, anchor = tmp_path / "store", tmp_path / "elsewhere"
    anchor.mkdir()
    config = ServerConfig.load({"audit_anchor": str(anchor)})
    services = await open_services(data, config=config)
    try:
        await services.audit.log_events(_events(5, "work"))
        cp = await services.audit.checkpoint()
    finally:
        await services.close()
    _rewrite_and_drop_checkpoints(data, 2)
    plain = await open_services(data)  # no anchor configured: the rewrite goes unseen
    try:
        assert (await plain.audit.verify_chain()).valid
        pinned = await plain.audit.verify_chain({cp.seq: cp.hash})
        assert not pinned.valid and pinned.first_bad_seq == cp.seq
        assert "pinned" in pinned.reason
    finally:
        await plain.close()
    anchored = await open_services(data, config=config)
    try:
        result = await anchored.audit.verify_chain()
        assert not result.valid and result.first_bad_seq == cp.seq
        assert f"seq {cp.seq} in the anchor" in result.reason and "missing" in result.reason
        with pytest.raises(FailedPrecondition):
            await anchored.audit.log_events(_events(1, "more"))
    finally:
        await anchored.close()


@sqlite_only
async def test_cli_verify_reads_the_folder_and_names_what_anchor_and_pin_miss(
    tmp_path: Path,
) -> None:
    data, anchor = tmp_path / "store", tmp_path / "anchor.jsonl"
    seq, hash_ = await _store_over_hours(data, anchor)
    assert oct(anchor.stat().st_mode & 0o777) == "0o600"
    _rewrite_and_drop_checkpoints(data, 6)
    before = execute_sql(data, "SELECT count(*) FROM audit_events")

    def verify(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "neural.mlops", "audit", "verify",
                               "--target", str(data), "--json", *extra],
                              capture_output=True, text=True, timeout=120)

    for extra, expected in [((), "covered by no signed checkpoint"),
                            (("--anchor", str(anchor)), "in the anchor"),
                            (("--pin", f"{seq}:{hash_}"), "pinned")]:
        out = verify(*extra)
        assert out.returncode == 7, out.stderr
        assert expected in json.loads(out.stdout)["reason"]
    assert execute_sql(data, "SELECT count(*) FROM audit_events") == before
    assert (data / "audit" / "checkpoints.jsonl").read_text() == ""


async def test_create_checkpoint_refuses_a_chain_broken_before_the_last_checkpoint(
    server: ServerProcess, tmp_path: Path,
) -> None:
    """The probe's six stores: an event edited before the newest checkpoint did not stop
    CreateCheckpoint, which verified only the events after it."""
    logger = AuditLogger(server.url)
    logger.log_events(_events(6, "work"))
    logger.checkpoint()
    execute_sql(server.data_dir, "UPDATE audit_events SET action='edited' WHERE seq=2")
    with grpc.insecure_channel(server.address) as ch:
        stub = audit_pb2_grpc.AuditServiceStub(ch)
        before = len(stub.ListCheckpoints(audit_pb2.ListCheckpointsRequest()).checkpoints)
        with pytest.raises(grpc.RpcError) as err:
            stub.CreateCheckpoint(audit_pb2.CheckpointRequest(), timeout=30)
        assert err.value.code() is grpc.StatusCode.FAILED_PRECONDITION
        assert "CHAIN_BROKEN" in (err.value.details() or "")
        after = len(stub.ListCheckpoints(audit_pb2.ListCheckpointsRequest()).checkpoints)
    assert after == before


def test_a_server_on_a_broken_store_refuses_writes_until_acknowledged(tmp_path: Path) -> None:
    data = tmp_path / "store"
    srv = start_server(data)
    try:
        registry = ModelRegistry(srv.url)
        registry.register_model(name="m", version="v1", created_by="a@x.com",
                                artifact_uri="s3://b/k")
    finally:
        srv.kill9()  # no shutdown checkpoint: the events are signed by none yet
    ((head,),) = execute_sql(data, "SELECT seq FROM audit_chain_head")[0:1][0]
    execute_sql(data, ("UPDATE audit_events SET actor='mallory@x.com' WHERE seq=?", (head,)))
    srv = start_server(data)
    try:
        registry = ModelRegistry(srv.url)
        with pytest.raises(FailedPrecondition) as err:
            registry.register_model(name="m", version="v2", created_by="a@x.com",
                                    artifact_uri="s3://b/k2")
        assert f"audit chain broken at seq {head}" in str(err.value)
        assert f"--acknowledge-broken-chain {head}" in str(err.value)
        assert [v.version for v in registry.list_versions("m")] == ["v1"]  # reads work
        assert not AuditLogger(srv.url).verify_chain().valid
    finally:
        srv.stop()
    srv = start_server(data, "--acknowledge-broken-chain", str(head))
    try:
        ModelRegistry(srv.url).register_model(name="m", version="v2", created_by="a@x.com",
                                              artifact_uri="s3://b/k2")
        acks = AuditLogger(srv.url).query_events(event_type="security_violation")
        assert [(e.action, e.details["broken_at_seq"]) for e in acks] == [
            ("acknowledge_broken_chain", head)]
    finally:
        srv.stop()
    srv = start_server(data)  # acknowledged once: the chain continues from there
    try:
        ModelRegistry(srv.url).register_model(name="m", version="v3", created_by="a@x.com",
                                              artifact_uri="s3://b/k3")
        assert AuditLogger(srv.url).verify_chain().valid
    finally:
        srv.stop()


async def test_an_acknowledgement_must_name_the_broken_seq(tmp_path: Path) -> None:
    data = tmp_path / "store"
    services = await open_services(data)
    try:
        await services.audit.log_events(_events(3, "work"))
    finally:
        await services.close()
    execute_sql(data, "UPDATE audit_events SET action='edited' WHERE seq=3")
    services = await open_services(data)
    try:
        with pytest.raises(FailedPrecondition, match="broken at seq 3, not 2"):
            await services.audit.acknowledge_broken_chain(2)
        cp = await services.audit.acknowledge_broken_chain(3, "restored from backup")
        assert cp.kind == "acknowledged" and cp.seq == 4
        await services.audit.log_events(_events(1, "after"))
        assert (await services.audit.checkpoint()).seq == 5
        result = await services.audit.verify_chain()
        assert result.valid and "acknowledged" in result.notes[0]
    finally:
        await services.close()


# --- purge robustness and file modes ----------------------------------------------------


async def test_a_purge_that_fails_after_archiving_leaves_no_archive(tmp_path: Path) -> None:
    clock = ManualClock()
    services = await open_services(tmp_path / "store", clock=clock)
    try:
        await services.audit.log_events(_events(4, "old"))
        await services.audit.checkpoint("periodic")
        clock.advance(HOUR)
        # The delete's transaction is refused (as on a store found broken at start).
        services.db.writes_refused = "writes refused for this test"
        with pytest.raises(FailedPrecondition, match="writes refused"):
            await services.audit.purge(to_us(clock.now()), "kept.jsonl")
        services.db.writes_refused = ""
        archive = tmp_path / "store" / "audit" / "archive"
        assert not list(archive.iterdir())
        assert len((await services.audit.query_events(EventQuery())).events) == 4
    finally:
        await services.close()


@pytest.mark.parametrize("name", ["a\x00b.jsonl", "x" * 300 + ".jsonl", "tab\there.jsonl"])
def test_purge_archive_names_the_file_system_refuses_are_invalid_arguments(
    server: ServerProcess, name: str,
) -> None:
    """NUL or 300 characters answered UNKNOWN (after the work)."""
    from google.protobuf.timestamp_pb2 import Timestamp

    with grpc.insecure_channel(server.address) as ch:
        with pytest.raises(grpc.RpcError) as err:
            audit_pb2_grpc.AuditServiceStub(ch).Purge(
                audit_pb2.PurgeRequest(before=Timestamp(seconds=2_000_000_000), archive_path=name),
                timeout=30)
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "archive_path" in (err.value.details() or "")
    assert len(err.value.details() or "") < 200


@sqlite_only
async def test_the_database_checkpoints_and_archives_are_private(tmp_path: Path) -> None:
    clock = ManualClock()
    data = tmp_path / "store"
    services = await open_services(data, clock=clock)
    try:
        await services.audit.log_events(_events(3, "old"))
        await services.audit.checkpoint("periodic")
        clock.advance(HOUR)
        result = await services.audit.purge(to_us(clock.now()))
        files = [data / "mlops.db", data / "mlops.db-wal", data / "mlops.db-shm",
                 data / "audit" / "checkpoints.jsonl", Path(result.archive_path)]
        modes = {f.name: oct(stat.S_IMODE(f.stat().st_mode)) for f in files}
        assert set(modes.values()) == {"0o600"}, modes
        assert oct(stat.S_IMODE((data / "audit").stat().st_mode)) == "0o700"
    finally:
        await services.close()


async def test_times_outside_years_1_to_9999_are_invalid_arguments(tmp_path: Path) -> None:
    services = await open_services(tmp_path / "store")
    try:
        audit = services.audit
        with pytest.raises(InvalidArgument) as err:
            await audit.purge(2**62)
        assert err.value.field == "before"
        with pytest.raises(InvalidArgument) as err:
            await audit.query_events(EventQuery(start_us=-(2**62)))
        assert err.value.field == "start_date"
        with pytest.raises(InvalidArgument) as err:
            await audit.query_events(EventQuery(page_token=f"{2**70}.1"))
        assert err.value.field == "page_token"
        with pytest.raises(InvalidArgument) as err:
            await audit.generate_compliance_report(0, 2**63)
        assert err.value.field == "end_date"
    finally:
        await services.close()
