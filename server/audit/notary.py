"""Signing the chain head: on demand, periodically, at shutdown, and around a key
rotation.

A head is signed only after the chain verifies (:meth:`Notary.checkpoint` says how much of
it), so a signature never covers a chain that was already broken. Periodic and shutdown
checkpoints are skipped when nothing was appended since the last one.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

import structlog

from neural.mlops.server import validation as v
from neural.mlops.server.audit.checkpoints import Checkpoint, CheckpointLedger
from neural.mlops.server.audit.events import EventSeverity, EventType
from neural.mlops.server.audit.verification import ChainBroken, ChainVerifier
from neural.mlops.server.background import Background
from neural.mlops.server.storage import Database

log = structlog.get_logger(__name__)

ROUTINE_KINDS = ("periodic", "shutdown")  # skipped when the head has not moved
MAX_REASON = 4096


@dataclass(slots=True)
class KeyRotation:
    old_key_id: str
    new_key_id: str
    public_key_pem: str  # the new key's
    endorsement: str  # the old key's signature of rotation_message(...)
    checkpoint: Checkpoint | None  # the new key's first, over the head with the rotation event


def rotation_message(old_key_id: str, new_key_id: str, new_public_pem: str) -> bytes:
    """What the old key signs to endorse its successor."""
    return (
        f"neural-mlops audit key rotation {old_key_id} -> {new_key_id}\n{new_public_pem}"
    ).encode()


class Notary:
    def __init__(
        self, db: Database, ledger: CheckpointLedger, verifier: ChainVerifier, interval: float
    ) -> None:
        self.db = db
        self.ledger = ledger
        self.verifier = verifier
        self.interval = interval  # seconds between periodic checkpoints; <= 0: none
        self._loop = Background("audit-checkpoints")

    async def checkpoint(self, kind: str = "manual") -> Checkpoint | None:
        """Sign the current chain head after verifying the chain; None when a routine
        checkpoint finds nothing new. Routine (periodic, shutdown) checkpoints verify the
        events since the newest checkpoint; the others (manual, export, rotation) verify
        the whole chain as ``audit verify`` does. Raises :class:`ChainBroken` and signs
        nothing when that verification fails."""
        async with self.ledger.lock:
            checkpoints, problems = await self.ledger.load()
            if problems:
                raise ChainBroken(*problems[0])
            base = checkpoints[-1] if checkpoints else None
            head_seq, head_hash = await self.verifier.head()
            unchanged = head_seq == 0 or (
                base is not None and (base.seq, base.hash) == (head_seq, head_hash)
            )
            if kind in ROUTINE_KINDS:
                if unchanged:
                    return None
                result = await self.verifier.verify_tail(base, head_seq, head_hash)
            else:
                result = await self.verifier.verify_chain()
            if not result.valid:
                raise ChainBroken(result.first_bad_seq, result.reason)
            cp = await self.sign(head_seq, head_hash, kind)
        log.info("audit checkpoint", seq=cp.seq, kind=kind, key_id=cp.key_id)
        return cp

    async def sign(self, seq: int, hash_: str, kind: str) -> Checkpoint:
        """Sign (seq, hash) and keep the checkpoint everywhere; the caller holds the
        ledger's lock and verified what it signs."""
        cp = self.ledger.sign(seq, hash_, kind)
        async with self.db.change(audited=False) as ch:
            await self.ledger.insert(ch.conn, cp)
        self.ledger.append_to_files(cp)
        return cp

    async def rotate_key(self, reason: str = "") -> KeyRotation:
        """Replace the checkpoint key. The old key first signs the chain head (refused, like
        any checkpoint, if the chain does not verify) and endorses the new public key; the
        rotation is an audit event; the new key then signs the head that includes it. The
        old public key stays in ``retired/`` beside the key file, so its checkpoints still
        verify."""
        reason = v.text(reason, "reason", limit=MAX_REASON)
        await self.checkpoint("rotation")
        async with self.ledger.lock:
            old, new = self.ledger.keys.rotate()
            endorsement = old.sign(rotation_message(old.key_id, new.key_id, new.public_pem))
            async with self.db.change() as ch:
                ch.record(
                    EventType.CONFIGURATION_CHANGED,
                    resource_type="audit_key",
                    resource_id="audit",
                    action="rotate_key",
                    severity=EventSeverity.WARNING,
                    details={"old_key_id": old.key_id, "new_key_id": new.key_id,
                             "new_public_key": new.public_pem, "endorsement": endorsement,
                             "reason": reason},
                )
        cp = await self.checkpoint("rotation")
        log.info("audit key rotated", old_key_id=old.key_id, new_key_id=new.key_id)
        return KeyRotation(old.key_id, new.key_id, new.public_pem, endorsement, cp)

    # --- the periodic loop ------------------------------------------------------------

    def start(self) -> None:
        if self.interval > 0:
            self._loop.start(self.run)

    async def run(self) -> None:
        """Sign the head every ``interval`` seconds, forever (with several replicas, only
        the holder of the ``audit-checkpoints`` lease runs it: server/coordination.py)."""
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.checkpoint("periodic")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 (the loop must survive; the error is logged)
                log.error("audit checkpoint failed", error=str(exc))

    async def close(self) -> None:
        """Stop the loop and sign the head a last time (best effort: closing must not fail)."""
        await self._loop.stop()
        with contextlib.suppress(Exception):
            await self.checkpoint("shutdown")
