"""Verifying the stored chain: every event against its hash and its predecessor, the
head record, and every signed checkpoint (:mod:`neural.mlops.server.audit.verify` checks
the events; this module decides where to start and what the end must look like).

After a purge the chain starts at the newest purge checkpoint, which signed the hash of
the last deleted event.
"""

from __future__ import annotations

from collections.abc import Sequence

from neural.mlops.server.audit import store
from neural.mlops.server.audit.checkpoints import Checkpoint, CheckpointLedger
from neural.mlops.server.audit.hashchain import GENESIS
from neural.mlops.server.audit.verify import ChainChecker, ChainVerification
from neural.mlops.server.storage import Database


class ChainVerifier:
    def __init__(self, db: Database, ledger: CheckpointLedger) -> None:
        self.db = db
        self.ledger = ledger

    async def verify_chain(self) -> ChainVerification:
        """Verify the whole stored chain against itself, its head record and every signed
        checkpoint. Returns the first bad event and the reason."""
        checkpoints, problems = await self.ledger.load()
        if problems:
            return ChainVerification(valid=False, reason=problems[0], signature_valid=False,
                                     key_id=self._key_id())
        base_seq, base_hash = _anchor(checkpoints)
        signed, conflict = _signed_after(checkpoints, base_seq)
        if conflict:
            return ChainVerification(
                valid=False, first_bad_seq=conflict, key_id=self._key_id(),
                reason=f"two signed checkpoints disagree about seq {conflict}")
        # The head is read before the events: anything appended meanwhile is beyond it.
        head_seq, head_hash = await self.head()
        result = await self.verify_range(base_seq, base_hash, signed, head_seq)
        result.signature_valid = True if checkpoints else None
        if result.valid:
            _check_end(result, signed, (base_seq, base_hash), (head_seq, head_hash))
        if result.valid:
            result.notes.append(
                f"{len(signed)} signed checkpoint(s) matched; events after seq "
                f"{max(signed, default=base_seq)} are protected by the hash chain only until "
                "the next checkpoint"
            )
        return result

    async def verify_tail(
        self, base: Checkpoint | None, head_seq: int, head_hash: str
    ) -> ChainVerification:
        """The events from the last checkpoint ``base`` to the head: they must chain on
        from it, the signed base must still be there unchanged, and the last must be the
        recorded head. What a new checkpoint relies on."""
        base_seq, base_hash = (base.seq, base.hash) if base else (0, GENESIS)
        result = await self.verify_range(base_seq, base_hash, {}, head_seq)
        if result.valid and base is not None:
            async with self.db.read() as conn:
                at_base = await store.hash_at(conn, base.seq)
            if at_base is not None and at_base != base.hash:
                _fail(result, base.seq, "hash differs from the signed checkpoint (chain rewritten)")
        last_hash = result.last_hash if result.events_checked else base_hash
        if result.valid and last_hash != head_hash:
            _fail(result, head_seq, "the recorded chain head does not match the last event")
        return result

    async def verify_range(
        self, base_seq: int, base_hash: str, signed: dict[int, str], upto: int | None
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

    def _key_id(self) -> str:
        return self.ledger.keys.key.key_id


def _anchor(checkpoints: Sequence[Checkpoint]) -> tuple[int, str]:
    """Where the stored chain starts: the newest purge checkpoint, else the genesis."""
    purges = [cp for cp in checkpoints if cp.kind == "purge"]
    if not purges:
        return 0, GENESIS
    anchor = max(purges, key=lambda cp: cp.seq)
    return anchor.seq, anchor.hash


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


def _check_end(
    result: ChainVerification,
    signed: dict[int, str],
    base: tuple[int, str],
    head: tuple[int, str],
) -> None:
    """Fail a result whose events all fit but end short of a signed checkpoint or of the
    head record (deleted from the end), or whose last hash is not the head's. ``base``
    and ``head`` are (seq, hash)."""
    (base_seq, base_hash), (head_seq, head_hash) = base, head
    last = result.last_seq or base_seq
    if result.checkpoints_checked < len(signed):
        missing = min(s for s in signed if s > last)
        _fail(result, missing, f"signed checkpoint at seq {missing} is beyond the last event "
                               f"({last}): events were deleted")
    elif last != head_seq:
        _fail(result, last + 1, f"the chain ends at seq {last} but the recorded head is "
                                f"{head_seq}: events {last + 1}..{head_seq} were deleted")
    elif (result.last_hash if result.events_checked else base_hash) != head_hash:
        _fail(result, head_seq, "the last event's hash differs from the recorded chain head")


def _fail(result: ChainVerification, seq: int, reason: str) -> None:
    result.valid = False
    result.first_bad_seq = seq
    result.reason = reason
