"""The audit hash chain: ``hash = sha256(prev_hash + canonical_json(event))``.

canonical_json is JSON with sorted keys, no insignificant whitespace, UTF-8 (not
ASCII-escaped). The first event's ``prev_hash`` is 64 zeros. The hashed object holds
every stored field except ``hash`` itself, including ``seq`` and ``prev_hash``, so an
edited, deleted, inserted or reordered event breaks the chain at that point.

An auditor can recompute a hash with nothing but a JSON library and SHA-256::

    body = {k: event[k] for k in HASHED_FIELDS}        # details as a JSON object
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert sha256((event["prev_hash"] + text).encode("utf-8")).hexdigest() == event["hash"]
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from json.encoder import encode_basestring
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from neural.mlops.server.audit.events import AuditRecord
from neural.mlops.server.identity import CallContext
from neural.mlops.server.storage.schema import audit_chain_head, audit_events

GENESIS = "0" * 64

# Fields that enter the hash, in the stored row's naming.
HASHED_FIELDS = (
    "seq",
    "event_id",
    "ts_us",
    "event_type",
    "severity",
    "actor",
    "resource_type",
    "resource_id",
    "action",
    "details",
    "request_id",
    "peer",
    "prev_hash",
)

# Every stored column, in the order exports write them.
EVENT_FIELDS = (*HASHED_FIELDS, "hash")


_CANONICAL = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
).encode


def canonical_json(obj: Any) -> str:
    return _CANONICAL(obj)


def event_hash(row: Mapping[str, Any]) -> str:
    """Hash of one event given its stored fields (``details`` as a JSON object, not text)."""
    body = {k: row[k] for k in HASHED_FIELDS}
    return hashlib.sha256((row["prev_hash"] + canonical_json(body)).encode()).hexdigest()


def canonical_body(row: Mapping[str, Any], details_text: str) -> str:
    """canonical_json of the hashed fields, built from ``details_text``, the details already
    in canonical form (as stored). Equal to ``canonical_json(body)`` but several times
    faster, which matters when verifying or appending millions of events."""
    s = encode_basestring
    return (
        '{"action":' + s(row["action"])
        + ',"actor":' + s(row["actor"])
        + ',"details":' + details_text
        + ',"event_id":' + s(row["event_id"])
        + ',"event_type":' + s(row["event_type"])
        + ',"peer":' + s(row["peer"])
        + ',"prev_hash":' + s(row["prev_hash"])
        + ',"request_id":' + s(row["request_id"])
        + ',"resource_id":' + s(row["resource_id"])
        + ',"resource_type":' + s(row["resource_type"])
        + ',"seq":' + str(int(row["seq"]))
        + ',"severity":' + s(row["severity"])
        + ',"ts_us":' + str(int(row["ts_us"]))
        + "}"
    )


def stored_hash(row: Mapping[str, Any], details_text: str) -> str:
    """Hash of an event whose details are canonical JSON text."""
    text = row["prev_hash"] + canonical_body(row, details_text)
    return hashlib.sha256(text.encode()).hexdigest()


async def append(
    conn: AsyncConnection,
    records: Iterable[AuditRecord],
    ctx: CallContext,
    ts_us: int,
) -> list[dict[str, Any]]:
    """Append records to the chain inside the caller's transaction; returns the stored rows
    (``details`` as canonical JSON text)."""
    head = (
        await conn.execute(
            sa.select(audit_chain_head.c.seq, audit_chain_head.c.hash)
            .where(audit_chain_head.c.id == 1)
            .with_for_update()
        )
    ).one()
    seq, prev = head.seq, head.hash
    records = list(records)
    # Random 128-bit ids, drawn in one system call for the whole batch.
    ids = os.urandom(16 * len(records)).hex()
    rows: list[dict[str, Any]] = []
    for n, rec in enumerate(records):
        seq += 1
        details = rec.details_text or canonical_json(rec.details)
        row: dict[str, Any] = {
            "seq": seq,
            "event_id": ids[32 * n : 32 * n + 32],
            "ts_us": ts_us,
            "event_type": str(rec.event_type),
            "severity": str(rec.severity),
            "actor": rec.actor or ctx.actor,
            "resource_type": rec.resource_type,
            "resource_id": rec.resource_id,
            "action": rec.action,
            "details": details,
            "request_id": ctx.request_id,
            "peer": ctx.peer,
            "prev_hash": prev,
        }
        row["hash"] = prev = stored_hash(row, details)
        rows.append(row)
    if not rows:
        return rows
    await conn.execute(audit_events.insert(), rows)
    await conn.execute(
        audit_chain_head.update().where(audit_chain_head.c.id == 1).values(seq=seq, hash=prev)
    )
    return rows
