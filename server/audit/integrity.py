"""Failing closed: a store whose audit chain is found broken when it opens refuses every
change until an operator acknowledges the break.

When a store opens (the control plane at start, the embedded API)
:meth:`Integrity.check_at_open` runs the bounded check
:meth:`~neural.mlops.server.audit.verification.ChainVerifier.verify_since_last_checkpoint`.
If it fails at seq N, every change answers FAILED_PRECONDITION naming N and how to
acknowledge it (:attr:`Database.writes_refused <neural.mlops.server.storage.Database>`);
reads, queries and verification keep working.

The operator acknowledges with ``serve --acknowledge-broken-chain N``, or with
``neural-mlops audit acknowledge --seq N --target DATA_DIR`` while the control plane is
stopped. The acknowledgement must name the seq the check found. It is recorded as a
critical ``security_violation`` event (action ``acknowledge_broken_chain``, with the seq,
the problem and the operator's reason) and a signed ``acknowledged`` checkpoint of that
event: verification continues from it, and problems with checkpoints up to it are no
longer reported (:meth:`CheckpointLedger.load`).
"""

from __future__ import annotations

import structlog

from neural.mlops.server import validation as v
from neural.mlops.server.audit.checkpoints import Checkpoint, CheckpointLedger
from neural.mlops.server.audit.events import EventSeverity, EventType
from neural.mlops.server.audit.notary import MAX_REASON, Notary
from neural.mlops.server.audit.verification import ChainVerifier
from neural.mlops.server.audit.verify import ChainVerification
from neural.mlops.server.errors import FailedPrecondition
from neural.mlops.server.storage import Database

log = structlog.get_logger(__name__)

ACKNOWLEDGE_ACTION = "acknowledge_broken_chain"


def refusal(result: ChainVerification) -> str:
    """The message every change gets while the break at ``result`` is not acknowledged."""
    seq = result.first_bad_seq
    return (f"audit chain broken at seq {seq} ({result.reason[:200]}); writes refused until "
            f"an operator acknowledges: neural-mlops audit acknowledge --seq {seq} --target "
            f"DATA_DIR (control plane stopped), or serve --acknowledge-broken-chain {seq}")


class Integrity:
    def __init__(
        self, db: Database, ledger: CheckpointLedger, verifier: ChainVerifier, notary: Notary
    ) -> None:
        self.db = db
        self.ledger = ledger
        self.verifier = verifier
        self.notary = notary

    async def check_at_open(self, acknowledge: int | None = None) -> ChainVerification:
        """Check the chain as the store opens; refuse every change when it is broken,
        unless ``acknowledge`` names the seq where it is broken (then record that)."""
        result = await self.verifier.verify_since_last_checkpoint()
        if result.valid:
            if acknowledge is not None:
                log.warning("nothing to acknowledge: the audit chain verifies", seq=acknowledge)
            return result
        if acknowledge == result.first_bad_seq:
            await self.acknowledge(acknowledge, "serve --acknowledge-broken-chain")
            return result
        self.db.writes_refused = refusal(result)
        log.error("audit chain broken: every change is refused", seq=result.first_bad_seq,
                  reason=result.reason, acknowledged=acknowledge)
        return result

    async def acknowledge(self, seq: int, reason: str = "") -> Checkpoint:
        """Accept the break at ``seq`` (the seq the bounded check finds): record it and
        sign an ``acknowledged`` checkpoint that verification continues from. Lifts the
        refusal of writes in this process."""
        reason = v.text(reason, "reason", limit=MAX_REASON)
        async with self.ledger.lock:
            result = await self.verifier.verify_since_last_checkpoint()
            if result.valid:
                raise FailedPrecondition(
                    "the audit chain verifies: there is no break to acknowledge", field="seq")
            if result.first_bad_seq != seq:
                raise FailedPrecondition(
                    f"the audit chain is broken at seq {result.first_bad_seq}, not {seq}: "
                    "acknowledge that seq", field="seq")
            refused, self.db.writes_refused = self.db.writes_refused, ""
            try:
                async with self.db.change() as ch:
                    ch.record(
                        EventType.SECURITY_VIOLATION,
                        resource_type="audit_trail",
                        resource_id="audit",
                        action=ACKNOWLEDGE_ACTION,
                        severity=EventSeverity.CRITICAL,
                        details={"broken_at_seq": seq, "problem": result.reason,
                                 "reason": reason},
                    )
                event = ch.events[-1]
                cp = await self.notary.sign(event["seq"], event["hash"], "acknowledged")
            except BaseException:
                self.db.writes_refused = refused
                raise
        log.warning("audit chain break acknowledged", seq=seq, checkpoint_seq=cp.seq)
        return cp
