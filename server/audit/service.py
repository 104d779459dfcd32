"""The audit domain: explicit events, queries, compliance reports, exports, retention,
signed checkpoints and chain verification. Transport-free; the servicer and the embedded
client both call this.

:class:`AuditService` is the domain's one entry point, composed of one part per concept:

* :mod:`~neural.mlops.server.audit.eventlog`: explicit events and queries;
* :mod:`~neural.mlops.server.audit.checkpoints` and
  :mod:`~neural.mlops.server.audit.notary`: signed checkpoints of the chain head, the
  periodic checkpoint loop and key rotation (:mod:`~neural.mlops.server.audit.signing`);
* :mod:`~neural.mlops.server.audit.anchor`: the checkpoint files, the operator's anchor
  outside the store and pinned hashes;
* :mod:`~neural.mlops.server.audit.verification`: verifying the stored chain;
* :mod:`~neural.mlops.server.audit.integrity`: the check when the store opens, refusing
  writes on a broken chain until an operator acknowledges it;
* :mod:`~neural.mlops.server.audit.exporter`: sealed exports;
* :mod:`~neural.mlops.server.audit.retention`: purging old events into an archive;
* :mod:`~neural.mlops.server.audit.compliance`: compliance reports;
* :mod:`~neural.mlops.server.audit.store`: the domain's SQL.

Automatic events need nothing from here: every ``db.change()`` appends its records to the
chain in the same transaction (:mod:`neural.mlops.server.audit.hashchain`).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from neural.mlops.server.audit.anchor import CheckpointFile, anchor_file
from neural.mlops.server.audit.checkpoints import Checkpoint, CheckpointLedger
from neural.mlops.server.audit.compliance import ComplianceReporter
from neural.mlops.server.audit.config import AuditConfig
from neural.mlops.server.audit.eventlog import EventLog
from neural.mlops.server.audit.events import (
    AuditEvent,
    EventInput,
    EventPage,
    EventQuery,
    LoggedBatch,
)
from neural.mlops.server.audit.exporter import Exporter, ExportResult
from neural.mlops.server.audit.integrity import Integrity
from neural.mlops.server.audit.notary import KeyRotation, Notary, rotation_message
from neural.mlops.server.audit.report import ComplianceReport, ReportInfo
from neural.mlops.server.audit.retention import PurgeResult, Retention
from neural.mlops.server.audit.signing import Keyring, SigningKey
from neural.mlops.server.audit.verification import ChainVerifier
from neural.mlops.server.audit.verify import ChainVerification
from neural.mlops.server.clock import Clock, SystemClock
from neural.mlops.server.storage import Database

# The service's argument and result types, importable from here with the service.
__all__ = [
    "AuditService",
    "Checkpoint",
    "EventInput",
    "EventPage",
    "EventQuery",
    "ExportResult",
    "KeyRotation",
    "LoggedBatch",
    "PurgeResult",
    "ReportInfo",
    "rotation_message",
]


class AuditService:
    def __init__(
        self,
        db: Database,
        data_dir: Path,
        *,
        clock: Clock | None = None,
        key_path: Path | None = None,
        checkpoint_interval: float | None = None,
        anchor: str | os.PathLike[str] | None = None,
    ) -> None:
        """``anchor``: a file or folder outside the store that receives a copy of every
        checkpoint (:mod:`~neural.mlops.server.audit.anchor`)."""
        self.db = db
        self.clock: Clock = clock or SystemClock()
        self.data_dir = Path(data_dir)
        config = AuditConfig.load(
            self.data_dir, key_path=key_path, checkpoint_interval=checkpoint_interval
        )
        audit_dir = self.data_dir / "audit"
        audit_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.keys = Keyring(config.key_path)
        self.events = EventLog(db)
        files = [CheckpointFile(audit_dir / "checkpoints.jsonl", "store's checkpoints.jsonl")]
        if anchor:
            files.append(anchor_file(anchor))
        ledger = CheckpointLedger(db, self.clock, self.keys, files)
        self.ledger = ledger
        self.verifier = ChainVerifier(db, ledger, config.checkpoint_interval)
        self.notary = Notary(db, ledger, self.verifier, config.checkpoint_interval)
        self.integrity = Integrity(db, ledger, self.verifier, self.notary)
        self.exporter = Exporter(db, self.clock, self.keys, self.notary)
        self.retention = Retention(db, self.clock, audit_dir / "archive", ledger=ledger,
                                   verifier=self.verifier, exporter=self.exporter)
        self.reports = ComplianceReporter(db, self.clock, self.verifier)

    @property
    def key(self) -> SigningKey:
        """The key that signs now, as this process last saw it (see :meth:`current_key`)."""
        return self.keys.key

    @property
    def checkpoint_interval(self) -> float:
        """Seconds between periodic checkpoints (<= 0: none); set it before :meth:`start`."""
        return self.notary.interval

    @checkpoint_interval.setter
    def checkpoint_interval(self, seconds: float) -> None:
        self.notary.interval = seconds
        self.verifier.interval = seconds  # the coverage rule assumes the same cadence

    # --- lifecycle ------------------------------------------------------------------

    async def check_at_open(self, acknowledge: int | None = None) -> ChainVerification:
        """The bounded chain check made when the store opens; a broken chain refuses every
        change unless ``acknowledge`` names the seq where it breaks
        (:mod:`~neural.mlops.server.audit.integrity`)."""
        return await self.integrity.check_at_open(acknowledge)

    async def acknowledge_broken_chain(self, seq: int, reason: str = "") -> Checkpoint:
        """Accept the break at ``seq`` as an audited, signed acknowledgement and accept
        writes again."""
        return await self.integrity.acknowledge(seq, reason)

    async def start(self) -> None:
        """Start the periodic checkpoint loop (the server calls this)."""
        self.notary.start()

    async def close(self) -> None:
        """Stop the loop and sign the chain head a last time."""
        await self.notary.close()

    # --- events -----------------------------------------------------------------------

    async def log_events(self, items: Sequence[EventInput]) -> list[AuditEvent]:
        """Append explicit events, all in one transaction (all or none)."""
        return await self.events.log_events(items)

    async def log_batch(self, items: Sequence[EventInput]) -> LoggedBatch:
        """:meth:`log_events` for bulk ingest: returns only what was stored where."""
        return await self.events.log_batch(items)

    async def log_event(self, item: EventInput) -> AuditEvent:
        return (await self.events.log_events([item]))[0]

    async def query_events(self, q: EventQuery) -> EventPage:
        """Events matching every filter of ``q``, newest first, one page."""
        return await self.events.query(q)

    async def head(self) -> tuple[int, str]:
        """(seq, hash) of the chain head."""
        return await self.verifier.head()

    # --- checkpoints and keys -----------------------------------------------------------

    async def checkpoint(self, kind: str = "manual") -> Checkpoint | None:
        """Sign the current chain head after verifying the chain (periodic and shutdown:
        the events since the newest checkpoint; the other kinds: all of it, as
        :meth:`verify_chain`); a chain that does not verify raises ``ChainBroken``
        (FAILED_PRECONDITION) and nothing is signed. Periodic and shutdown checkpoints are
        skipped when nothing was appended since the last one."""
        return await self.notary.checkpoint(kind)

    async def list_checkpoints(self) -> list[Checkpoint]:
        return await self.ledger.checkpoints()

    def current_key(self) -> SigningKey:
        """The key that signs now (re-read if another process rotated it)."""
        self.keys.refresh()
        return self.keys.key

    async def public_key(self) -> SigningKey:
        """:meth:`current_key` as a call (its ``key_id`` and ``public_pem``), the form the
        Python API's remote adapter also has."""
        return self.current_key()

    async def rotate_key(self, reason: str = "") -> KeyRotation:
        """Replace the checkpoint key; the old one endorses it and its checkpoints still
        verify (:meth:`Notary.rotate_key`)."""
        return await self.notary.rotate_key(reason)

    # --- verification, export, retention ----------------------------------------------

    async def verify_chain(self, pins: Mapping[int, str] | None = None) -> ChainVerification:
        """Verify the whole stored chain against itself, its head record, every signed
        checkpoint (database, file, anchor), the ``pins`` ({seq: hash}) and the coverage
        rule. Returns the first bad event and the reason."""
        return await self.verifier.verify_chain(pins)

    def export_stream(
        self,
        fmt: str,
        start_us: int | None = None,
        end_us: int | None = None,
        *,
        destination: str = "",
        seq_range: tuple[int, int] | None = None,
        record: bool = True,
    ) -> AsyncIterator[dict[str, Any] | bytes]:
        """Yield the seal (a dict), then the bytes of the export file, page by page; when
        complete an ``audit_exported`` event records who exported what, to where."""
        return self.exporter.stream(fmt, start_us, end_us, destination=destination,
                                    seq_range=seq_range, record=record)

    async def export_to_file(
        self, path: str | os.PathLike[str], fmt: str, start_us: int | None = None,
        end_us: int | None = None, *, seq_range: tuple[int, int] | None = None,
        record: bool = True,
    ) -> ExportResult:
        """Write an export file where this process runs (temporary file, then rename)."""
        return await self.exporter.to_file(path, fmt, start_us, end_us, seq_range=seq_range,
                                           record=record)

    async def purge(self, before_us: int, archive_path: str | None = None) -> PurgeResult:
        """Delete the events older than ``before_us`` after archiving them to a sealed
        export, leaving a signed checkpoint that anchors the rest of the chain."""
        return await self.retention.purge(before_us, archive_path)

    # --- compliance reports -------------------------------------------------------------

    async def generate_compliance_report(self, start_us: int, end_us: int) -> ComplianceReport:
        return await self.reports.generate(start_us, end_us)

    async def get_report(self, report_id: str) -> ComplianceReport:
        return await self.reports.load(report_id)

    async def list_reports(self, limit: int = 100,
                           after: tuple[int, str] | None = None) -> list[ReportInfo]:
        """The newest saved reports (``to_dict()`` gives the listing's JSON form), newest
        first; ``after`` is the (created_us, report_id) key the previous page ended on."""
        return await self.reports.saved(limit, after)
