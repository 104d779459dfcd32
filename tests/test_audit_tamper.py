"""Tampering with the audit trail is detected: rows edited, deleted, inserted, reordered or
rewritten directly in the SQLite file, and the same in export files."""

from __future__ import annotations

import csv
import json
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from support.databases import open_services

from neural.mlops.audit import AuditLogger, EventInput, EventType, verify_export
from neural.mlops.server.audit.export import seal_message
from neural.mlops.server.audit.hashchain import EVENT_FIELDS, canonical_json, event_hash
from neural.mlops.server.audit.service import EventQuery
from neural.mlops.server.clock import ManualClock, to_us

N = 10


def _store(tmp_path: Path) -> tuple[AuditLogger, Path]:
    logger = AuditLogger(tmp_path / "store")
    logger.log_events([
        EventInput(EventType.CUSTOM, "model", f"m:{i}", "touch", {"i": i, "note": "ok"},
                   user=f"user{i % 3}@x.com")
        for i in range(1, N + 1)
    ])
    return logger, tmp_path / "store" / "mlops.db"


def _sql(db: Path, *statements: tuple) -> None:
    conn = sqlite3.connect(db)
    with conn:
        for stmt in statements:
            conn.execute(*stmt)
    conn.close()


def _rows(db: Path) -> list[dict]:
    conn = sqlite3.connect(db)
    cur = conn.execute(f"SELECT {', '.join(EVENT_FIELDS)} FROM audit_events ORDER BY seq")
    rows = [dict(zip(EVENT_FIELDS, r, strict=True)) for r in cur]
    conn.close()
    return rows


def _rewrite_from(db: Path, seq: int, edit: dict) -> None:
    """What an attacker with the database but not the key can do: change an event and
    recompute every hash after it, and the head, so the chain is consistent again."""
    rows = _rows(db)
    prev = rows[seq - 2]["hash"] if seq > 1 else "0" * 64
    conn = sqlite3.connect(db)
    with conn:
        for row in rows[seq - 1 :]:
            if row["seq"] == seq:
                row.update(edit)
            row["prev_hash"] = prev
            row["hash"] = prev = event_hash({**row, "details": json.loads(row["details"])})
            conn.execute(
                "UPDATE audit_events SET details=?, actor=?, prev_hash=?, hash=? WHERE seq=?",
                (row["details"], row["actor"], row["prev_hash"], row["hash"], row["seq"]),
            )
        conn.execute("UPDATE audit_chain_head SET seq=?, hash=?", (rows[-1]["seq"], prev))
    conn.close()


def test_untouched_chain_verifies(tmp_path: Path) -> None:
    logger, _ = _store(tmp_path)
    result = logger.verify_chain()
    assert result.valid and result.events_checked == N and result.last_seq == N


def test_edited_event_is_detected(tmp_path: Path) -> None:
    logger, db = _store(tmp_path)
    victim = _rows(db)[4]
    _sql(db, ("UPDATE audit_events SET details=? WHERE seq=5", ('{"i":5,"note":"changed"}',)))
    result = logger.verify_chain()
    assert not result.valid
    assert (result.first_bad_seq, result.first_bad_event_id) == (5, victim["event_id"])
    assert "edited" in result.reason


def test_edited_actor_is_detected(tmp_path: Path) -> None:
    logger, db = _store(tmp_path)
    _sql(db, ("UPDATE audit_events SET actor='someone.else@x.com' WHERE seq=2",))
    result = logger.verify_chain()
    assert not result.valid and result.first_bad_seq == 2


def test_deleted_event_is_detected(tmp_path: Path) -> None:
    logger, db = _store(tmp_path)
    _sql(db, ("DELETE FROM audit_events WHERE seq=5",))
    result = logger.verify_chain()
    assert not result.valid and result.first_bad_seq == 6
    assert "event 5 missing" in result.reason and "deleted" in result.reason


def test_deleted_tail_is_detected(tmp_path: Path) -> None:
    logger, db = _store(tmp_path)
    _sql(db, ("DELETE FROM audit_events WHERE seq>=9",))
    result = logger.verify_chain()
    assert not result.valid and result.first_bad_seq == 9
    assert "deleted" in result.reason


def test_reordered_events_are_detected(tmp_path: Path) -> None:
    logger, db = _store(tmp_path)
    _sql(db,
         ("UPDATE audit_events SET seq=-1 WHERE seq=4",),
         ("UPDATE audit_events SET seq=4 WHERE seq=5",),
         ("UPDATE audit_events SET seq=5 WHERE seq=-1",))
    result = logger.verify_chain()
    assert not result.valid and result.first_bad_seq == 4


