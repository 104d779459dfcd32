"""``admin restore``: bring a backup (:mod:`neural.mlops.server.admin.backup`) back into a
new store, on either engine.

Every member is checked against the manifest first, so a damaged backup changes nothing.
The target database is migrated to the backup's schema revisions, loaded in one
transaction, then migrated on to this version's heads (a backup from an older version
upgrades on the way). The files and keys go into the target data dir, and the audit chain
and its signed checkpoints must verify before the restore reports success.
"""

from __future__ import annotations

import json
import shutil
import tarfile
import tempfile
import zlib
from pathlib import Path
from typing import Any

from neural.mlops.server.admin import objects, tables
from neural.mlops.server.admin.backup import FORMAT, MANIFEST, file_digest
from neural.mlops.server.admin.location import StoreLocation, copy_file
from neural.mlops.server.admin.migrate import CopyResult, verify_store
from neural.mlops.server.errors import DataLoss, FailedPrecondition, InvalidArgument
from neural.mlops.server.storage import Database


async def restore(archive: Path, target: StoreLocation) -> CopyResult:
    if not archive.is_file():
        raise InvalidArgument(f"no backup at {archive}", field="input")
    target.data_dir.mkdir(parents=True, exist_ok=True)
    unpacked = Path(tempfile.mkdtemp(prefix=".restore-", dir=target.data_dir))
    try:
        manifest = _unpack(archive, unpacked)
        _check_keys(unpacked / "keys", target)
        result = CopyResult()
        db = await target.open(migrate=False)
        try:
            await _load(db, unpacked, manifest, target, result)
            result.files = await _place_files(unpacked, target)
            result.verification = await verify_store(db, target)
        finally:
            await db.close()
        return result
    finally:
        shutil.rmtree(unpacked, ignore_errors=True)


def _unpack(archive: Path, into: Path) -> dict[str, Any]:
    try:
        with tarfile.open(archive, "r:*") as tar:
            tar.extractall(into, filter="data")
        manifest = json.loads((into / MANIFEST).read_text())
    except (tarfile.TarError, OSError, ValueError, EOFError, zlib.error) as exc:
        raise DataLoss(f"{archive} is not a readable backup: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise InvalidArgument(f"{archive} is not a neural-mlops backup", field="input")
    expected = {f"database/{name}.jsonl": {"size": t["size"], "sha256": t["sha256"]}
                for name, t in manifest["tables"].items()}
    expected |= manifest["files"]
    found = {p.relative_to(into).as_posix() for p in into.rglob("*") if p.is_file()}
    extra = sorted(found - set(expected) - {MANIFEST})
    if extra:
        raise DataLoss(f"the backup holds files its manifest does not list: {extra[:3]}")
    for rel, want in expected.items():
        path = into / rel
        if not path.is_file() or file_digest(path) != want:
            raise DataLoss(f"the backup's {rel} is missing or does not match its manifest")
    return manifest


async def _load(db: Database, unpacked: Path, manifest: dict[str, Any],
                target: StoreLocation, result: CopyResult) -> None:
    revisions = list(manifest.get("revisions") or [])
    current = await db.revisions()
    if current and current != sorted(revisions):
        raise FailedPrecondition(f"{target.masked_url()} already holds a store at another "
                                 "schema version; restore into a new database", field="database")
    await db.migrate(*revisions)
    async with db.change(audited=False) as ch:
        await tables.check_schema(ch.conn)
        await tables.ensure_empty(ch.conn, f"the target {target.masked_url()}")
        await tables.clear_seeded(ch.conn)
        for table in tables.tables():
            info = manifest["tables"].get(table.name)
            if info is None:
                raise FailedPrecondition(f"the backup has no table {table.name}",
                                         field="input")
            batch: list[dict[str, Any]] = []
            with open(unpacked / "database" / f"{table.name}.jsonl", encoding="utf-8") as fh:
                for line in fh:
                    batch.append(tables.from_json(table, json.loads(line)))
                    if len(batch) >= tables.BATCH:
                        await tables.insert(ch.conn, table, batch)
                        batch = []
            await tables.insert(ch.conn, table, batch)
            result.rows[table.name] = info["rows"]
        await tables.reset_sequences(ch.conn)
    await db.migrate()


async def _place_files(unpacked: Path, target: StoreLocation) -> int:
    """Artifacts into the target's artifact store (its folder or S3-compatible store), the
    audit files into its data dir, the keys beside its signing key."""
    placed = 0
    files = unpacked / "files"
    artifacts = target.artifacts()
    if files.is_dir():
        for path in sorted(p for p in files.rglob("*") if p.is_file()):
            rel = path.relative_to(files)
            if rel.parts[0] == "models":
                await objects.upload(artifacts, rel.as_posix(), path)
            else:
                copy_file(path, target.data_dir / rel, private=rel.parts[0] == "audit")
            placed += 1
    keys = unpacked / "keys"
    for path in sorted(p for p in keys.rglob("*") if p.is_file()):
        copy_file(path, target.key_path.parent / path.relative_to(keys), private=True)
        placed += 1
    return placed


def _check_keys(keys: Path, target: StoreLocation) -> None:
    """Before anything is written: the target's own key, if any, must be the backup's."""
    for path in sorted(p for p in keys.rglob("*") if p.is_file()):
        dest = target.key_path.parent / path.relative_to(keys)
        if dest.exists() and dest.read_bytes() != path.read_bytes():
            raise FailedPrecondition(f"{dest} exists and is another key; restore into a "
                                     "new data dir", field="data_dir")
