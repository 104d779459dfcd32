"""Artifacts moved by the admin commands through the stores' own interface, so a folder
store and an S3-compatible store (``--artifact-store s3://BUCKET/PREFIX``) are handled
alike: every read is verified against the SHA-256 its row recorded (DataLoss otherwise),
every write follows the stores' stage-then-install rule (an interrupted copy leaves no
partial object under the final name), and nothing is held whole in memory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from neural.mlops.server.registry.artifacts import CHUNK, ArtifactStore


async def open_verified(store: ArtifactStore, relative: str, sha256: str) -> Iterator[bytes]:
    """The stored bytes of ``relative`` (DataLoss at once when it is missing, at the end
    when the bytes do not match ``sha256``); the blocking open runs off the event loop."""
    return await asyncio.to_thread(store.open_verified, relative, sha256)


async def chunks_of(source: Iterator[bytes]) -> AsyncIterator[bytes]:
    """A blocking chunk iterator (a file, an S3 body) read off the event loop."""
    while (chunk := await asyncio.to_thread(next, source, None)) is not None:
        yield chunk


async def copy(source: ArtifactStore, target: ArtifactStore, relative: str,
               sha256: str) -> None:
    """Stream one artifact from ``source`` into ``target`` under the same relative URI."""
    staged = await target.stage(relative, chunks_of(await open_verified(source, relative,
                                                                        sha256)))
    await target.install(staged)


async def upload(store: ArtifactStore, relative: str, path: Path) -> None:
    """Put the local file ``path`` into ``store`` as ``relative`` (a restore)."""
    def read() -> Iterator[bytes]:
        with open(path, "rb") as fh:
            while chunk := fh.read(CHUNK):
                yield chunk

    await store.install(await store.stage(relative, chunks_of(read())))
