"""Checking a hash chain: the same code verifies the store and an export file.

A :class:`ChainChecker` is fed events in ``seq`` order and stops at the first one that
does not fit, naming it and saying why:

* a recomputed hash differs from the stored one: the event was **edited**;
* ``seq`` jumps forward: events were **deleted**;
* ``seq`` goes backwards or repeats: events were **reordered** or **inserted**;
* ``prev_hash`` differs from the previous event's hash: an event was **inserted**,
  **deleted** or **reordered** and the numbering was patched up;
* a signed checkpoint names a different hash for this ``seq``: the chain was
  **rewritten** (hashes recomputed), which only the Ed25519 checkpoints can reveal;
* a version 1 event follows a version 2 event: versions only grow along a chain, so the
  event was written by something other than the control plane.

Each event is hashed with its own ``hash_version``
(:mod:`neural.mlops.server.audit.hashchain`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from neural.mlops.server.audit.hashchain import (
    GENESIS,
    canonical_details,
    event_hash,
    hash_version,
    stored_hash,
)


@dataclass(slots=True)
class ChainVerification:
    """The outcome of verifying a chain (the store's or an export file's).

    ``valid`` is True only if every event matched its hash, its predecessor and every
    signed checkpoint. Otherwise ``first_bad_event_id`` / ``first_bad_seq`` name the first
    event that does not fit (empty when the problem is not one event, e.g. a truncated
    tail) and ``reason`` says what is wrong.
    """

    valid: bool
    events_checked: int = 0
    first_seq: int = 0
    last_seq: int = 0
    last_hash: str = ""
    first_bad_event_id: str = ""
    first_bad_seq: int = 0
    reason: str = ""
    checkpoints_checked: int = 0
    signature_valid: bool | None = None  # None: nothing signed was checked
    key_id: str = ""
    notes: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return self.valid


def details_text(details: Any, version: int) -> tuple[str, Any]:
    """(text to hash, parsed object) for details given as stored text or as an object."""
    if isinstance(details, str):
        return details, None
    return canonical_details(details, version), details


class ChainChecker:
    """Feed events in order; :attr:`failure` is set at the first one that does not fit."""

    def __init__(
        self,
        *,
        base_seq: int = 0,
        base_hash: str = GENESIS,
        checkpoints: Mapping[int, str] | None = None,
    ) -> None:
        self.expected_seq = base_seq + 1
        self.prev_hash = base_hash
        self.checkpoints = dict(checkpoints or {})
        self.checked = 0
        self.checkpoints_checked = 0
        self.first_seq = 0
        self.version = 1  # the highest hash version seen so far
        self.failure: tuple[str, int, str] | None = None  # (event_id, seq, reason)

    def _fail(self, row: Mapping[str, Any], reason: str) -> bool:
        self.failure = (str(row.get("event_id", "")), _as_int(row.get("seq")), reason)
        return False

    def feed(self, row: Mapping[str, Any]) -> bool:
        """Check one event (``details`` as text or object); False at the first bad one."""
        if self.failure is not None:
            return False
        try:
            seq = int(row["seq"])
        except (KeyError, TypeError, ValueError):
            return self._fail(row, "event has no valid seq (malformed record)")
        if seq != self.expected_seq:
            return self._fail(row, self._out_of_order(seq))
        if row.get("prev_hash") != self.prev_hash:
            return self._fail(
                row,
                f"prev_hash does not match the hash of event {seq - 1} "
                "(an event was inserted, deleted or reordered)",
            )
        try:
            version = hash_version(row)
            if version < self.version:
                return self._fail(row, f"hash version {version} after version {self.version} "
                                       "(versions only grow: the event was not written by "
                                       "the control plane)")
            text, parsed = details_text(row["details"], version)
            computed = stored_hash(row, text)
            if computed != row.get("hash"):
                # Stored text that is valid but not canonical JSON still hashes by content.
                obj = parsed if parsed is not None else json.loads(text)
                computed = event_hash({**row, "details": obj})
        except (KeyError, TypeError, ValueError) as exc:
            return self._fail(row, f"malformed event ({exc.__class__.__name__}: {exc})")
        if computed != row.get("hash"):
            return self._fail(row, "content does not match its hash (event edited)")
        signed = self.checkpoints.get(seq)
        if signed is not None:
            self.checkpoints_checked += 1
            if signed != row["hash"]:
                return self._fail(
                    row,
                    "hash differs from the signed checkpoint at this seq "
                    "(the chain was rewritten after the checkpoint was signed)",
                )
        if not self.first_seq:
            self.first_seq = seq
        self.prev_hash = row["hash"]
        self.version = version
        self.expected_seq = seq + 1
        self.checked += 1
        return True

    def _out_of_order(self, seq: int) -> str:
        """Why ``seq`` cannot come next."""
        expected = self.expected_seq
        if seq > expected:
            missing = (f"event {expected}" if seq == expected + 1
                       else f"events {expected}..{seq - 1}")
            return f"{missing} missing before seq {seq} (deleted)"
        return f"seq {seq} where {expected} was expected (events reordered or inserted)"

    @property
    def last_seq(self) -> int:
        return self.expected_seq - 1

    def result(self, **extra: Any) -> ChainVerification:
        out = ChainVerification(
            valid=self.failure is None,
            events_checked=self.checked,
            first_seq=self.first_seq,
            last_seq=self.last_seq if self.checked else 0,
            last_hash=self.prev_hash if self.checked else "",
            checkpoints_checked=self.checkpoints_checked,
        )
        if self.failure is not None:
            out.first_bad_event_id, out.first_bad_seq, out.reason = self.failure
        for key, value in extra.items():
            setattr(out, key, value)
        return out


def _as_int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
