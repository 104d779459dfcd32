"""``admin backup``: a consistent online snapshot of a store in one file (mode 0600).

The archive (gzip tar) holds ``database/<table>.jsonl`` (every row, engine-neutral, read in
one snapshot transaction while the server keeps serving), ``files/`` (the artifacts those
rows reference, the purge archives, and the checkpoint anchor cut to the snapshot's
checkpoints), ``keys/`` (the audit signing key, its public half, the retired public keys)
and ``manifest.json``: format, schema revisions, the audit head, and the size and SHA-256
of every other member, so a restore can tell a damaged backup from a good one.

Artifacts are immutable once their row commits; each is read from the store's artifacts
(the data dir's folder or its S3-compatible store) and checked against the SHA-256 its row
recorded, so an object changed behind the store's back fails the backup.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from neural.mlops.server.admin import objects, tables
from neural.mlops.server.admin.location import (
    ARCHIVE_DIR,
    CHECKPOINT_ANCHOR,
    StoreLocation,
    copy_file,
)
from neural.mlops.server.errors import DataLoss, FailedPrecondition
from neural.mlops.server.storage.schema import audit_chain_head, audit_checkpoints, model_versions

FORMAT = "neural-mlops-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"


@dataclass(slots=True)
class Snapshot:
    """What the database snapshot says the files must be."""

    artifacts: dict[str, str] = field(default_factory=dict)  # relative path -> sha256
    signatures: set[str] = field(default_factory=set)  # of the checkpoints in the snapshot
    head: tuple[int, str] = (0, "")


async def backup(store: StoreLocation, output: Path) -> dict[str, Any]:
    """Write the snapshot of ``store`` to ``output``; returns the manifest."""
    output = output.resolve()
    if output.exists():
        raise FailedPrecondition(f"{output} exists; choose a new file", field="output")
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".backup-", dir=output.parent))
    try:
        manifest: dict[str, Any] = {"format": FORMAT, "version": FORMAT_VERSION,
                                    "created_us": time.time_ns() // 1000,
                                    "engine": store.engine, "tables": {}, "files": {}}
        snap = await _dump_database(store, staging / "database", manifest)
        # Read after the snapshot: a key rotated meanwhile left the old public key in
        # retired/, so every checkpoint in the snapshot still finds its key.
        await _collect_files(store, staging, snap)
        for path in sorted(p for p in staging.rglob("*") if p.is_file()):
            rel = path.relative_to(staging).as_posix()
            if not rel.startswith("database/"):
                manifest["files"][rel] = file_digest(path)
        manifest["audit_head"] = {"seq": snap.head[0], "hash": snap.head[1]}
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
        _write_archive(staging, output)
        return manifest
    finally:
        shutil.rmtree(staging, ignore_errors=True)


async def _dump_database(store: StoreLocation, out: Path, manifest: dict[str, Any]) -> Snapshot:
    out.mkdir(mode=0o700)
    snap = Snapshot()
    db = await store.open(migrate=False)
    try:
        manifest["revisions"] = await db.revisions()
        async with db.read() as conn:
            await tables.check_schema(conn)
            for table in tables.tables():
                path = out / f"{table.name}.jsonl"
                count = 0
                with open(path, "wb") as fh:
                    async for batch in tables.batches(conn, table):
                        for row in batch:
                            _note(snap, table.name, row)
                            fh.write(json.dumps(tables.to_json(table, row),
                                                sort_keys=True).encode() + b"\n")
                        count += len(batch)
                manifest["tables"][table.name] = {"rows": count, **file_digest(path)}
    finally:
        await db.close()
    return snap


def _note(snap: Snapshot, table: str, row: dict[str, Any]) -> None:
    if table == model_versions.name and row["artifact_stored"]:
        snap.artifacts[row["artifact_uri"]] = row["artifact_sha256"]
    elif table == audit_checkpoints.name:
        snap.signatures.add(row["signature"])
    elif table == audit_chain_head.name:
        snap.head = (int(row["seq"]), row["hash"])


async def _collect_files(store: StoreLocation, staging: Path, snap: Snapshot) -> None:
    files = staging / "files"
    artifacts = store.artifacts()
    for rel, sha in sorted(snap.artifacts.items()):
        try:
            source = await objects.open_verified(artifacts, rel, sha)
        except DataLoss:
            raise FailedPrecondition(f"artifact {rel} of the snapshot is gone (deleted while "
                                     "the backup ran?); run the backup again",
                                     field="data_dir") from None
        dest = files / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        with open(dest, "wb") as out:  # verified at the end: DataLoss if it was changed
            async for chunk in objects.chunks_of(source):
                out.write(chunk)
    archive = store.data_dir / ARCHIVE_DIR
    if archive.is_dir():
        for path in sorted(p for p in archive.rglob("*") if p.is_file()):
            copy_file(path, files / path.relative_to(store.data_dir))
    anchor = store.data_dir / CHECKPOINT_ANCHOR
    if anchor.is_file():
        # Checkpoints signed after the snapshot would look deleted from the restored
        # database: keep the anchor's lines the snapshot holds.
        kept = [line for line in anchor.read_text(encoding="utf-8").splitlines(keepends=True)
                if line.strip() and _signature(line) in snap.signatures]
        dest = files / CHECKPOINT_ANCHOR
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text("".join(kept), encoding="utf-8")
    for path, key_rel in store.key_files():
        copy_file(path, staging / "keys" / key_rel, private=True)


def _signature(line: str) -> str:
    try:
        return str(json.loads(line).get("signature", ""))
    except (ValueError, AttributeError):
        return ""


def file_digest(path: Path) -> dict[str, Any]:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1024 * 1024):
            h.update(chunk)
    return {"size": path.stat().st_size, "sha256": h.hexdigest()}


def _write_archive(staging: Path, output: Path) -> None:
    """The archive is complete or absent: written beside ``output`` (0600), then renamed."""
    tmp = output.with_name(f".{output.name}.partial")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as raw:
            _tar(staging, raw)
            raw.flush()
            os.fsync(raw.fileno())
        tmp.replace(output)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _tar(staging: Path, raw: BinaryIO) -> None:
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        tar.add(staging / MANIFEST, arcname=MANIFEST)
        for path in sorted(p for p in staging.rglob("*") if p.is_file()):
            rel = path.relative_to(staging).as_posix()
            if rel != MANIFEST:
                tar.add(path, arcname=rel)
