"""Verifying the stored chain: every event against its hash and its predecessor, the
head record, every signed checkpoint (the store's, its file's and the anchor's), the
operator's pins, and the coverage rule (:mod:`neural.mlops.server.audit.verify` checks the
events; this module decides where to start and what the end must look like).

The chain is verified from the newest ``purge`` checkpoint (which signed the hash of the
last deleted event) or ``acknowledged`` checkpoint (an operator accepted a break before
it), else from the genesis.

**Coverage rule.** A running control plane signs the head every ``interval`` seconds
when the chain moved, at shutdown and at start-up checks, so events no checkpoint covers
are the last few appended. The events after the newest checkpoint (all events when there
is none) must therefore span, by their own timestamps, at most :func:`allowance`
(``interval + max(interval, 60 s)``); more means checkpoints were deleted, or none could be
signed for that long. A fresh store whose events all lie within that span verifies
without any checkpoint. With ``interval <= 0`` (no periodic checkpoints) the rule is off.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from neural.mlops.server.audit import store
from neural.mlops.server.audit.checkpoints import Checkpoint, CheckpointLedger
from neural.mlops.server.audit.hashchain import GENESIS
from neural.mlops.server.audit.verify import ChainChecker, ChainVerification
from neural.mlops.server.errors import FailedPrecondition
from neural.mlops.server.storage import Database

COVERAGE_SLACK_SECONDS = 60.0
RESTART_KINDS = ("purge", "acknowledged")  # verification starts at the newest of these


class ChainBroken(FailedPrecondition):
    """The chain does not verify, so nothing is signed (FAILED_PRECONDITION)."""

    def __init__(self, seq: int, reason: str) -> None:
        super().__init__(f"CHAIN_BROKEN: refusing to sign the audit chain, which does not "
                         f"verify at seq {seq}: {reason}", reason="CHAIN_BROKEN")
        self.seq = seq


def allowance(interval: float) -> float:
    """Seconds of events that may stay unsigned under the coverage rule."""
    return interval + max(interval, COVERAGE_SLACK_SECONDS)


class ChainVerifier:
    def __init__(self, db: Database, ledger: CheckpointLedger, interval: float) -> None:
        self.db = db
        self.ledger = ledger
        self.interval = interval  # the checkpoint interval the coverage rule assumes

    async def verify_chain(self, pins: Mapping[int, str] | None = None) -> ChainVerification:
        """Verify the whole stored chain against itself, its head record, every signed
        checkpoint, the ``pins`` ({seq: hash}) and the coverage rule. Returns the first
        bad event and the reason."""
        checkpoints, problems = await self.ledger.load()
        if problems:
            return self._failed(*problems[0], signature_valid=False)
        base_seq, base_hash = _start(checkpoints)
        signed, conflict = _signed_after(checkpoints, base_seq)
        if conflict:
            return self._failed(conflict, f"two signed checkpoints disagree about seq {conflict}")
        expected, seq, why = _with_pins(signed, pins or {}, (base_seq, base_hash))
        if why:
            return self._failed(seq, why)
        # The head is read before the events: anything appended meanwhile is beyond it.
        head_seq, head_hash = await self.head()
        result = await self.verify_range(base_seq, base_hash, expected, head_seq)
        result.signature_valid = True if checkpoints else None
        if not result.valid and result.first_bad_seq in (pins or {}):
            result.reason = (f"hash differs from the pinned hash at seq {result.first_bad_seq} "
                             "(the chain was rewritten)")
        if result.valid:
            _check_end(result, expected, (base_seq, base_hash), (head_seq, head_hash))
        if result.valid:
            covered = max((cp.seq for cp in checkpoints), default=0)
            await self._check_coverage(result, covered, head_seq)
        if result.valid:
            result.notes += _notes(checkpoints, signed, pins or {}, base_seq, self.interval)
        return result

    async def verify_since_last_checkpoint(self) -> ChainVerification:
        """The bounded check made when a store opens: every checkpoint's signature and
        presence (database, file, anchor), the events from the newest checkpoint to the
        head, and the coverage rule over them. Its cost is that of the checkpoint list
        plus the events appended since the newest checkpoint (one interval's worth while
        a control plane runs), not the whole chain."""
        checkpoints, problems = await self.ledger.load()
        if problems:
            return self._failed(*problems[0], signature_valid=False)
        head_seq, head_hash = await self.head()
        base = checkpoints[-1] if checkpoints else None
        result = await self.verify_tail(base, head_seq, head_hash)
        if result.valid:
            await self._check_coverage(result, base.seq if base else 0, head_seq)
        return result

    async def verify_tail(
        self, base: Checkpoint | None, head_seq: int, head_hash: str
    ) -> ChainVerification:
        """The events from the last checkpoint ``base`` to the head: they must chain on
        from it, the signed base must still be there unchanged, and the last must be the
        recorded head. What a routine checkpoint relies on."""
        base_seq, base_hash = (base.seq, base.hash) if base else (0, GENESIS)
        if base_seq > head_seq:
            return self._failed(head_seq + 1, f"signed checkpoint at seq {base_seq} is beyond "
                                              f"the chain head ({head_seq}): events were deleted")
        start, signed = (base_seq, base_hash), {}
        if base is not None and base.seq and base.kind != "purge":  # a purge deleted its event
            # The signed event itself is checked too: its content, and the signed hash.
            async with self.db.read() as conn:
                prev = await store.prev_hash_at(conn, base.seq)
            if prev is None:
                return self._failed(base.seq, "the event a signed checkpoint covers is "
                                              "missing (deleted)")
            start, signed = (base.seq - 1, prev), {base.seq: base.hash}
        result = await self.verify_range(*start, signed, head_seq)
        last_hash = result.last_hash if result.events_checked else base_hash
        if result.valid and last_hash != head_hash:
            _fail(result, head_seq, "the recorded chain head does not match the last event")
        return result

    async def verify_range(
        self, base_seq: int, base_hash: str, signed: Mapping[int, str], upto: int | None
    ) -> ChainVerification:
        """Check the events after ``base_seq`` up to ``upto``, stopping at the first bad one."""
        checker = ChainChecker(base_seq=base_seq, base_hash=base_hash, checkpoints=signed)
        async with self.db.read() as conn:
            async for rows in store.read_pages(conn, base_seq, upto):
                for r in rows:
                    if not checker.feed(store.row_dict(r)):
                        return checker.result(key_id=self._key_id())
        return checker.result(key_id=self._key_id())

    async def head(self) -> tuple[int, str]:
        """(seq, hash) of the last event appended, as the chain's head record says."""
        async with self.db.read() as conn:
            return await store.chain_head(conn)

    async def _check_coverage(
        self, result: ChainVerification, covered: int, head_seq: int
    ) -> None:
        """Fail ``result`` when the events after seq ``covered`` break the coverage rule."""
        if self.interval <= 0 or head_seq <= covered:
            return
        async with self.db.read() as conn:
            oldest, newest = await store.time_span_after(conn, covered)
        allowed = allowance(self.interval)
        span = (newest - oldest) / 1e6
        if span > allowed:
            _fail(result, covered + 1,
                  f"events {covered + 1}..{head_seq} are covered by no signed checkpoint but "
                  f"span {span:.0f} s, more than the {allowed:.0f} s a running control plane "
                  "leaves unsigned (checkpoints deleted, or none could be signed)")

    def _failed(self, seq: int, reason: str, **extra: object) -> ChainVerification:
        result = ChainVerification(valid=False, first_bad_seq=seq, reason=reason,
                                   key_id=self._key_id())
        for key, value in extra.items():
            setattr(result, key, value)
        return result

    def _key_id(self) -> str:
        return self.ledger.keys.key.key_id


