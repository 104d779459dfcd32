"""Retention: deleting old events without losing the evidence.

A purge refuses to run on a chain that does not verify, archives the events it deletes
to a sealed ``jsonl`` export in ``<data_dir>/audit/archive/``, and in the transaction
that deletes them signs a ``purge`` checkpoint over the last deleted event: the remaining
chain is verified from that signed hash on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import structlog

from neural.mlops.server.audit import store
from neural.mlops.server.audit.checkpoints import Checkpoint, CheckpointLedger
from neural.mlops.server.audit.eventlog import check_time
from neural.mlops.server.audit.events import EventSeverity, EventType
from neural.mlops.server.audit.exporter import Exporter, ExportResult
from neural.mlops.server.audit.verification import ChainVerifier
from neural.mlops.server.clock import Clock, from_us, to_us
from neural.mlops.server.errors import AlreadyExists, DataLoss, FailedPrecondition, InvalidArgument
from neural.mlops.server.storage import Database

log = structlog.get_logger(__name__)

# Bytes of UTF-8: the file systems' 255 less what the temporary file adds to the name.
MAX_ARCHIVE_NAME = 200


@dataclass(slots=True)
class PurgeResult:
    purged_count: int
    first_seq: int
    last_seq: int
    before_us: int
    archive_path: str
    checkpoint: Checkpoint | None


class Retention:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        archive_dir: Path,
        *,
        ledger: CheckpointLedger,
        verifier: ChainVerifier,
        exporter: Exporter,
    ) -> None:
        self.db = db
        self.clock = clock
        self.archive_dir = archive_dir
        self.ledger = ledger
        self.verifier = verifier
        self.exporter = exporter

    async def purge(self, before_us: int, archive_path: str | None = None) -> PurgeResult:
        """Delete the events older than ``before_us`` after archiving them to a sealed
        export, leaving a signed checkpoint that anchors the rest of the chain.
        ``archive_path`` names the archive file in the archive folder (default: one named
        after the range and the time)."""
        check_time(before_us, "before")
        _check_archive_name(archive_path)
        verification = await self.verifier.verify_chain()
        if not verification.valid:
            raise FailedPrecondition(
                f"the audit chain does not verify (seq {verification.first_bad_seq}: "
                f"{verification.reason}); refusing to purge evidence", reason="CHAIN_BROKEN"
            )
        async with self.db.read() as conn:
            first = await store.oldest_seq(conn)
            newer = await store.first_seq_since(conn, before_us)
            head_seq, _ = await store.chain_head(conn)
        last = (newer - 1) if newer is not None else head_seq
        if first is None or last < first:
            return PurgeResult(0, 0, 0, before_us, "", None)
        archive = self._archive(first, last, archive_path)
        exported = await self.exporter.to_file(
            archive, "jsonl", seq_range=(first, last), record=False
        )
        try:
            deleted, cp = await self._delete(before_us, (first, last), exported)
        except BaseException:
            # Nothing was deleted: the archive would be an orphan copy of live events.
            Path(exported.path).unlink(missing_ok=True)
            raise
        log.info("audit purged", before=from_us(before_us).isoformat(), count=deleted,
                 archive=exported.path)
        return PurgeResult(deleted, first, last, before_us, exported.path, cp)

    def _archive(self, first: int, last: int, name: str | None) -> Path:
        self.archive_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if name is None:
            stamp = from_us(to_us(self.clock.now())).strftime("%Y%m%dT%H%M%SZ")
            return self.archive_dir / f"audit_{first:012d}-{last:012d}_{stamp}.jsonl"
        archive = self.archive_dir / name
        if archive.exists():
            raise AlreadyExists(f"archive {archive} already exists", field="archive_path")
        return archive

    async def _delete(
        self, before_us: int, seqs: tuple[int, int], exported: ExportResult
    ) -> tuple[int, Checkpoint]:
        """Sign the last archived event, delete the run ``seqs`` and record the purge, in one
        transaction; refused if the last event changed since it was archived."""
        first, last = seqs
        async with self.ledger.lock:
            async with self.db.change() as ch:
                last_hash = await store.hash_at(ch.conn, last)
                if last_hash is None or last_hash != exported.seal["last_hash"]:
                    raise DataLoss(f"event {last} changed while it was being archived")
                cp = self.ledger.sign(last, last_hash, "purge")
                await self.ledger.insert(ch.conn, cp)
                deleted = await store.delete_through(ch.conn, last)
                ch.record(
                    EventType.AUDIT_PURGED,
                    resource_type="audit_trail",
                    resource_id="audit",
                    action="purge",
                    severity=EventSeverity.WARNING,
                    details={"before_us": before_us, "before": from_us(before_us).isoformat(),
                             "purged_count": deleted, "first_seq": first, "last_seq": last,
                             "last_hash": last_hash, "archive": exported.path,
                             "archive_seal_signature": exported.seal["signature"]},
                )
            self.ledger.append_to_files(cp)
        return deleted, cp


def _check_archive_name(name: str | None) -> None:
    """A remote caller names a file; it cannot write elsewhere on the server, nor name a
    file the file system refuses (which would fail after the work, as UNKNOWN)."""
    if name is None:
        return
    why = ""
    if not name or Path(name).name != name or name.startswith("."):
        why = "must be a file name; archives are kept in <data_dir>/audit/archive/"
    elif any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        why = "must not contain control characters (NUL included)"
    else:
        try:
            size = len(name.encode("utf-8"))
        except UnicodeEncodeError:
            size = -1
        if size < 0:
            why = "is not valid Unicode text"
        elif size > MAX_ARCHIVE_NAME:
            why = f"is longer than {MAX_ARCHIVE_NAME} bytes"
    if why:
        raise InvalidArgument(f"archive_path {why}", field="archive_path")
