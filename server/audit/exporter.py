"""Exporting a run of the stored chain with its signed seal, as a stream (the servicer
sends it to a remote caller) or to a file where this process runs. The formats and their
offline verification are in :mod:`neural.mlops.server.audit.export`.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from neural.mlops.server.audit import store
from neural.mlops.server.audit.eventlog import check_range
from neural.mlops.server.audit.events import EventType
from neural.mlops.server.audit.export import (
    FORMAT_NAME,
    FORMAT_VERSION,
    AtomicOutput,
    ExportRenderer,
    parse_format,
    seal_file_bytes,
    seal_message,
    seal_path,
)
from neural.mlops.server.audit.hashchain import interoperable
from neural.mlops.server.audit.notary import Notary
from neural.mlops.server.audit.signing import Keyring
from neural.mlops.server.clock import Clock, to_us
from neural.mlops.server.errors import DataLoss, FailedPrecondition, InvalidArgument
from neural.mlops.server.identity import current_call
from neural.mlops.server.storage import Database

log = structlog.get_logger(__name__)


@dataclass(slots=True)
class ExportResult:
    path: str
    format: str
    count: int
    first_seq: int
    last_seq: int
    bytes_written: int
    seal: dict[str, Any] = field(default_factory=dict)
    seal_path: str = ""  # the seal file beside a CSV export ("" when the seal is inside)


# An export stream for a destination: the seal (a dict), then the file's bytes.
ExportStream = Callable[[str], AsyncIterator[dict[str, Any] | bytes]]


class Exporter:
    def __init__(self, db: Database, clock: Clock, keys: Keyring, notary: Notary) -> None:
        self.db = db
        self.clock = clock
        self.keys = keys
        self.notary = notary

    async def stream(
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
        check_range(start_us, end_us)
        chain_ok = True
        try:
            await self.notary.checkpoint("export")
        except FailedPrecondition as exc:  # the chain is broken, or writes are refused
            chain_ok = False
            log.error("exporting an audit chain that does not verify", error=str(exc))
        async with self.db.read() as conn:
            first, last = seq_range or await store.seq_range(conn, start_us, end_us)
            seal = await self._seal(conn, (first, last), start_us, end_us, chain_ok)
            yield seal
            renderer = ExportRenderer(fmt, seal)
            yield renderer.header()
            if first:
                async for rows in store.read_pages(conn, first - 1, last):
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

    async def _seal(
        self,
        conn: AsyncConnection,
        seqs: tuple[int, int],
        start_us: int | None,
        end_us: int | None,
        chain_ok: bool,
    ) -> dict[str, Any]:
        """The signed seal of the run ``seqs`` (first, last; (0, 0) for none)."""
        first, last = seqs
        first_prev = last_hash = ""
        if first:
            first_prev = _present(await store.prev_hash_at(conn, first), first)
            last_hash = _present(await store.hash_at(conn, last), last)
        key = self.keys.key
        # A year-9999 bound exceeds 2**53: written (and signed) as a string, so a verifier
        # whose JSON numbers are doubles reads the signed value (interoperable()).
        seal: dict[str, Any] = interoperable({
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
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
            "key_id": key.key_id,
        })
        seal["signature"] = key.sign(seal_message(seal))
        seal["public_key"] = key.public_pem
        return seal

    async def to_file(
        self, path: str | os.PathLike[str], fmt: str, start_us: int | None = None,
        end_us: int | None = None, *, seq_range: tuple[int, int] | None = None,
        record: bool = True,
    ) -> ExportResult:
        """Write an export file where this process runs (temporary file, then rename)."""
        fmt = parse_format(fmt)
        check_range(start_us, end_us)
        return await write_export(path, fmt, lambda destination: self.stream(
            fmt, start_us, end_us, destination=destination, seq_range=seq_range, record=record))


async def write_export(path: str | os.PathLike[str], fmt: str,
                       stream: ExportStream) -> ExportResult:
    """Write the export ``stream(destination)`` yields to ``path``, where this process
    runs: the local exporter and the remote client's export both write through here.

    The file appears only when complete (temporary file, then rename). A CSV export's
    seal goes to the ``.seal`` file beside it, renamed into place after the CSV, so a
    failure in between leaves a CSV without a seal, which the verifier reports."""
    fmt = parse_format(fmt)
    out = AtomicOutput(path)
    sealed = AtomicOutput(seal_path(out.path)) if fmt == "csv" else None
    seal: dict[str, Any] = {}
    try:
        async for item in stream(str(out.path.resolve())):
            if isinstance(item, dict):
                seal = item
            else:
                out.write(item)
        if not seal:
            raise InvalidArgument("the export stream carried no seal", field="format")
        final = out.commit()
        if sealed is not None:
            sealed.write(seal_file_bytes(seal))
            sealed.commit()
    except BaseException:
        out.abort()
        if sealed is not None:
            sealed.abort()
        raise
    return ExportResult(str(final), fmt, seal["count"], seal["first_seq"], seal["last_seq"],
                        out.bytes_written, seal, str(sealed.path) if sealed else "")


def _present(value: str | None, seq: int) -> str:
    if value is None:
        raise DataLoss(f"event {seq} of the exported run is missing from the store")
    return value