def _start(checkpoints: Sequence[Checkpoint]) -> tuple[int, str]:
    """Where the stored chain starts: the newest purge or acknowledged checkpoint, else
    the genesis."""
    restarts = [cp for cp in checkpoints if cp.kind in RESTART_KINDS]
    if not restarts:
        return 0, GENESIS
    start = max(restarts, key=lambda cp: (cp.seq, cp.created_us))
    return start.seq, start.hash


def _signed_after(
    checkpoints: Sequence[Checkpoint], base_seq: int
) -> tuple[dict[int, str], int]:
    """The signed hash of each seq after ``base_seq``, and the first seq two checkpoints
    disagree about (0 if none)."""
    signed: dict[int, str] = {}
    for cp in checkpoints:
        if cp.seq > base_seq:
            if signed.get(cp.seq, cp.hash) != cp.hash:
                return signed, cp.seq
            signed[cp.seq] = cp.hash
    return signed, 0


def _with_pins(
    signed: dict[int, str], pins: Mapping[int, str], base: tuple[int, str]
) -> tuple[dict[int, str], int, str]:
    """The hashes the events must have: the signed ones and the pins. Returns them, or the
    seq of a pin that cannot hold and why."""
    base_seq, base_hash = base
    expected = dict(signed)
    for seq, hash_ in sorted(pins.items()):
        if seq < base_seq or (seq == base_seq and hash_ != base_hash):
            why = ("precedes the stored chain, which starts after a purge or acknowledged "
                   f"checkpoint at seq {base_seq}; check it against the archive")
            if seq == base_seq:
                why = "differs from the hash the chain starts from (chain rewritten)"
            return expected, seq, f"the pin at seq {seq} {why}"
        if expected.get(seq, hash_) != hash_:
            return expected, seq, (f"the pin at seq {seq} differs from the signed checkpoint "
                                   "there (the pin is wrong, or the store was re-signed)")
        if seq > base_seq:
            expected[seq] = hash_
    return expected, 0, ""


