"""The folder store's start-up sweep on a folder shared by several replicas: it removes the
uploads a crash abandoned and never another process's upload in progress."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

from neural.mlops.server.registry.artifacts import (
    _HOST,
    ABANDONED_UPLOAD_SECONDS,
    FolderArtifactStore,
)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid  # ended and reaped (a reuse within this test is not plausible)


def test_the_sweep_keeps_live_uploads_and_removes_abandoned_ones(tmp_path: Path) -> None:
    store = FolderArtifactStore(tmp_path)
    store.staging.mkdir(parents=True)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        files = {
            # another replica on this host, uploading now: kept
            "live": f"{_HOST}.{other.pid}.aaaa",
            # a replica of this host killed mid-upload: removed at once
            "crashed": f"{_HOST}.{_dead_pid()}.bbbb",
            # another host's upload: only its age can tell, and it is fresh: kept
            "remote": f"otherhost.{_dead_pid()}.cccc",
            # another host's upload, untouched for longer than the limit: removed
            "stale": "otherhost.1.dddd",
            # a name from before staging files named their writer, fresh: kept
            "legacy": "0123456789abcdef",
        }
        for name in files.values():
            (store.staging / name).write_bytes(b"partial")
        old = time.time() - ABANDONED_UPLOAD_SECONDS - 60
        os.utime(store.staging / files["stale"], (old, old))

        asyncio.run(store.sweep())

        left = {p.name for p in store.staging.iterdir()}
        assert left == {files["live"], files["remote"], files["legacy"]}
    finally:
        other.kill()
        other.wait()


def test_an_upload_staged_by_this_process_survives_a_sweep_and_installs(tmp_path: Path) -> None:
    store = FolderArtifactStore(tmp_path)

    async def chunks() -> AsyncIterator[bytes]:
        yield b"model bytes"

    async def run() -> bytes:
        staged = await store.stage("models/m/1/model.bin", chunks())
        await FolderArtifactStore(tmp_path).sweep()  # another replica starting meanwhile
        await store.install(staged)
        return b"".join(store.open_verified("models/m/1/model.bin", staged.sha256))

    assert asyncio.run(run()) == b"model bytes"
    assert list(store.staging.iterdir()) == []
