"""Where stored artifacts live: the :class:`ArtifactStore` interface, and the folder store.

A stored artifact is addressed by its *relative URI* ``models/<name>/<version>/<filename>``
(what a row records, the same in every store, so a store can be copied to another kind).
Every store keeps the same rules:

* an upload is streamed (never held whole in memory) and hashed (SHA-256) while written;
* it stays invisible under its final name until :meth:`ArtifactStore.install`, which the
  registry calls inside the registering transaction, so a cut-off upload or a rejected
  registration leaves nothing behind;
* a crash between the install and the commit leaves a complete artifact without a row:
  :meth:`ArtifactStore.version_keys` lists what is stored, and the registry removes what
  no row names at start, inside a write transaction, which no registering transaction can
  overlap (the store's writer lock: SQLite's, or the advisory lock every PostgreSQL
  change takes);
* a download is verified: DataLoss when the bytes no longer match the recorded hash.

:class:`FolderArtifactStore` keeps the files under ``<data_dir>/models``; an upload is
written to ``models/.staging/<host>.<pid>.<random>`` and moved into place. The folder may
be shared by several replicas (a network filesystem), so the start-up sweep removes only
staging files that are certainly abandoned: written by a process of this host that is no
longer running, or untouched for :data:`ABANDONED_UPLOAD_SECONDS` (an upload in progress
writes its file at every chunk). The S3 store is :mod:`.artifacts_s3`;
:func:`open_artifact_store` picks one from the configuration.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import shutil
import socket
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

from neural.mlops.server.clock import Clock
from neural.mlops.server.errors import DataLoss, InvalidArgument
from neural.mlops.server.fsutil import fsync_dir

CHUNK = 1024 * 1024
# An upload not written to for this long is abandoned (both stores' start-up sweeps).
ABANDONED_UPLOAD_SECONDS = 3600.0
REFERENCE_SCHEMES = ("s3://", "gs://", "file://", "gcs://", "abfs://", "hdfs://", "http://", "https://")


@dataclass(frozen=True, slots=True)
class StagedFile:
    """An upload received and hashed, not yet visible under ``relative``."""

    relative: str
    sha256: str
    size: int


def relative_uri(name: str, version: str, filename: str) -> str:
    return f"models/{name}/{version}/{filename}"


def split_relative(relative: str) -> tuple[str, str] | None:
    """``(name, version)`` of ``models/<name>/<version>/<file>``; None for anything else."""
    parts = relative.split("/")
    if len(parts) != 4 or parts[0] != "models" or not all(parts[1:]):
        return None
    return parts[1], parts[2]


async def read_file(source: Path) -> AsyncIterator[bytes]:
    """A local file in chunks, read off the event loop."""
    if not source.exists():
        raise InvalidArgument(f"model_path does not exist: {source}", field="model_path")
    if not source.is_file():
        raise InvalidArgument(f"model_path is not a file: {source}", field="model_path")
    with open(source, "rb") as fh:
        while chunk := await asyncio.to_thread(fh.read, CHUNK):
            yield chunk


class ArtifactStore(ABC):
    """Stored artifacts; see the module docstring for the rules every store keeps."""

    @abstractmethod
    async def stage(self, relative: str, chunks: AsyncIterator[bytes]) -> StagedFile:
        """Receive and hash an upload meant for ``relative``; nothing visible there yet."""

    @abstractmethod
    async def install(self, staged: StagedFile) -> None:
        """Make a staged upload visible under its relative URI (inside the transaction)."""

    @abstractmethod
    async def discard(self, staged: StagedFile) -> None:
        """Forget a staged upload that will not be installed (no error if installed)."""

    @abstractmethod
    async def remove_version(self, name: str, version: str) -> None:
        """Delete every stored file of one version."""

    @abstractmethod
    async def version_keys(self) -> set[tuple[str, str]]:
        """(name, version) of every version with stored files (staging excluded)."""

    @abstractmethod
    async def sweep(self) -> None:
        """Remove uploads abandoned by a crash (at start, before :meth:`version_keys`)."""

    @abstractmethod
    def open_verified(self, relative: str, sha256: str) -> Iterator[bytes]:
        """Yield the stored bytes; DataLoss at the end if they do not match ``sha256``,
        at once if the artifact is missing."""

    async def stage_path(self, relative: str, source: Path) -> StagedFile:
        return await self.stage(relative, read_file(source))


def open_artifact_store(location: str, data_dir: Path, *, endpoint_url: str = "",
                        clock: Clock | None = None) -> ArtifactStore:
    """The store ``location`` names: ``""`` for the folder under ``data_dir``, or
    ``s3://bucket/prefix`` (boto3, the ``s3`` extra)."""
    if not location:
        return FolderArtifactStore(data_dir)
    from neural.mlops.server.registry.artifacts_s3 import S3ArtifactStore, S3Location

    return S3ArtifactStore(S3Location.parse(location), endpoint_url=endpoint_url, clock=clock)