def _check_end(
    result: ChainVerification,
    expected: dict[int, str],
    base: tuple[int, str],
    head: tuple[int, str],
) -> None:
    """Fail a result whose events all fit but end short of a signed checkpoint, a pin or
    the head record (deleted from the end), or whose last hash is not the head's. ``base``
    and ``head`` are (seq, hash)."""
    (base_seq, base_hash), (head_seq, head_hash) = base, head
    last = result.last_seq or base_seq
    if result.checkpoints_checked < len(expected):
        missing = min(s for s in expected if s > last)
        _fail(result, missing, f"signed checkpoint or pin at seq {missing} is beyond the last "
                               f"event ({last}): events were deleted")
    elif last != head_seq:
        _fail(result, last + 1, f"the chain ends at seq {last} but the recorded head is "
                                f"{head_seq}: events {last + 1}..{head_seq} were deleted")
    elif (result.last_hash if result.events_checked else base_hash) != head_hash:
        _fail(result, head_seq, "the last event's hash differs from the recorded chain head")


def _notes(
    checkpoints: Sequence[Checkpoint],
    signed: dict[int, str],
    pins: Mapping[int, str],
    base_seq: int,
    interval: float,
) -> list[str]:
    notes = []
    acknowledged = [cp for cp in checkpoints if cp.kind == "acknowledged"]
    if acknowledged and max(acknowledged, key=lambda cp: cp.seq).seq == base_seq:
        notes.append(f"verified from seq {base_seq}, where an operator acknowledged a broken "
                     "chain (see the security_violation event acknowledge_broken_chain)")
    if pins:
        notes.append(f"{len(pins)} pinned hash(es) matched")
    if interval <= 0:
        notes.append("coverage rule off: periodic checkpoints are disabled")
    notes.append(f"{len(signed)} signed checkpoint(s) matched; events after seq "
                 f"{max(signed, default=base_seq)} are protected by the hash chain only until "
                 "the next checkpoint")
    return notes


def _fail(result: ChainVerification, seq: int, reason: str) -> None:
    result.valid = False
    result.first_bad_seq = seq
    result.reason = reason
