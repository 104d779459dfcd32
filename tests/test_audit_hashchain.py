"""The chain formula as documented, recomputed with nothing but json, an RFC 8785
library and hashlib; stores and exports from before the hash version keep verifying."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from pathlib import Path

import pytest
import rfc8785
from support.legacy_audit import LEGACY_DETAILS, make_pre_0012_store, v1_events, v1_text

from neural.mlops.audit import AuditLogger, EventType
from neural.mlops.server.storage.database import DB_FILENAME

HASHED = ("seq", "event_id", "ts_us", "event_type", "severity", "actor", "resource_type",
          "resource_id", "action", "details", "request_id", "peer", "prev_hash")

on_sqlite_only = pytest.mark.skipif(bool(os.environ.get("NEURAL_MLOPS_TEST_DATABASE_URL")),
                                    reason="builds an old SQLite store by hand")


def documented_hash(event: dict) -> str:
    """docs/audit.md and protos/neural/mlops/v1/AUDIT.md, written out again."""
    body = {k: event[k] for k in HASHED}
    if event.get("hash_version", 1) == 2:
        text = rfc8785.dumps({**body, "hash_version": 2}).decode("utf-8")
    else:
        text = v1_text(body)
    return hashlib.sha256((event["prev_hash"] + text).encode("utf-8")).hexdigest()


def test_an_auditor_recomputes_every_hash_from_the_documented_formula(tmp_path: Path) -> None:
    logger = AuditLogger(tmp_path / "store")
    logger.log_event(EventType.CUSTOM, user="Zoë <z@x.com>", resource_type="model",
                     resource_id='m:"v1"\\n', action="touch",
                     details={"b": [1, 2.5, None, True], "a": {"ü": "\u2028 \t tab", "z": -0.0},
                              "f": [1.0, 1e-07, 1e21, 2**60], "\U0001f600": 1, "\uff61": 2})
    logger.log_model_deployment("m", "v1", user="ops@x.com", environment="production")
    logger.export_audit_trail(tmp_path / "t.jsonl", format="jsonl")
    # Lines end with "\n" only (str.splitlines would also split at U+2028 inside a string).
    lines = (tmp_path / "t.jsonl").read_text(encoding="utf-8").rstrip("\n").split("\n")
    prev = "0" * 64
    for line in lines[1:]:
        event = json.loads(line)
        assert event["hash_version"] == 2
        assert event["prev_hash"] == prev
        assert documented_hash(event) == event["hash"]
        prev = event["hash"]
    assert len(lines) == 3
    first = json.loads(lines[1])["details"]
    # JCS numbers (ECMAScript's), an integer beyond 2**53 as its decimal string (I-JSON),
    # keys in UTF-16 order (U+1F600 is D83D DE00, before U+FF61).
    assert first["f"] == [1, 1e-07, 1e21, str(2**60)]
    assert '"f":[1,1e-7,1e+21,"1152921504606846976"]' in lines[1]
    assert list(first)[-2:] == ["\U0001f600", "\uff61"]
    for fmt in ("json", "jsonl", "csv"):
        logger.export_audit_trail(tmp_path / f"all.{fmt}", format=fmt)
        assert logger.verify_export(tmp_path / f"all.{fmt}", logger.public_key()).valid


@on_sqlite_only
def test_a_store_hashed_with_version_1_keeps_verifying_after_the_upgrade(tmp_path: Path) -> None:
    store = tmp_path / "store"
    legacy = v1_events()
    make_pre_0012_store(store, legacy)
    logger = AuditLogger(store)
    assert logger.verify_chain().valid
    logger.log_event(EventType.CUSTOM, resource_type="model", resource_id="m:new",
                     action="touch", details={"accuracy": 1.0, "threshold": 1e-07})
    result = logger.verify_chain()
    assert result.valid and result.events_checked == len(legacy) + 1
    with sqlite3.connect(store / DB_FILENAME) as conn:
        versions = [
            v for (v,) in conn.execute("SELECT hash_version FROM audit_events ORDER BY seq")
        ]
        texts = [t for (t,) in conn.execute("SELECT details FROM audit_events ORDER BY seq")]
    assert versions == [1] * len(legacy) + [2]
    assert texts[0] == v1_text(LEGACY_DETAILS[0]) and '"accuracy":1.0' in texts[0]
    assert texts[-1] == '{"accuracy":1,"threshold":1e-7}'
    for fmt in ("json", "jsonl", "csv"):
        path = tmp_path / f"mixed.{fmt}"
        logger.export_audit_trail(path, format=fmt)
        assert logger.verify_export(path, logger.public_key()).valid, fmt
    lines = (tmp_path / "mixed.jsonl").read_text(encoding="utf-8").rstrip("\n").split("\n")
    events = [json.loads(line) for line in lines[1:]]
    assert [e["hash_version"] for e in events[:len(legacy) + 1]] == [1] * len(legacy) + [2]
    assert all(documented_hash(e) == e["hash"] for e in events)


@on_sqlite_only
def test_relabelling_an_event_version_breaks_the_chain(tmp_path: Path) -> None:
    store = tmp_path / "store"
    make_pre_0012_store(store, v1_events())
    logger = AuditLogger(store)
    logger.log_event(EventType.CUSTOM, resource_type="model", resource_id="m:new", action="a")
    logger.log_event(EventType.CUSTOM, resource_type="model", resource_id="m:new", action="b")
    logger.export_audit_trail(tmp_path / "t.jsonl", format="jsonl")
    lines = (tmp_path / "t.jsonl").read_text(encoding="utf-8").rstrip("\n").split("\n")
    seal, events = json.loads(lines[0]), [json.loads(line) for line in lines[1:]]
    down = next(e for e in events if e["hash_version"] == 2)
    down["hash_version"] = 1
    edited = tmp_path / "down.jsonl"
    edited.write_text("\n".join(json.dumps(x) for x in [seal, *events]) + "\n", encoding="utf-8")
    result = logger.verify_export(edited, logger.public_key())
    assert not result.valid and result.first_bad_seq == down["seq"]
    # Recomputing the relabelled event's hash as version 1 still leaves a version 1 event
    # after version 2 ones, which the control plane never writes.
    later = events[-1]
    later["hash_version"] = 1
    later["hash"] = documented_hash(later)
    down["hash_version"] = 2
    seal_ok = [seal, *events[:-1], later]
    edited.write_text("\n".join(json.dumps(x) for x in seal_ok) + "\n", encoding="utf-8")
    result = logger.verify_export(edited, logger.public_key())
    assert not result.valid and result.first_bad_seq == later["seq"]
    assert "version" in result.reason
