"""The audit trail of a real control plane: durability under kill -9, periodic signed
checkpoints."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from support.databases import execute_sql, open_services
from support.processes import ServerProcess, start_server

from neural.mlops.audit import AuditLogger, EventType
from neural.mlops.errors import MLOpsError


def test_kill_9_during_a_burst_keeps_every_acknowledged_event_and_a_valid_chain(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    srv = start_server(data)
    acked: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def writer(n: int) -> None:
        logger = AuditLogger(srv.url, timeout=10)
        i = 0
        while not stop.is_set():
            i += 1
            try:
                if i % 2:
                    ev = logger.log_event(EventType.CUSTOM, user=f"w{n}", resource_type="burst",
                                          resource_id=f"{n}-{i}", action="write")
                    ids = [ev.event_id]
                else:
                    ids = logger.log_events([
                        {"event_type": "custom", "user": f"w{n}", "resource_type": "burst",
                         "resource_id": f"{n}-{i}-{k}", "action": "batch"} for k in range(20)
                    ]).event_ids
            except MLOpsError:
                return  # the server is gone: whatever was not acknowledged may be lost
            with lock:
                acked.extend(ids)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with lock:
            if len(acked) > 500:
                break
        time.sleep(0.02)
    srv.kill9()
    stop.set()
    for t in threads:
        t.join(30)
    assert len(acked) > 500

    stored = {row[0] for row in execute_sql(data, "SELECT event_id FROM audit_events")[0]}
    assert set(acked) <= stored

    srv2 = start_server(data)
    try:
        result = AuditLogger(srv2.url).verify_chain()
        assert result.valid, result.reason
        assert result.events_checked == len(stored)
    finally:
        srv2.stop()


def test_server_signs_checkpoints_periodically(tmp_path: Path) -> None:
    srv = start_server(tmp_path / "data", env={"NEURAL_MLOPS_AUDIT_CHECKPOINT_SECONDS": "0.2"})
    try:
        logger = AuditLogger(srv.url)
        logger.log_event("custom", user="a@x.com")
        head = logger.log_events([{"event_type": "custom"}] * 5).last_seq
        found = []
        for _ in range(200):  # wait for the loop, not for a fixed time
            found = [
                cp for cp in logger.list_checkpoints() if cp.kind == "periodic" and cp.seq == head
            ]
            if found:
                break
            time.sleep(0.05)
        assert found and found[0].key_id == logger.verify_chain().key_id
        last = logger.log_event("custom", user="b@x.com").seq
    finally:
        assert srv.stop() == 0
    # Graceful shutdown signs the head once more; the file outside the database has it all.
    log = [json.loads(line) for line in (tmp_path / "data" / "audit" / "checkpoints.jsonl").open()]
    assert any(cp["kind"] == "periodic" for cp in log)
    assert log[-1]["seq"] >= last and log[-1]["kind"] in ("periodic", "shutdown")


def test_export_cut_off_by_a_dead_server_leaves_no_file(tmp_path: Path) -> None:
    import asyncio

    from neural.mlops.errors import Unavailable
    from neural.mlops.server.audit.service import EventInput

    async def fill() -> None:
        services = await open_services(tmp_path / "data")
        for _ in range(4):
            await services.audit.log_batch(
                [EventInput("custom", "x", "y", "fill", {"pad": "p" * 200})] * 10_000
            )
        await services.close()

    asyncio.run(fill())
    srv = start_server(tmp_path / "data")
    out = tmp_path / "out"
    out.mkdir()
    errors: list[BaseException] = []

    def export() -> None:
        try:
            AuditLogger(srv.url).export_audit_trail(out / "trail.jsonl", format="jsonl")
        except BaseException as exc:  # noqa: BLE001 (collected for the assertion)
            errors.append(exc)

    t = threading.Thread(target=export)
    t.start()
    for _ in range(2000):  # until the client is half-way through writing
        partial = list(out.glob(".trail.jsonl.*.partial"))
        if partial and partial[0].exists() and partial[0].stat().st_size > 1_000_000:
            break
        time.sleep(0.005)
    srv.kill9()
    t.join(60)
    assert errors and isinstance(errors[0], Unavailable), errors
    assert list(out.iterdir()) == []


def test_remote_purge_archives_on_the_server_and_keeps_the_chain_verifiable(
    server: ServerProcess,
) -> None:
    from datetime import datetime, timedelta

    from neural.mlops.audit import verify_export
    from neural.mlops.errors import InvalidArgument

    logger = AuditLogger(server.url)
    logger.log_events([{"event_type": "custom", "user": "old@x.com"}] * 30)
    cp = logger.checkpoint()
    assert cp is not None and cp.seq == 30
    with pytest.raises(InvalidArgument):
        logger.purge(datetime.now() + timedelta(days=1), archive_path="/tmp/elsewhere.jsonl")
    result = logger.purge(datetime.now() + timedelta(days=1), archive_path="q1.jsonl")
    assert result.purged_count >= 30 and result.checkpoint is not None
    archive = server.data_dir / "audit" / "archive" / "q1.jsonl"
    assert result.archive_path == str(archive)
    assert verify_export(archive, logger.public_key()).events_checked == result.purged_count
    after = logger.verify_chain()
    assert after.valid and after.first_seq == result.last_seq + 1
    assert [e.event_type for e in logger.query_events()] == [EventType.AUDIT_PURGED]
