"""``admin migrate-store``: copy a store (rows, artifacts, audit keys and checkpoint anchor)
into another database, typically an SQLite folder into PostgreSQL.

The source is read in one snapshot, the target written in one transaction (all or
nothing) and only if it is empty; afterwards the target's audit chain and checkpoints are
verified with the copied keys. Both databases are first brought to this version's schema.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from neural.mlops.server.admin import tables
from neural.mlops.server.admin.location import (
    ARCHIVE_DIR,
    CHECKPOINT_ANCHOR,
    MODELS_DIR,
    STAGING,
    StoreLocation,
    copy_file,
)
from neural.mlops.server.audit.service import AuditService
from neural.mlops.server.audit.verify import ChainVerification
from neural.mlops.server.errors import DataLoss, FailedPrecondition
from neural.mlops.server.storage import Database


@dataclass(slots=True)
class CopyResult:
    """What a migration or a restore moved, and the target's audit verification."""

    rows: dict[str, int] = field(default_factory=dict)
    files: int = 0
    verification: ChainVerification | None = None

    def as_dict(self) -> dict[str, object]:
        v = self.verification
        return {
            "rows": self.rows,
            "files": self.files,
            "chain_valid": bool(v and v.valid),
            "events_checked": v.events_checked if v else 0,
            "checkpoints_checked": v.checkpoints_checked if v else 0,
            "head_seq": v.last_seq if v else 0,
        }


async def migrate_store(source: StoreLocation, target: StoreLocation) -> CopyResult:
    if (source.database_url, source.data_dir) == (target.database_url, target.data_dir):
        raise FailedPrecondition("the source and the target are the same store", field="to")
    result = CopyResult()
    src = await source.open(migrate=True)
    try:
        dst = await target.open(migrate=True)
        try:
            await _copy_rows(src, dst, target, result)
            if target.data_dir != source.data_dir:
                result.files = copy_store_files(source, target)
            result.verification = await verify_store(dst, target)
        finally:
            await dst.close()
    finally:
        await src.close()
    return result


async def _copy_rows(src: Database, dst: Database, target: StoreLocation,
                     result: CopyResult) -> None:
    async with src.read() as rconn:
        await tables.check_schema(rconn)
        async with dst.change(audited=False) as ch:
            await tables.check_schema(ch.conn)
            await tables.ensure_empty(ch.conn, f"the target {target.masked_url()}")
            await tables.clear_seeded(ch.conn)
            for table in tables.tables():
                n = 0
                async for batch in tables.batches(rconn, table):
                    await tables.insert(ch.conn, table, batch)
                    n += len(batch)
                result.rows[table.name] = n
            await tables.reset_sequences(ch.conn)


def copy_store_files(source: StoreLocation, target: StoreLocation) -> int:
    """Artifacts, the checkpoint anchor, purge archives and the signing keys; an existing
    different key in the target is refused (the checkpoints would no longer verify)."""
    copied = 0
    for sub in (MODELS_DIR, ARCHIVE_DIR):
        root = source.data_dir / sub
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*")):
            rel = path.relative_to(source.data_dir)
            if path.is_file() and STAGING not in rel.parts:
                copy_file(path, target.data_dir / rel)
                copied += 1
    anchor = source.data_dir / CHECKPOINT_ANCHOR
    if anchor.is_file():
        copy_file(anchor, target.data_dir / CHECKPOINT_ANCHOR, private=True)
        copied += 1
    key_dir = target.key_path.parent
    for path, rel in source.key_files():
        dest = key_dir / rel
        if dest.exists() and dest.read_bytes() != path.read_bytes():
            raise FailedPrecondition(f"{dest} exists and is another key; move it away first",
                                     field="data_dir")
        copy_file(path, dest, private=True)
        copied += 1
    return copied


async def verify_store(db: Database, location: StoreLocation) -> ChainVerification:
    """The audit chain and every signed checkpoint of the copied store, with its keys."""
    audit = AuditService(db, location.data_dir)
    result = await audit.verify_chain()
    if not result.valid:
        raise DataLoss(f"the copied audit chain does not verify at seq {result.first_bad_seq}: "
                       f"{result.reason}")
    return result