def test_inserted_event_is_detected(tmp_path: Path) -> None:
    logger, db = _store(tmp_path)
    rows = _rows(db)
    forged = {
        **rows[4],
        "event_id": "f" * 32,
        "actor": "intruder@x.com",
        "details": {"forged": True},
        "prev_hash": rows[3]["hash"],
    }
    forged["hash"] = event_hash(forged)
    conn = sqlite3.connect(db)
    with conn:
        for seq in range(N, 4, -1):
            conn.execute("UPDATE audit_events SET seq=? WHERE seq=?", (seq + 1, seq))
        conn.execute(
            f"INSERT INTO audit_events ({', '.join(EVENT_FIELDS)}) "
            f"VALUES ({', '.join('?' * len(EVENT_FIELDS))})",
            [canonical_json(forged[f]) if f == "details" else forged[f] for f in EVENT_FIELDS],
        )
        conn.execute("UPDATE audit_chain_head SET seq=?", (N + 1,))
    conn.close()
    result = logger.verify_chain()
    # The forged event itself fits; the next one no longer does (its seq was changed).
    assert not result.valid and result.first_bad_seq == 6


def test_rewritten_chain_is_caught_by_the_signed_checkpoint(tmp_path: Path) -> None:
    logger, db = _store(tmp_path)
    assert logger.checkpoint().seq == N
    _rewrite_from(db, 3, {"actor": "nobody@x.com"})
    result = logger.verify_chain()
    assert not result.valid and result.first_bad_seq == N
    assert "signed checkpoint" in result.reason


def test_rewrite_plus_deleting_the_checkpoint_rows_is_still_caught(tmp_path: Path) -> None:
    logger, db = _store(tmp_path)
    logger.checkpoint()
    _rewrite_from(db, 3, {"actor": "nobody@x.com"})
    _sql(db, ("DELETE FROM audit_checkpoints",))
    result = logger.verify_chain()
    assert not result.valid
    assert "missing from the database" in result.reason


def test_altered_checkpoint_signature_check_fails(tmp_path: Path) -> None:
    logger, db = _store(tmp_path)
    logger.checkpoint()
    _rewrite_from(db, 3, {"actor": "nobody@x.com"})
    new_head = _rows(db)[-1]["hash"]
    _sql(db, ("UPDATE audit_checkpoints SET hash=?", (new_head,)))
    (tmp_path / "store" / "audit" / "checkpoints.jsonl").unlink()
    result = logger.verify_chain()
    assert not result.valid and "invalid signature" in result.reason


def test_checkpoint_refuses_to_sign_a_broken_chain(tmp_path: Path) -> None:
    from neural.mlops.errors import FailedPrecondition

    logger, db = _store(tmp_path)
    _sql(db, ("UPDATE audit_events SET details='{}' WHERE seq=3",))
    with pytest.raises(FailedPrecondition, match="CHAIN_BROKEN.*seq 3"):
        logger.checkpoint()


# --- export files -------------------------------------------------------------------


def _export(tmp_path: Path, fmt: str) -> tuple[AuditLogger, Path]:
    logger, _ = _store(tmp_path)
    path = tmp_path / f"trail.{fmt}"
    result = logger.export_audit_trail(path, format=fmt)
    assert result.count == N
    assert verify_export(path, logger.public_key()).valid
    return logger, path


def _event_lines(path: Path, fmt: str) -> tuple[list[str], list[str], list[str]]:
    """(head lines, event lines, tail lines) of an export file."""
    lines = path.read_text().splitlines(keepends=True)
    if fmt == "jsonl":
        return lines[:1], lines[1:], []
    if fmt == "json":
        return lines[:1], lines[1:-1], lines[-1:]
    return lines[:1], lines[1:], []


def _json_lines_fix(lines: list[str], fmt: str) -> list[str]:
    if fmt != "json":
        return lines
    bodies = [ln.rstrip("\n").rstrip(",") for ln in lines]
    return [b + (",\n" if i < len(bodies) - 1 else "\n") for i, b in enumerate(bodies)]


@pytest.mark.parametrize("fmt", ["jsonl", "json", "csv"])
def test_export_edit_is_detected(tmp_path: Path, fmt: str) -> None:
    _, path = _export(tmp_path, fmt)
    head, events, tail = _event_lines(path, fmt)
    events[4] = events[4].replace('\\"note\\":\\"ok\\"' if fmt == "csv" else '"note":"ok"',
                                  '\\"note\\":\\"no\\"' if fmt == "csv" else '"note":"no"')
    if fmt == "csv":
        events[4] = events[4].replace('""note"":""ok""', '""note"":""no""')
    path.write_text("".join(head + events + tail))
    result = verify_export(path)
    assert not result.valid and result.first_bad_seq == 5 and "edited" in result.reason


@pytest.mark.parametrize("fmt", ["jsonl", "json", "csv"])
def test_export_deleted_event_is_detected(tmp_path: Path, fmt: str) -> None:
    _, path = _export(tmp_path, fmt)
    head, events, tail = _event_lines(path, fmt)
    del events[4]
    path.write_text("".join(head + _json_lines_fix(events, fmt) + tail))
    result = verify_export(path)
    assert not result.valid and result.first_bad_seq == 6


