"""``admin migrate-store``: copy a store (rows, artifacts, audit keys and checkpoint anchor)
into another database, typically an SQLite folder into PostgreSQL.

Artifacts are copied when the target's artifact store differs from the source's (another
data dir, or another S3-compatible store): each artifact a row names, streamed and
verified against its recorded SHA-256 (:mod:`.objects`), folder or S3 on either side.

The source is read in one snapshot, the target written in one transaction (all or
nothing) and only if it is empty; afterwards the target's audit chain and checkpoints are
verified with the copied keys. Both databases are first brought to this version's schema.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from neural.mlops.server.admin import objects, tables
from neural.mlops.server.admin.location import (
    ARCHIVE_DIR,
    CHECKPOINT_ANCHOR,
    StoreLocation,
    copy_file,
)
from neural.mlops.server.audit.service import AuditService
from neural.mlops.server.audit.verify import ChainVerification
from neural.mlops.server.errors import DataLoss, FailedPrecondition
from neural.mlops.server.storage import Database
from neural.mlops.server.storage.schema import model_versions


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
            artifacts = await _copy_rows(src, dst, target, result)
            if not source.same_artifacts(target):
                result.files += await copy_artifacts(source, target, artifacts)
            if target.data_dir != source.data_dir:
                result.files += copy_store_files(source, target)
            result.verification = await verify_store(dst, target)
        finally:
            await dst.close()
    finally:
        await src.close()
    return result


async def _copy_rows(src: Database, dst: Database, target: StoreLocation,
                     result: CopyResult) -> dict[str, str]:
    """Every row, in one transaction; returns the stored artifacts the rows name
    (relative URI -> SHA-256)."""
    artifacts: dict[str, str] = {}
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
                    if table.name == model_versions.name:
                        artifacts.update((r["artifact_uri"], r["artifact_sha256"])
                                         for r in batch if r["artifact_stored"])
                result.rows[table.name] = n
            await tables.reset_sequences(ch.conn)
    return artifacts


async def copy_artifacts(source: StoreLocation, target: StoreLocation,
                         artifacts: dict[str, str]) -> int:
    """Each stored artifact the rows name, streamed from the source's artifact store
    (folder or S3) into the target's and verified on the way."""
    src, dst = source.artifacts(), target.artifacts()
    for rel, sha in sorted(artifacts.items()):
        await objects.copy(src, dst, rel, sha)
    return len(artifacts)


def copy_store_files(source: StoreLocation, target: StoreLocation) -> int:
    """The checkpoint anchor, purge archives and the signing keys; an existing different
    key in the target is refused (the checkpoints would no longer verify)."""
    copied = 0
    root = source.data_dir / ARCHIVE_DIR
    if root.is_dir():
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            rel = path.relative_to(source.data_dir)
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
