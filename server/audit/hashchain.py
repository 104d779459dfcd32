"""The audit hash chain: ``hash = sha256(prev_hash + canonical(event without "hash"))``.

Two hash versions exist; each event records its own in ``hash_version`` (exports carry
it; an event without one is version 1):

* **Version 2** (every event written since migration 0012): the hashed object is the
  event's stored fields but ``hash``, **including** ``"hash_version": 2``, serialized with
  RFC 8785, the JSON Canonicalization Scheme (keys sorted by UTF-16 code units, numbers
  as ECMAScript prints them: ``1``, ``1e-7``, ``0.5``), so a verifier in any language with
  a JCS library gets the same bytes. The writer keeps every details value inside JCS's
  domain: an integer beyond +-(2**53 - 1) is stored as its decimal string (RFC 7493,
  I-JSON, section 2.2), as is a non-string object key as ``json.dumps`` names it.
* **Version 1** (events written before): the same object without ``hash_version``,
  serialized by Python's ``json.dumps(body, sort_keys=True, separators=(",", ":"),
  ensure_ascii=False)`` (floats as Python prints them: ``1.0``, ``1e-07``).

The first event's ``prev_hash`` is 64 zeros. ``seq`` and ``prev_hash`` are hashed, so an
edited, deleted, inserted or reordered event breaks the chain at that point; so does a
version 2 event relabelled as version 1 (its version is inside its hash).

An auditor can recompute a hash with a JSON parser, a JCS library and SHA-256::

    body = {k: event[k] for k in HASHED_FIELDS}        # details as a JSON object
    if event.get("hash_version", 1) == 2:
        text = rfc8785.dumps({**body, "hash_version": 2}).decode()
    else:
        text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert sha256((event["prev_hash"] + text).encode("utf-8")).hexdigest() == event["hash"]

``protos/neural/mlops/v1/AUDIT.md`` is the language-neutral statement, with vectors.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from json.encoder import encode_basestring
from typing import Any

import rfc8785
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from neural.mlops.server.audit.events import AuditRecord
from neural.mlops.server.identity import CallContext
from neural.mlops.server.storage.schema import audit_chain_head, audit_events

GENESIS = "0" * 64
HASH_VERSION = 2  # what new events are hashed with
HASH_VERSIONS = (1, 2)

# Fields that enter every version's hash, in the stored row's naming; version 2 adds
# ``hash_version`` itself.
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

# Every stored column, in the order stored rows and exports carry them.
EVENT_FIELDS = (*HASHED_FIELDS, "hash", "hash_version")

_SAFE_INT = 2**53 - 1  # larger integers do not survive a JSON parser that reads doubles

_CANONICAL_V1 = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
).encode


def canonical_json(obj: Any) -> str:
    """RFC 8785 (JCS) text of ``obj``: what version 2 hashes and what new events store as
    their details; also the form of the signed checkpoint and seal messages. Integers
    beyond +-(2**53 - 1) and non-string keys become strings (see the module docstring).
    Raises ValueError for NaN, infinities, lone surrogates and non-JSON types."""
    try:
        return rfc8785.dumps(obj).decode()
    except rfc8785.CanonicalizationError:
        return rfc8785.dumps(interoperable(obj)).decode()


def signed_json(obj: Any) -> str:
    """The text a signature covers: RFC 8785. An object JCS cannot carry (an integer
    beyond 2**53) can only be one signed before RFC 8785 was adopted, over json.dumps
    text: that text, so such signatures keep verifying. New signed objects go through
    :func:`interoperable` first and never take that branch."""
    try:
        return rfc8785.dumps(obj).decode()
    except rfc8785.CanonicalizationError:
        return canonical_json_v1(obj)


def canonical_json_v1(obj: Any) -> str:
    """The version 1 serialization (Python's json.dumps), for events hashed before 0012."""
    return _CANONICAL_V1(obj)


def interoperable(obj: Any) -> Any:
    """``obj`` with what JCS cannot carry exactly turned into strings, as I-JSON advises:
    apply it to a signed object that is also written out (an export's seal), so what a
    verifier reads is what was signed."""
    if isinstance(obj, bool) or obj is None:
        return obj
    if isinstance(obj, int):
        return obj if -_SAFE_INT <= obj <= _SAFE_INT else str(int(obj))
    if isinstance(obj, dict):
        return {_key(k): interoperable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [interoperable(v) for v in obj]
    return obj


def _key(key: Any) -> Any:
    # json.dumps's names for the non-string keys it accepts.
    if key is None or isinstance(key, bool | int | float):
        return _CANONICAL_V1(key)
    return key


def hash_version(row: Mapping[str, Any]) -> int:
    """The hash version of an event (1 when it names none: exports made before 0012)."""
    raw = row.get("hash_version")
    version = 1 if raw in (None, "") else int(raw)
    if version not in HASH_VERSIONS:
        raise ValueError(f"unknown hash_version {raw!r}")
    return version


def canonical_details(details: Any, version: int) -> str:
    """Details (a JSON object) in the canonical form of ``version``."""
    return canonical_json(details) if version >= 2 else canonical_json_v1(details)


def event_hash(row: Mapping[str, Any]) -> str:
    """Hash of one event given its fields (``details`` as a JSON object, not text), with
    the event's own hash version."""
    version = hash_version(row)
    body = {k: row[k] for k in HASHED_FIELDS}
    if version >= 2:
        text = canonical_json({**body, "hash_version": version})
    else:
        text = canonical_json_v1(body)
    return hashlib.sha256((row["prev_hash"] + text).encode()).hexdigest()


def canonical_body(row: Mapping[str, Any], details_text: str, version: int = 1) -> str:
    """The hashed text of the event, built from ``details_text``, the details already in
    the version's canonical form (as stored). Equal to what :func:`event_hash` hashes but
    several times faster, which matters when verifying or appending millions of events.
    The fixed fields are strings and integers, for which JCS and json.dumps agree: the
    same escapes (``\\"``, ``\\\\``, ``\\b\\f\\n\\r\\t``, other controls ``\\u00xx``), other
    characters as they are, and integers in decimal (seq and ts_us stay below 2**53)."""
    s = encode_basestring
    return (
        '{"action":' + s(row["action"])
        + ',"actor":' + s(row["actor"])
        + ',"details":' + details_text
        + ',"event_id":' + s(row["event_id"])
        + ',"event_type":' + s(row["event_type"])
        + (',"hash_version":' + str(version) if version >= 2 else "")
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
    """Hash of an event whose details are text in its version's canonical form."""
    text = row["prev_hash"] + canonical_body(row, details_text, hash_version(row))
    return hashlib.sha256(text.encode()).hexdigest()


async def append(
    conn: AsyncConnection,
    records: Iterable[AuditRecord],
    ctx: CallContext,
    ts_us: int,
) -> list[dict[str, Any]]:
    """Append records to the chain inside the caller's transaction, hashed with
    :data:`HASH_VERSION`; returns the stored rows (``details`` as canonical JSON text)."""
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
            "hash_version": HASH_VERSION,
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
