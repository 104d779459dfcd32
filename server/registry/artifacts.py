"""Artifact files under ``<root>/models/<name>/<version>/<filename>``, with SHA-256.

An upload is first streamed to ``models/.staging/`` while it is hashed (never held in
memory), then moved into place inside the registering transaction. A cut-off upload or a
rejected registration leaves no file behind. A crash (kill -9, power loss) between the
move and the commit leaves a complete file with no row: :meth:`ArtifactStore.orphans`
finds such version folders, and the registry removes them at start inside a write
transaction, which no registering transaction can overlap (SQLite's writer lock).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

from neural.mlops.server.errors import DataLoss, InvalidArgument
from neural.mlops.server.fsutil import fsync_dir

CHUNK = 1024 * 1024
REFERENCE_SCHEMES = ("s3://", "gs://", "file://", "gcs://", "abfs://", "hdfs://", "http://", "https://")


@dataclass(frozen=True, slots=True)
class StagedFile:
    path: Path
    sha256: str
    size: int


class ArtifactStore:
    def __init__(self, root: Path) -> None:
        self.root = root / "models"
        self.staging = self.root / ".staging"

    def sweep(self) -> None:
        """Remove half-written uploads left by a crash."""
        shutil.rmtree(self.staging, ignore_errors=True)

    def version_dirs(self) -> set[tuple[str, str]]:
        """(name, version) of every version folder on disk (staging excluded)."""
        if not self.root.is_dir():
            return set()
        return {
            (model.name, version.name)
            for model in self.root.iterdir() if model.is_dir() and model != self.staging
            for version in model.iterdir() if version.is_dir()
        }

    def relative(self, name: str, version: str, filename: str) -> str:
        return f"models/{name}/{version}/{filename}"

    def final_path(self, name: str, version: str, filename: str) -> Path:
        return self.root / name / version / filename

    async def stage_chunks(self, chunks: AsyncIterator[bytes]) -> StagedFile:
        self.staging.mkdir(parents=True, exist_ok=True)
        path = self.staging / uuid.uuid4().hex
        digest = hashlib.sha256()
        size = 0
        try:
            with open(path, "wb") as fh:
                async for chunk in chunks:
                    digest.update(chunk)
                    size += len(chunk)
                    fh.write(chunk)
                fh.flush()
                os.fsync(fh.fileno())
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return StagedFile(path, digest.hexdigest(), size)

    async def stage_path(self, source: Path) -> StagedFile:
        if not source.exists():
            raise InvalidArgument(f"model_path does not exist: {source}", field="model_path")
        if not source.is_file():
            raise InvalidArgument(f"model_path is not a file: {source}", field="model_path")

        async def read() -> AsyncIterator[bytes]:
            with open(source, "rb") as fh:
                while chunk := await asyncio.to_thread(fh.read, CHUNK):
                    yield chunk

        return await self.stage_chunks(read())

    def install(self, staged: StagedFile, name: str, version: str, filename: str) -> Path:
        """Move a staged upload into its final place (called inside the DB transaction)."""
        dest = self.final_path(name, version, filename)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged.path, dest)
        fsync_dir(dest.parent)
        return dest

    def remove_version(self, name: str, version: str) -> None:
        shutil.rmtree(self.root / name / version, ignore_errors=True)
        try:
            (self.root / name).rmdir()
        except OSError:
            pass

    def discard(self, staged: StagedFile) -> None:
        staged.path.unlink(missing_ok=True)

    def open_verified(self, relative_uri: str, sha256: str) -> Iterator[bytes]:
        """Yield the stored bytes; raise DataLoss at the end if they do not match ``sha256``."""
        path = self.root.parent / relative_uri
        if not path.is_file():
            raise DataLoss(f"artifact file is missing: {relative_uri}")
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            while chunk := fh.read(CHUNK):
                digest.update(chunk)
                yield chunk
        if digest.hexdigest() != sha256:
            raise DataLoss(
                f"artifact {relative_uri} is corrupt: sha256 {digest.hexdigest()} "
                f"!= recorded {sha256}"
            )


def validate_filename(filename: str) -> str:
    base = os.path.basename(filename)
    if not base or base in (".", "..") or base != filename or len(base) > 255:
        raise InvalidArgument(f"artifact file name is not valid: {filename!r}",
                              field="artifact_filename")
    return base


def validate_reference(uri: str) -> str:
    if not uri.startswith(REFERENCE_SCHEMES) or len(uri) > 4096:
        raise InvalidArgument(
            f"artifact URI must start with one of {', '.join(REFERENCE_SCHEMES)}: {uri!r}",
            field="model_path",
        )
    return uri