@pytest.mark.parametrize("fmt", ["jsonl", "json", "csv"])
def test_export_reordered_events_are_detected(tmp_path: Path, fmt: str) -> None:
    _, path = _export(tmp_path, fmt)
    head, events, tail = _event_lines(path, fmt)
    events[3], events[4] = events[4], events[3]
    path.write_text("".join(head + _json_lines_fix(events, fmt) + tail))
    result = verify_export(path)
    assert not result.valid and result.first_bad_seq == 5


@pytest.mark.parametrize("fmt", ["jsonl", "json", "csv"])
def test_export_truncated_tail_is_detected(tmp_path: Path, fmt: str) -> None:
    _, path = _export(tmp_path, fmt)
    head, events, tail = _event_lines(path, fmt)
    path.write_text("".join(head + _json_lines_fix(events[:-2], fmt) + tail))
    result = verify_export(path)
    assert not result.valid and "removed" in result.reason


def test_export_rewritten_and_resealed_without_the_key_is_detected(tmp_path: Path) -> None:
    logger, path = _export(tmp_path, "jsonl")
    lines = path.read_text().splitlines()
    seal = json.loads(lines[0])
    events = [json.loads(ln) for ln in lines[1:]]
    prev = seal["first_prev_hash"]
    for ev in events:
        if ev["seq"] == 3:
            ev["actor"] = "nobody@x.com"
        ev["prev_hash"] = prev
        ev["hash"] = prev = event_hash(ev)
    seal["last_hash"] = prev
    path.write_text("\n".join(json.dumps(x) for x in [seal, *events]) + "\n")
    result = verify_export(path)
    assert not result.valid and result.signature_valid is False
    # Re-signed with the attacker's own key (embedded in the file): only pinning the
    # store's key reveals it.
    attacker = Ed25519PrivateKey.generate()
    pem = attacker.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    from neural.mlops.server.audit.signing import public_key_id

    seal["key_id"] = public_key_id(attacker.public_key())
    seal["public_key"] = pem
    import base64

    seal["signature"] = base64.b64encode(attacker.sign(seal_message(seal))).decode()
    path.write_text("\n".join(json.dumps(x) for x in [seal, *events]) + "\n")
    assert verify_export(path).valid  # self-consistent ...
    pinned = verify_export(path, logger.public_key())
    assert not pinned.valid and pinned.signature_valid is False  # ... but not from this store


def test_export_of_a_broken_store_says_so(tmp_path: Path) -> None:
    logger, db = _store(tmp_path)
    logger.checkpoint()
    # Consistent hashes, so the exported run is self-consistent; only the store's signed
    # checkpoint shows the rewrite, and the seal records that the store did not verify.
    _rewrite_from(db, 3, {"actor": "nobody@x.com"})
    logger.export_audit_trail(tmp_path / "t.jsonl", format="jsonl")
    result = verify_export(tmp_path / "t.jsonl", logger.public_key())
    assert not result.valid and "did not verify" in result.reason


def test_csv_export_reads_as_plain_csv(tmp_path: Path) -> None:
    _, path = _export(tmp_path, "csv")
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["seq"]) for r in rows] == list(range(1, N + 1))
    assert all(len(r["hash"]) == 64 and len(r["prev_hash"]) == 64 for r in rows)
    assert json.loads(rows[0]["details"]) == {"i": 1, "note": "ok"}


# --- retention ----------------------------------------------------------------------


async def test_purge_archives_then_leaves_a_verifiable_chain(tmp_path: Path) -> None:
    clock = ManualClock()
    services = await open_services(tmp_path / "store", clock=clock)
    audit = services.audit
    try:
        await audit.log_events([EventInput("custom", "x", str(i), "old") for i in range(5)])
        # What a running control plane does within the interval (the coverage rule).
        await audit.checkpoint("periodic")
        cutoff = clock.now() + timedelta(days=5)
        clock.advance(10 * 86400)
        await audit.log_events([EventInput("custom", "x", str(i), "new") for i in range(3)])
        result = await audit.purge(to_us(cutoff))
        assert (result.purged_count, result.first_seq, result.last_seq) == (5, 1, 5)
        archive = Path(result.archive_path)
        assert archive.parent == tmp_path / "store" / "audit" / "archive"
        offline = verify_export(archive, audit.key.public_pem)
        assert offline.valid and offline.events_checked == 5
        verification = await audit.verify_chain()
        assert verification.valid and verification.first_seq == 6
        page = await audit.query_events(EventQuery(page_size=100))
        assert [e.action for e in page.events] == ["purge", "new", "new", "new"]
        assert page.events[0].details["purged_count"] == 5
        from neural.mlops.errors import InvalidArgument

        with pytest.raises(InvalidArgument) as err:
            await audit.purge(to_us(cutoff), "../../etc/evil.jsonl")
        assert err.value.field == "archive_path"
        # Nothing older is left: a second purge at the same date is a no-op.
        assert (await audit.purge(to_us(cutoff))).purged_count == 0
        # Tampering after a purge is still caught.
        _sql(tmp_path / "store" / "mlops.db", ("UPDATE audit_events SET action='x' WHERE seq=7",))
        bad = await audit.verify_chain()
        assert not bad.valid and bad.first_bad_seq == 7
    finally:
        await services.close()