@dataclass(frozen=True, slots=True)
class _FolderStaged(StagedFile):
    path: Path


class FolderArtifactStore(ArtifactStore):
    """Files under ``<root>/models/<name>/<version>/<filename>``."""

    def __init__(self, root: Path) -> None:
        self.base = root
        self.root = root / "models"
        self.staging = self.root / ".staging"

    async def sweep(self) -> None:
        if not self.staging.is_dir():
            return
        cutoff = time.time() - ABANDONED_UPLOAD_SECONDS
        for path in self.staging.iterdir():
            with contextlib.suppress(FileNotFoundError):  # installed or swept meanwhile
                if _abandoned(path, cutoff):
                    path.unlink()

    async def version_keys(self) -> set[tuple[str, str]]:
        if not self.root.is_dir():
            return set()
        return {
            (model.name, version.name)
            for model in self.root.iterdir() if model.is_dir() and model != self.staging
            for version in model.iterdir() if version.is_dir()
        }

    async def stage(self, relative: str, chunks: AsyncIterator[bytes]) -> StagedFile:
        self.staging.mkdir(parents=True, exist_ok=True)
        path = self.staging / f"{_HOST}.{os.getpid()}.{uuid.uuid4().hex}"
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
        return _FolderStaged(relative, digest.hexdigest(), size, path)

    async def install(self, staged: StagedFile) -> None:
        assert isinstance(staged, _FolderStaged)
        dest = self.base / staged.relative
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged.path, dest)
        fsync_dir(dest.parent)

    async def discard(self, staged: StagedFile) -> None:
        assert isinstance(staged, _FolderStaged)
        staged.path.unlink(missing_ok=True)

    async def remove_version(self, name: str, version: str) -> None:
        shutil.rmtree(self.root / name / version, ignore_errors=True)
        try:
            (self.root / name).rmdir()
        except OSError:
            pass

    def open_verified(self, relative: str, sha256: str) -> Iterator[bytes]:
        path = self.base / relative
        if not path.is_file():
            raise DataLoss(f"artifact file is missing: {relative}")
        return self._verified(path, relative, sha256)

    @staticmethod
    def _verified(path: Path, relative: str, sha256: str) -> Iterator[bytes]:
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            while chunk := fh.read(CHUNK):
                digest.update(chunk)
                yield chunk
        check_digest(relative, digest, sha256)


_HOST = socket.gethostname().replace(".", "_")


def _abandoned(path: Path, cutoff: float) -> bool:
    """Whether a staging file's upload can no longer be going on: its writer was a process
    of this host that has ended, or nothing wrote to it since ``cutoff`` (a file of another
    host, or a name from before the names carried their writer, only by age)."""
    if path.stat().st_mtime < cutoff:
        return True
    host, _, rest = path.name.partition(".")
    pid = rest.partition(".")[0]
    return host == _HOST and pid.isdigit() and not _running(int(pid))


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def check_digest(relative: str, digest: hashlib._Hash, sha256: str) -> None:
    if digest.hexdigest() != sha256:
        raise DataLoss(
            f"artifact {relative} is corrupt: sha256 {digest.hexdigest()} != recorded {sha256}"
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
