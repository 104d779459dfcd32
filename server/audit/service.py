"""The audit domain: explicit events, queries, compliance reports, exports, retention,
signed checkpoints and chain verification. Transport-free; the servicer and the embedded
client both call this.

Automatic events need nothing from here: every ``db.change()`` appends its records to the
chain in the same transaction (:mod:`neural.mlops.server.audit.hashchain`).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import json
import os
import statistics
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from neural.mlops.server import validation as v
from neural.mlops.server.audit.events import (
    AuditEvent,
    AuditRecord,
    EventSeverity,
    EventType,
    known_severity,
    known_type,
    parse_event_type,
    parse_severity,
)
from neural.mlops.server.audit.export import (
    AtomicOutput,
    ExportRenderer,
    parse_format,
    seal_message,
)
from neural.mlops.server.audit.hashchain import EVENT_FIELDS, GENESIS, canonical_json
from neural.mlops.server.audit.report import ComplianceReport, event_summary
from neural.mlops.server.audit.signing import (
    SigningKey,
    default_key_path,
    load_retired,
    verify_signature,
)
from neural.mlops.server.audit.verify import ChainChecker, ChainVerification
from neural.mlops.server.clock import Clock, SystemClock, from_us, to_us
from neural.mlops.server.errors import (
    AlreadyExists,
    DataLoss,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
)
from neural.mlops.server.identity import current_call
from neural.mlops.server.storage import Database
from neural.mlops.server.storage.schema import (
    audit_chain_head,
    audit_checkpoints,
    audit_events,
    audit_reports,
)

log = structlog.get_logger(__name__)

CHECKPOINT_CONTEXT = b"neural-mlops-audit-checkpoint-v1\n"
CHECKPOINT_ENV = "NEURAL_MLOPS_AUDIT_CHECKPOINT_SECONDS"
DEFAULT_CHECKPOINT_SECONDS = 60.0
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 10_000
MAX_BATCH = 100_000
MAX_DETAILS_BYTES = 64 * 1024
READ_PAGE = 5_000
REPORT_LIST_LIMIT = 1000
_COLS = [audit_events.c[name] for name in EVENT_FIELDS]
_LIMITS = {"resource_type": 64, "resource_id": 300, "action": 128, "user": 320}

PRODUCTION = "production"
APPROVAL_TYPES = (EventType.PROMOTION_APPROVED, EventType.APPROVAL_GRANTED)
DECISION_TYPES = (EventType.PROMOTION_APPROVED, EventType.PROMOTION_REJECTED, EventType.APPROVAL_GRANTED)
DEPLOYMENT_TYPES = (EventType.MODEL_DEPLOYED, EventType.DEPLOYMENT_CREATED, EventType.DEPLOYMENT_PROMOTED)
PRODUCTION_CHANGE_TYPES = (
    EventType.MODEL_STAGE_CHANGED,
    EventType.MODEL_DEPLOYED,
    EventType.DEPLOYMENT_PROMOTED,
)


@dataclass(slots=True)
class EventInput:
    """One explicit event to log (the generic ``log_event`` and the batch form)."""

    event_type: EventType | str
    resource_type: str = ""
    resource_id: str = ""
    action: str = ""
    details: dict[str, Any] | None = None
    severity: EventSeverity | str = EventSeverity.INFO
    user: str | None = None


@dataclass(slots=True)
class LoggedBatch:
    """What a batch append stored: seqs ``first_seq..last_seq`` in one transaction."""

    first_seq: int
    last_seq: int
    event_ids: list[str]
    last_hash: str

    def __len__(self) -> int:
        return len(self.event_ids)


@dataclass(slots=True)
class EventQuery:
    """Filters of a query; every given filter must match. Results are newest first."""

    event_types: Sequence[EventType | str] = ()
    severities: Sequence[EventSeverity | str] = ()
    min_severity: EventSeverity | str | None = None
    user: str = ""
    resource_type: str = ""
    resource_id: str = ""
    start_us: int | None = None
    end_us: int | None = None
    text: str = ""
    page_size: int = 0
    page_token: str = ""


@dataclass(slots=True)
class EventPage:
    events: list[AuditEvent]
    next_page_token: str = ""


@dataclass(slots=True)
class Checkpoint:
    """A signed statement that event ``seq`` of the chain had hash ``hash``."""

    seq: int
    hash: str
    created_us: int
    kind: str
    key_id: str
    signature: str

    @property
    def created_at(self) -> Any:
        return from_us(self.created_us)

    def message(self) -> bytes:
        body = {"seq": self.seq, "hash": self.hash, "created_us": self.created_us,
                "kind": self.kind, "key_id": self.key_id}
        return CHECKPOINT_CONTEXT + canonical_json(body).encode()


@dataclass(slots=True)
class ExportResult:
    path: str
    format: str
    count: int
    first_seq: int
    last_seq: int
    bytes_written: int
    seal: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class KeyRotation:
    old_key_id: str
    new_key_id: str
    public_key_pem: str  # the new key's
    endorsement: str  # the old key's signature of rotation_message(...)
    checkpoint: Checkpoint | None  # the new key's first, over the head with the rotation event


def _stat(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns


def rotation_message(old_key_id: str, new_key_id: str, new_public_pem: str) -> bytes:
    """What the old key signs to endorse its successor."""
    return f"neural-mlops audit key rotation {old_key_id} -> {new_key_id}\n{new_public_pem}".encode()


@dataclass(slots=True)
class PurgeResult:
    purged_count: int
    first_seq: int
    last_seq: int
    before_us: int
    archive_path: str
    checkpoint: Checkpoint | None


def _check_range(start_us: int | None, end_us: int | None) -> None:
    if start_us is not None and end_us is not None and end_us < start_us:
        raise InvalidArgument(
            f"end_date ({from_us(end_us).isoformat()}) is before start_date "
            f"({from_us(start_us).isoformat()})",
            field="end_date",
        )


def _row_dict(row: Sequence[Any]) -> dict[str, Any]:
    return dict(zip(EVENT_FIELDS, row, strict=True))


_PAGE_SQL = (
    f"SELECT {', '.join(EVENT_FIELDS)} FROM audit_events WHERE seq > ? AND seq <= ? "
    "ORDER BY seq LIMIT ?"
)


async def _pages(conn: AsyncConnection, after: int, last: int | None) -> AsyncIterator[Sequence[Any]]:
    """Stored rows (EVENT_FIELDS order) with ``after < seq <= last``, by seq, a page at a
    time, inside the caller's read transaction. The next page is read while the caller
    works on the current one. On SQLite the rows come straight from the driver (plain
    tuples, twice as fast as SQLAlchemy rows); elsewhere through SQLAlchemy Core."""
    c = audit_events.c
    upper = last if last is not None else 2**62
    driver = None
    if conn.dialect.name == "sqlite":
        raw = await conn.get_raw_connection()
        driver = getattr(raw, "driver_connection", None)

    async def fetch(start: int) -> Sequence[Any]:
        if driver is not None:
            async with driver.execute(_PAGE_SQL, (start, upper, READ_PAGE)) as cur:
                return list(await cur.fetchall())
        return (await conn.execute(
            sa.select(*_COLS).where(c.seq > start, c.seq <= upper)
            .order_by(c.seq).limit(READ_PAGE))).all()

    pending: asyncio.Future[Sequence[Any]] | None = asyncio.ensure_future(fetch(after))
    try:
        while pending is not None:
            rows = await pending
            pending = None
            if not rows:
                return
            if len(rows) == READ_PAGE and rows[-1][0] < upper:
                pending = asyncio.ensure_future(fetch(rows[-1][0]))
            yield rows
    finally:
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending


def row_to_event(row: dict[str, Any]) -> AuditEvent:
    details = row["details"]
    return AuditEvent(
        event_id=row["event_id"],
        seq=row["seq"],
        timestamp=from_us(row["ts_us"]),
        event_type=known_type(row["event_type"]),
        severity=known_severity(row["severity"]),
        actor=row["actor"],
        resource_type=row["resource_type"],
        resource_id=row["resource_id"],
        action=row["action"],
        details=json.loads(details) if isinstance(details, str) else dict(details),
        request_id=row["request_id"],
        peer=row["peer"],
        prev_hash=row["prev_hash"],
        hash=row["hash"],
    )


def _model_key(row: dict[str, Any], details: dict[str, Any]) -> str:
    """``name:version`` of the model an event concerns."""
    name = details.get("model_name") or details.get("name")
    version = details.get("version")
    if name and version:
        return f"{name}:{version}"
    return str(row["resource_id"])


class AuditService:
    def __init__(
        self,
        db: Database,
        data_dir: Path,
        *,
        clock: Clock | None = None,
        key_path: Path | None = None,
        checkpoint_interval: float | None = None,
    ) -> None:
        self.db = db
        self.clock: Clock = clock or SystemClock()
        self.data_dir = Path(data_dir)
        self.key = SigningKey.load_or_create(key_path or default_key_path(self.data_dir))
        self.retired = load_retired(self.key.path)  # rotated-out keys' public halves
        self._key_stat = _stat(self.key.path)
        self.audit_dir = self.data_dir / "audit"
        self.audit_dir.mkdir(parents=True, exist_ok=True)
        self.checkpoint_log = self.audit_dir / "checkpoints.jsonl"
        self.archive_dir = self.audit_dir / "archive"
        env = os.environ.get(CHECKPOINT_ENV)
        self.checkpoint_interval = (
            checkpoint_interval if checkpoint_interval is not None
            else float(env) if env else DEFAULT_CHECKPOINT_SECONDS
        )
        self._checkpoint_lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    # --- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        """Start the periodic checkpoint loop (the server calls this)."""
        if self._task is None and self.checkpoint_interval > 0:
            self._task = asyncio.create_task(self._checkpoint_loop(), name="audit-checkpoints")

    async def _checkpoint_loop(self) -> None:
        while True:
            await asyncio.sleep(self.checkpoint_interval)
            try:
                await self.checkpoint("periodic")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 (the loop must survive; the error is logged)
                log.error("audit checkpoint failed", error=str(exc))

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):
            await self.checkpoint("shutdown")

    # --- explicit events --------------------------------------------------------------

    def _record(self, item: EventInput, authenticated: bool, principal: str) -> AuditRecord:
        etype = parse_event_type(item.event_type)
        severity = parse_severity(item.severity)
        for name in ("resource_type", "resource_id", "action", "user"):
            value = getattr(item, name) or ""
            if not isinstance(value, str):
                raise InvalidArgument(f"{name} must be a string", field=name)
            if len(value) > _LIMITS[name]:
                raise InvalidArgument(f"{name} is longer than {_LIMITS[name]} characters", field=name)
        details = item.details if item.details is not None else {}
        if not isinstance(details, dict):
            raise InvalidArgument("details must be a mapping of JSON values", field="details")
        try:
            text = canonical_json(details)
        except (TypeError, ValueError) as exc:
            raise InvalidArgument(f"details are not JSON-serialisable: {exc}", field="details") from None
        if len(text) > MAX_DETAILS_BYTES // 4 and len(text.encode()) > MAX_DETAILS_BYTES:
            raise InvalidArgument(f"details exceed {MAX_DETAILS_BYTES} bytes", field="details")
        actor = item.user or principal
        if authenticated:
            # The authenticated principal is the actor; the claimed user stays as a detail.
            actor = principal
            if item.user and item.user != principal:
                details = {**details, "claimed_user": item.user}
                text = canonical_json(details)
        return AuditRecord(
            event_type=etype,
            resource_type=item.resource_type or "",
            resource_id=item.resource_id or "",
            action=item.action or str(etype),
            details=details,
            severity=severity,
            actor=actor,
            details_text=text,
        )

    async def _append(self, items: Sequence[EventInput]) -> list[dict[str, Any]]:
        if not items:
            raise InvalidArgument("no events to log", field="events")
        if len(items) > MAX_BATCH:
            raise InvalidArgument(f"at most {MAX_BATCH} events per batch", field="events")
        ctx = current_call()
        records = [self._record(i, ctx.authenticated, ctx.actor) for i in items]
        async with self.db.change() as ch:
            ch.records.extend(records)
        return ch.events

    async def log_events(self, items: Sequence[EventInput]) -> list[AuditEvent]:
        """Append explicit events, all in one transaction (all or none)."""
        return [row_to_event(r) for r in await self._append(items)]

    async def log_batch(self, items: Sequence[EventInput]) -> LoggedBatch:
        """:meth:`log_events` for bulk ingest: returns only what was stored where."""
        rows = await self._append(items)
        return LoggedBatch(rows[0]["seq"], rows[-1]["seq"], [r["event_id"] for r in rows], rows[-1]["hash"])

    async def log_event(self, item: EventInput) -> AuditEvent:
        return (await self.log_events([item]))[0]

    # --- queries ------------------------------------------------------------------------

    async def query_events(self, q: EventQuery) -> EventPage:
        _check_range(q.start_us, q.end_us)
        size = q.page_size or DEFAULT_PAGE_SIZE
        if not 0 < size <= MAX_PAGE_SIZE:
            raise InvalidArgument(f"page_size must be 1..{MAX_PAGE_SIZE}", field="page_size")
        c = audit_events.c
        where: list[Any] = []
        types = sorted({str(parse_event_type(t)) for t in q.event_types})
        sevs = {parse_severity(s) for s in q.severities}
        if q.min_severity:
            floor = parse_severity(q.min_severity, field="min_severity")
            allowed = {s for s in EventSeverity if s.rank >= floor.rank}
            sevs = (sevs & allowed) if sevs else allowed
            if not sevs:
                return EventPage([])
        if sevs and len(sevs) < len(EventSeverity):
            where.append(c.severity.in_(sorted(str(s) for s in sevs)))
        if q.user:
            where.append(c.actor == q.user)
        if q.resource_type:
            where.append(c.resource_type == q.resource_type)
        if q.resource_id:
            where.append(c.resource_id == q.resource_id)
        if q.start_us is not None:
            where.append(c.ts_us >= q.start_us)
        if q.end_us is not None:
            where.append(c.ts_us <= q.end_us)
        if q.text:
            where.append(c.details.icontains(q.text, autoescape=True))
        if q.page_token:
            try:
                ts_s, seq_s = q.page_token.split(".", 1)
                where.append(sa.tuple_(c.ts_us, c.seq) < sa.tuple_(int(ts_s), int(seq_s)))
            except ValueError:
                raise InvalidArgument("page_token is not one this server issued", field="page_token") from None
        def page(*extra: Any) -> Any:
            return (sa.select(*_COLS).where(*where, *extra)
                    .order_by(c.ts_us.desc(), c.seq.desc()).limit(size + 1))

        async with self.db.read() as conn:
            if len(types) <= 1:
                stmt = page(c.event_type == types[0]) if types else page()
                rows = list((await conn.execute(stmt)).all())
            else:
                # One index-ordered read per type, merged: an IN list would sort every match.
                parts = [(await conn.execute(page(c.event_type == t))).all() for t in types]
                rows = list(heapq.merge(*parts, key=lambda r: (r[2], r[0]), reverse=True))[: size + 1]
        token = ""
        if len(rows) > size:
            rows = rows[:size]
            token = f"{rows[-1][2]}.{rows[-1][0]}"
        return EventPage([row_to_event(_row_dict(r)) for r in rows], token)

    async def head(self) -> tuple[int, str]:
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(audit_chain_head.c.seq, audit_chain_head.c.hash))).one()
        return int(row.seq), str(row.hash)

    # --- checkpoints --------------------------------------------------------------------

    def _sign(self, seq: int, hash_: str, kind: str) -> Checkpoint:
        cp = Checkpoint(seq, hash_, to_us(self.clock.now()), kind, self.key.key_id, "")
        cp.signature = self.key.sign(cp.message())
        return cp

    def _append_checkpoint_file(self, cp: Checkpoint) -> None:
        # After the database commit: a crash in between leaves a checkpoint only in the
        # database, which verification accepts; the reverse would look like tampering.
        line = (canonical_json(asdict(cp)) + "\n").encode()
        fd = os.open(self.checkpoint_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    async def _insert_checkpoint(self, conn: AsyncConnection, cp: Checkpoint) -> None:
        await conn.execute(audit_checkpoints.insert().values(
            seq=cp.seq, hash=cp.hash, created_us=cp.created_us, kind=cp.kind,
            key_id=cp.key_id, signature=cp.signature))

    async def _load_checkpoints(self) -> tuple[list[Checkpoint], list[str]]:
        """Checkpoints from the database and the file outside it, with any problem found:
        a bad signature, an unknown key, or one in the file that the database lost."""
        self._refresh_keys()
        async with self.db.read() as conn:
            rows = (await conn.execute(sa.select(audit_checkpoints).order_by(audit_checkpoints.c.id))).all()
        db_cps = [Checkpoint(r.seq, r.hash, r.created_us, r.kind, r.key_id, r.signature) for r in rows]
        problems: list[str] = []
        file_cps: list[Checkpoint] = []
        if self.checkpoint_log.exists():
            with open(self.checkpoint_log, encoding="utf-8") as fh:
                for n, line in enumerate(fh, 1):
                    if not line.strip():
                        continue
                    try:
                        file_cps.append(Checkpoint(**json.loads(line)))
                    except (ValueError, TypeError):
                        problems.append(f"{self.checkpoint_log} line {n} is not a checkpoint")
        for source, cps in (("database", db_cps), (str(self.checkpoint_log), file_cps)):
            for cp in cps:
                pub = self.key.public if cp.key_id == self.key.key_id else self.retired.get(cp.key_id)
                if pub is None:
                    problems.append(f"checkpoint at seq {cp.seq} ({source}) is signed by unknown key {cp.key_id}")
                elif not verify_signature(pub, cp.message(), cp.signature):
                    problems.append(f"checkpoint at seq {cp.seq} ({source}) has an invalid signature (altered or forged)")
        in_db = {cp.signature for cp in db_cps}
        for cp in file_cps:
            if cp.signature not in in_db:
                problems.append(
                    f"signed checkpoint at seq {cp.seq} in {self.checkpoint_log.name} is missing "
                    "from the database (checkpoints deleted)"
                )
        by_sig = {cp.signature: cp for cp in [*db_cps, *file_cps]}
        return sorted(by_sig.values(), key=lambda cp: (cp.seq, cp.created_us)), problems

    async def checkpoint(self, kind: str = "manual") -> Checkpoint | None:
        """Sign the current chain head after verifying the events since the last checkpoint.
        Periodic and shutdown checkpoints are skipped when nothing was appended since the
        last one."""
        async with self._checkpoint_lock:
            checkpoints, problems = await self._load_checkpoints()
            if problems:
                raise DataLoss(f"refusing to sign the audit chain: {problems[0]}")
            base = checkpoints[-1] if checkpoints else None
            head_seq, head_hash = await self.head()
            routine = kind in ("periodic", "shutdown")
            if routine and (head_seq == 0 or (base is not None and (base.seq, base.hash) == (head_seq, head_hash))):
                return None  # nothing appended since the last signature
            result = await self._verify_range(
                base.seq if base else 0, base.hash if base else GENESIS, {}, head_seq
            )
            if result.valid and base is not None:
                # The signed base itself must still be there, unchanged.
                async with self.db.read() as conn:
                    at_base = (await conn.execute(sa.select(audit_events.c.hash).where(
                        audit_events.c.seq == base.seq))).scalar()
                if at_base is not None and at_base != base.hash:
                    result.valid, result.first_bad_seq = False, base.seq
                    result.reason = "hash differs from the signed checkpoint (chain rewritten)"
            if result.valid and (result.last_hash if result.events_checked else (base.hash if base else GENESIS)) != head_hash:
                result.valid, result.first_bad_seq = False, head_seq
                result.reason = "the recorded chain head does not match the last event"
            if not result.valid:
                raise DataLoss(
                    f"refusing to sign the audit chain: seq {result.first_bad_seq}: {result.reason}"
                )
            cp = self._sign(head_seq, head_hash, kind)
            async with self.db.change(audited=False) as ch:
                await self._insert_checkpoint(ch.conn, cp)
            self._append_checkpoint_file(cp)
            log.info("audit checkpoint", seq=cp.seq, kind=kind, key_id=cp.key_id)
            return cp

    async def list_checkpoints(self) -> list[Checkpoint]:
        return (await self._load_checkpoints())[0]

    def current_key(self) -> SigningKey:
        """The key that signs now (re-read if another process rotated it)."""
        self._refresh_keys()
        return self.key

    def _refresh_keys(self) -> None:
        """Another process on this store (a second embedded user, the control plane) may
        have rotated the key: take the key file's current key, and re-read ``retired/``
        (a deleted retired key must show up as unknown)."""
        now = _stat(self.key.path)
        if now != self._key_stat:
            self.key = SigningKey.load_or_create(self.key.path)
            self._key_stat = _stat(self.key.path)
        self.retired = load_retired(self.key.path)

    async def rotate_key(self, reason: str = "") -> KeyRotation:
        """Replace the checkpoint key. The old key first signs the chain head (refused, like
        any checkpoint, if the chain does not verify) and endorses the new public key; the
        rotation is an audit event; the new key then signs the head that includes it. The
        old public key stays in ``retired/`` beside the key file, so its checkpoints still
        verify."""
        reason = v.text(reason, "reason", limit=4096)
        await self.checkpoint("rotation")
        async with self._checkpoint_lock:
            old = self.key
            new = old.rotate()
            self._key_stat = _stat(new.path)
            endorsement = old.sign(rotation_message(old.key_id, new.key_id, new.public_pem))
            self.retired[old.key_id] = old.public
            self.key = new
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

    # --- verification -------------------------------------------------------------------

    async def _verify_range(
        self, base_seq: int, base_hash: str, signed: dict[int, str], upto: int | None
    ) -> ChainVerification:
        checker = ChainChecker(base_seq=base_seq, base_hash=base_hash, checkpoints=signed)
        async with self.db.read() as conn:
            async for rows in _pages(conn, base_seq, upto):
                for r in rows:
                    if not checker.feed(_row_dict(r)):
                        return checker.result(key_id=self.key.key_id)
        return checker.result(key_id=self.key.key_id)

    async def verify_chain(self) -> ChainVerification:
        """Verify the whole stored chain against itself, its head record and every signed
        checkpoint. Returns the first bad event and the reason."""
        checkpoints, problems = await self._load_checkpoints()
        if problems:
            return ChainVerification(valid=False, reason=problems[0], signature_valid=False,
                                     key_id=self.key.key_id)
        purges = [cp for cp in checkpoints if cp.kind == "purge"]
        anchor = max(purges, key=lambda cp: cp.seq) if purges else None
        base_seq, base_hash = (anchor.seq, anchor.hash) if anchor else (0, GENESIS)
        signed: dict[int, str] = {}
        for cp in checkpoints:
            if cp.seq > base_seq:
                if signed.get(cp.seq, cp.hash) != cp.hash:
                    return ChainVerification(
                        valid=False, first_bad_seq=cp.seq, key_id=self.key.key_id,
                        reason=f"two signed checkpoints disagree about seq {cp.seq}")
                signed[cp.seq] = cp.hash
        # The head is read before the events: anything appended meanwhile is beyond it.
        head_seq, head_hash = await self.head()
        result = await self._verify_range(base_seq, base_hash, signed, head_seq)
        result.signature_valid = True if checkpoints else None
        if result.valid:
            if result.checkpoints_checked < len(signed):
                missing = min(s for s in signed if s > (result.last_seq or base_seq))
                result.valid = False
                result.first_bad_seq = missing
                result.reason = (f"signed checkpoint at seq {missing} is beyond the last event "
                                 f"({result.last_seq or base_seq}): events were deleted")
            elif (result.last_seq or base_seq) != head_seq:
                last = result.last_seq or base_seq
                result.valid = False
                result.first_bad_seq = last + 1
                result.reason = (f"the chain ends at seq {last} but the recorded head is "
                                 f"{head_seq}: events {last + 1}..{head_seq} were deleted")
            elif (result.last_hash if result.events_checked else base_hash) != head_hash:
                result.valid = False
                result.first_bad_seq = head_seq
                result.reason = "the last event's hash differs from the recorded chain head"
        if result.valid:
            result.notes.append(
                f"{len(signed)} signed checkpoint(s) matched; events after seq "
                f"{max(signed, default=base_seq)} are protected by the hash chain only until "
                "the next checkpoint"
            )
        return result

    # --- export ---------------------------------------------------------------------------

    async def _seq_range(
        self, conn: AsyncConnection, start_us: int | None, end_us: int | None
    ) -> tuple[int, int]:
        # Through the (ts_us, seq) index: min(seq) WHERE ts_us >= x would walk the primary
        # key from the oldest event.
        c = audit_events.c
        first_q = sa.select(c.seq).order_by(c.ts_us, c.seq).limit(1)
        last_q = sa.select(c.seq).order_by(c.ts_us.desc(), c.seq.desc()).limit(1)
        if start_us is not None:
            first_q = first_q.where(c.ts_us >= start_us)
        if end_us is not None:
            last_q = last_q.where(c.ts_us <= end_us)
        first = (await conn.execute(first_q)).scalar()
        last = (await conn.execute(last_q)).scalar()
        if first is None or last is None or first > last:
            return 0, 0
        return int(first), int(last)

    async def export_stream(
        self,
        fmt: str,
        start_us: int | None = None,
        end_us: int | None = None,
        *,
        destination: str = "",
        seq_range: tuple[int, int] | None = None,
        record: bool = True,
    ) -> AsyncIterator[dict[str, Any] | bytes]:
        """Yield the seal (a dict), then the bytes of the export file, page by page.

        The exported run and its seal come from one read snapshot. When the stream is
        complete an ``audit_exported`` event records who exported what, to where."""
        fmt = parse_format(fmt)
        _check_range(start_us, end_us)
        chain_ok = True
        try:
            await self.checkpoint("export")
        except DataLoss as exc:
            chain_ok = False
            log.error("exporting an audit chain that does not verify", error=str(exc))
        c = audit_events.c
        async with self.db.read() as conn:
            first, last = seq_range or await self._seq_range(conn, start_us, end_us)
            first_prev = last_hash = ""
            if first:
                first_prev = (await conn.execute(sa.select(c.prev_hash).where(c.seq == first))).scalar_one()
                last_hash = (await conn.execute(sa.select(c.hash).where(c.seq == last))).scalar_one()
            seal: dict[str, Any] = {
                "format": "neural-mlops-audit-export",
                "version": 1,
                "exported_at_us": to_us(self.clock.now()),
                "exported_by": current_call().actor,
                "start_us": start_us,
                "end_us": end_us,
                "first_seq": first,
                "last_seq": last,
                "count": (last - first + 1) if first else 0,
                "first_prev_hash": first_prev,
                "last_hash": last_hash,
                "store_chain_verified": chain_ok,
                "key_id": self.key.key_id,
            }
            seal["signature"] = self.key.sign(seal_message(seal))
            seal["public_key"] = self.key.public_pem
            yield seal
            renderer = ExportRenderer(fmt, seal)
            yield renderer.header()
            if first:
                async for rows in _pages(conn, first - 1, last):
                    yield renderer.rows(rows)
            yield renderer.footer()
        if record:
            async with self.db.change() as ch:
                ch.record(
                    EventType.AUDIT_EXPORTED,
                    resource_type="audit_trail",
                    resource_id="audit",
                    action="export",
                    details={"format": fmt, "count": seal["count"], "first_seq": first,
                             "last_seq": last, "start_us": start_us, "end_us": end_us,
                             "destination": destination},
                )

    async def export_to_file(
        self, path: str | os.PathLike[str], fmt: str, start_us: int | None = None,
        end_us: int | None = None, *, seq_range: tuple[int, int] | None = None,
        record: bool = True,
    ) -> ExportResult:
        """Write an export file where this process runs (temporary file, then rename)."""
        fmt = parse_format(fmt)
        _check_range(start_us, end_us)
        out = AtomicOutput(path)
        seal: dict[str, Any] = {}
        try:
            async for item in self.export_stream(
                fmt, start_us, end_us, destination=str(out.path.resolve()),
                seq_range=seq_range, record=record,
            ):
                if isinstance(item, dict):
                    seal = item
                else:
                    out.write(item)
            final = out.commit()
        except BaseException:
            out.abort()
            raise
        return ExportResult(str(final), fmt, seal["count"], seal["first_seq"], seal["last_seq"],
                            out.bytes_written, seal)

    # --- retention --------------------------------------------------------------------

    async def purge(self, before_us: int, archive_path: str | None = None) -> PurgeResult:
        """Delete the events older than ``before_us`` after archiving them to a sealed
        export, leaving a signed checkpoint that anchors the rest of the chain."""
        if archive_path is not None and (
            not archive_path or Path(archive_path).name != archive_path or archive_path.startswith(".")
        ):
            # A remote caller names a file; it cannot write elsewhere on the server.
            raise InvalidArgument(
                "archive_path must be a file name; archives are kept in <data_dir>/audit/archive/",
                field="archive_path",
            )
        verification = await self.verify_chain()
        if not verification.valid:
            raise FailedPrecondition(
                f"the audit chain does not verify (seq {verification.first_bad_seq}: "
                f"{verification.reason}); refusing to purge evidence"
            )
        c = audit_events.c
        async with self.db.read() as conn:
            first = (await conn.execute(sa.select(sa.func.min(c.seq)))).scalar()
            newer = (await conn.execute(sa.select(c.seq).where(c.ts_us >= before_us)
                                        .order_by(c.ts_us, c.seq).limit(1))).scalar()
            head_seq = (await conn.execute(sa.select(audit_chain_head.c.seq))).scalar_one()
        last = (int(newer) - 1) if newer is not None else int(head_seq)
        if first is None or last < int(first):
            return PurgeResult(0, 0, 0, before_us, "", None)
        first = int(first)
        self.archive_dir.mkdir(parents=True, exist_ok=True)
        if archive_path is None:
            stamp = from_us(to_us(self.clock.now())).strftime("%Y%m%dT%H%M%SZ")
            archive = self.archive_dir / f"audit_{first:012d}-{last:012d}_{stamp}.jsonl"
        else:
            archive = self.archive_dir / archive_path
            if archive.exists():
                raise AlreadyExists(f"archive {archive} already exists", field="archive_path")
        exported = await self.export_to_file(archive, "jsonl", seq_range=(first, last), record=False)
        async with self._checkpoint_lock:
            async with self.db.change() as ch:
                last_hash = (await ch.conn.execute(sa.select(c.hash).where(c.seq == last))).scalar_one()
                if last_hash != exported.seal["last_hash"]:
                    raise DataLoss(f"event {last} changed while it was being archived")
                cp = self._sign(last, last_hash, "purge")
                await self._insert_checkpoint(ch.conn, cp)
                deleted = (await ch.conn.execute(audit_events.delete().where(c.seq <= last))).rowcount
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
            self._append_checkpoint_file(cp)
        log.info("audit purged", before=from_us(before_us).isoformat(), count=deleted, archive=exported.path)
        return PurgeResult(int(deleted), first, last, before_us, exported.path, cp)

    # --- compliance reports -------------------------------------------------------------

    async def generate_compliance_report(self, start_us: int, end_us: int) -> ComplianceReport:
        _check_range(start_us, end_us)
        c = audit_events.c
        in_range = (c.ts_us >= start_us, c.ts_us <= end_us)
        limit = REPORT_LIST_LIMIT
        verification = await self.verify_chain()

        async def select_events(conn: AsyncConnection, types: Sequence[EventType]) -> list[dict[str, Any]]:
            rows = (await conn.execute(
                sa.select(*_COLS).where(c.event_type.in_([str(t) for t in types]), *in_range)
                .order_by(c.seq).limit(limit + 1))).all()
            out = []
            for r in rows:
                d = _row_dict(r)
                d["details"] = json.loads(d["details"])
                out.append(d)
            return out

        async def count(conn: AsyncConnection, types: Sequence[EventType]) -> int:
            return int((await conn.execute(
                sa.select(sa.func.count()).where(c.event_type.in_([str(t) for t in types]), *in_range)
            )).scalar_one())

        async with self.db.read() as conn:
            total = (await conn.execute(sa.select(sa.func.count()).where(*in_range))).scalar_one()
            grouped: dict[str, dict[str, int]] = {}
            for name, col in (("type", c.event_type), ("severity", c.severity), ("user", c.actor)):
                rows = (await conn.execute(
                    sa.select(col, sa.func.count()).where(*in_range).group_by(col))).all()
                grouped[name] = {str(k): int(n) for k, n in rows}
            violations = await select_events(conn, [EventType.SECURITY_VIOLATION])
            violation_count = await count(conn, [EventType.SECURITY_VIOLATION])
            decisions = await select_events(conn, DECISION_TYPES)
            deployments = await select_events(conn, DEPLOYMENT_TYPES)
            deployment_count = await count(conn, DEPLOYMENT_TYPES)
            rollbacks = await select_events(conn, [EventType.DEPLOYMENT_ROLLED_BACK])
            rollback_count = await count(conn, [EventType.DEPLOYMENT_ROLLED_BACK])
            approvals = [await self._decision(conn, d) for d in decisions[:limit]]
            changes = await select_events(conn, PRODUCTION_CHANGE_TYPES)
            unapproved = []
            for ev in changes[:limit]:
                if self._is_production_change(ev) and not await self._approved_before(conn, ev):
                    unapproved.append(event_summary(ev))
        by_user = grouped["user"]
        most_active = max(sorted(by_user), key=lambda u: by_user[u]) if by_user else None
        waits = [a["seconds_to_decision"] for a in approvals if a.get("seconds_to_decision") is not None]
        granted = sum(1 for a in approvals if a["decision"] == "granted")
        now_us = to_us(self.clock.now())
        report = ComplianceReport(
            report_id=f"report_{from_us(now_us).strftime('%Y%m%d_%H%M%S')}_{uuid.uuid4().hex[:6]}",
            generated_at=from_us(now_us),
            generated_by=current_call().actor,
            start_date=from_us(start_us),
            end_date=from_us(end_us),
            total_events=int(total),
            events_by_type=grouped["type"],
            events_by_severity=grouped["severity"],
            events_by_user=by_user,
            security_violations=[event_summary(v) for v in violations[:limit]],
            approvals=approvals,
            deployments=[event_summary(d) for d in deployments[:limit]],
            rollbacks=[event_summary(r) for r in rollbacks[:limit]],
            unapproved_production_changes=unapproved,
            chain_verification=asdict(verification),
            summary={
                "total_events": int(total),
                "most_active_user": most_active,
                "most_active_user_events": by_user.get(most_active, 0) if most_active else 0,
                "unique_users": len(by_user),
                "security_violation_count": violation_count,
                "approvals_granted": granted,
                "approvals_rejected": len(approvals) - granted,
                "mean_seconds_to_decision": statistics.fmean(waits) if waits else None,
                "median_seconds_to_decision": statistics.median(waits) if waits else None,
                "deployment_count": deployment_count,
                "rollback_count": rollback_count,
                "unapproved_production_change_count": len(unapproved),
                "chain_valid": verification.valid,
                "lists_truncated_at": limit,
            },
            list_limit=limit,
        )
        async with self.db.change() as ch:
            await ch.conn.execute(audit_reports.insert().values(
                report_id=report.report_id, created_us=now_us, start_us=start_us, end_us=end_us,
                created_by=report.generated_by, body=canonical_json(report.to_dict())))
            ch.record(
                EventType.COMPLIANCE_REPORT_GENERATED,
                resource_type="compliance_report",
                resource_id=report.report_id,
                action="generate",
                details={"start_us": start_us, "end_us": end_us, "total_events": int(total),
                         "chain_valid": verification.valid},
            )
        return report

    @staticmethod
    def _is_production_change(ev: dict[str, Any]) -> bool:
        d = ev["details"]
        etype = ev["event_type"]
        if etype == EventType.MODEL_STAGE_CHANGED:
            return str(d.get("to_stage", "")).lower() == PRODUCTION
        if etype == EventType.MODEL_DEPLOYED:
            return str(d.get("environment", "")).lower() == PRODUCTION
        return etype == EventType.DEPLOYMENT_PROMOTED

    async def _approved_before(self, conn: AsyncConnection, ev: dict[str, Any]) -> bool:
        """Whether an approval of the same model version precedes this change."""
        c = audit_events.c
        key = _model_key(ev, ev["details"])
        rows = (await conn.execute(
            sa.select(c.details, c.resource_id).where(
                c.event_type.in_([str(t) for t in APPROVAL_TYPES]), c.seq < ev["seq"],
                c.resource_id == key).limit(1))).all()
        if rows:
            return True
        # Explicit log_approval_granted events may name the model in their details only.
        rows = (await conn.execute(
            sa.select(c.details).where(
                c.event_type.in_([str(t) for t in APPROVAL_TYPES]), c.seq < ev["seq"],
                c.details.contains(f'"version":{json.dumps(key.rsplit(":", 1)[-1], ensure_ascii=False)}')))).all()
        for (text,) in rows:
            d = json.loads(text)
            if _model_key({"resource_id": ""}, d) == key:
                return True
        return False

    async def _decision(self, conn: AsyncConnection, ev: dict[str, Any]) -> dict[str, Any]:
        d = ev["details"]
        decision = "rejected" if ev["event_type"] == EventType.PROMOTION_REJECTED else "granted"
        wait = d.get("seconds_to_decision")
        requested_by = d.get("requested_by", "")
        if wait is None:
            c = audit_events.c
            req_id = d.get("request_id")
            stmt = sa.select(c.ts_us, c.actor, c.details).where(
                c.event_type == str(EventType.PROMOTION_REQUESTED), c.seq < ev["seq"],
                c.resource_id == _model_key(ev, d)).order_by(c.seq.desc()).limit(20)
            for ts, actor, text in (await conn.execute(stmt)).all():
                if req_id and json.loads(text).get("request_id") != req_id:
                    continue
                wait = (ev["ts_us"] - ts) / 1e6
                requested_by = requested_by or actor
                break
        return {
            "time": from_us(ev["ts_us"]).isoformat(),
            "decision": decision,
            "event_type": ev["event_type"],
            "resource_id": _model_key(ev, d),
            "actor": ev["actor"],
            "requested_by": requested_by,
            "request_id": d.get("request_id", ""),
            "seconds_to_decision": wait,
            "comment": d.get("comment", ""),
            "seq": ev["seq"],
        }

    async def get_report(self, report_id: str) -> ComplianceReport:
        async with self.db.read() as conn:
            body = (await conn.execute(
                sa.select(audit_reports.c.body).where(audit_reports.c.report_id == report_id))).scalar()
        if body is None:
            raise NotFound(f"no compliance report {report_id!r}", field="report_id")
        return ComplianceReport.from_dict(json.loads(body))

    async def list_reports(self, limit: int = 100) -> list[dict[str, Any]]:
        r = audit_reports.c
        async with self.db.read() as conn:
            rows = (await conn.execute(
                sa.select(r.report_id, r.created_us, r.start_us, r.end_us, r.created_by)
                .order_by(r.created_us.desc()).limit(limit))).all()
        return [{"report_id": x.report_id, "generated_at": from_us(x.created_us).isoformat(),
                 "start_date": from_us(x.start_us).isoformat(),
                 "end_date": from_us(x.end_us).isoformat(), "generated_by": x.created_by}
                for x in rows]
