"""Signed checkpoints: statements, signed with the store's Ed25519 key, that event ``seq``
of the chain had hash ``hash``.

Each checkpoint is kept twice: in the database and in ``<data_dir>/audit/checkpoints.jsonl``
outside it, so deleting checkpoints from the database shows up. A checkpoint's signature
covers :data:`CHECKPOINT_CONTEXT` followed by the canonical JSON of its fields but the
signature (:meth:`Checkpoint.message`).
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncConnection

from neural.mlops.server.audit import store
from neural.mlops.server.audit.hashchain import canonical_json
from neural.mlops.server.audit.signing import Keyring, verify_signature
from neural.mlops.server.clock import Clock, from_us, to_us
from neural.mlops.server.storage import Database

CHECKPOINT_CONTEXT = b"neural-mlops-audit-checkpoint-v1\n"


@dataclass(slots=True)
class Checkpoint:
    """A signed statement that event ``seq`` of the chain had hash ``hash``."""

    seq: int
    hash: str
    created_us: int
    kind: str  # periodic | export | purge | shutdown | manual | rotation
    key_id: str
    signature: str

    @property
    def created_at(self) -> datetime:
        return from_us(self.created_us)

    def message(self) -> bytes:
        body = {"seq": self.seq, "hash": self.hash, "created_us": self.created_us,
                "kind": self.kind, "key_id": self.key_id}
        return CHECKPOINT_CONTEXT + canonical_json(body).encode()


class CheckpointLedger:
    """Signs, stores and loads the checkpoints of one store.

    ``lock`` is held by whoever verifies the chain up to its head and signs it (a
    checkpoint, a purge, a key rotation), so no two signers work from the same base."""

    def __init__(self, db: Database, clock: Clock, keys: Keyring, log_path: Path) -> None:
        self.db = db
        self.clock = clock
        self.keys = keys
        self.log_path = log_path
        self.lock = asyncio.Lock()

    def sign(self, seq: int, hash_: str, kind: str) -> Checkpoint:
        key = self.keys.key
        cp = Checkpoint(seq, hash_, to_us(self.clock.now()), kind, key.key_id, "")
        cp.signature = key.sign(cp.message())
        return cp

    async def insert(self, conn: AsyncConnection, cp: Checkpoint) -> None:
        """Store ``cp`` in the caller's transaction; :meth:`append_to_file` after commit."""
        await store.insert_checkpoint(conn, asdict(cp))

    def append_to_file(self, cp: Checkpoint) -> None:
        # After the database commit: a crash in between leaves a checkpoint only in the
        # database, which verification accepts; the reverse would look like tampering.
        line = (canonical_json(asdict(cp)) + "\n").encode()
        fd = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    async def load(self) -> tuple[list[Checkpoint], list[str]]:
        """Checkpoints from the database and the file, by seq, with any problem found: a
        bad signature, an unknown key, or one in the file that the database lost."""
        self.keys.refresh()
        async with self.db.read() as conn:
            db_cps = [Checkpoint(*row) for row in await store.checkpoint_rows(conn)]
        file_cps, problems = self._read_file()
        for source, cps in (("database", db_cps), (str(self.log_path), file_cps)):
            problems += [self._signature_problem(cp, source) for cp in cps]
        in_db = {cp.signature for cp in db_cps}
        problems += [
            f"signed checkpoint at seq {cp.seq} in {self.log_path.name} is missing "
            "from the database (checkpoints deleted)"
            for cp in file_cps if cp.signature not in in_db
        ]
        by_sig = {cp.signature: cp for cp in [*db_cps, *file_cps]}
        ordered = sorted(by_sig.values(), key=lambda cp: (cp.seq, cp.created_us))
        return ordered, [p for p in problems if p]

    async def checkpoints(self) -> list[Checkpoint]:
        """Every checkpoint found, by seq (:meth:`load` without the problems)."""
        return (await self.load())[0]

    def _read_file(self) -> tuple[list[Checkpoint], list[str]]:
        checkpoints: list[Checkpoint] = []
        problems: list[str] = []
        if not self.log_path.exists():
            return checkpoints, problems
        with open(self.log_path, encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    checkpoints.append(Checkpoint(**json.loads(line)))
                except (ValueError, TypeError):
                    problems.append(f"{self.log_path} line {n} is not a checkpoint")
        return checkpoints, problems

    def _signature_problem(self, cp: Checkpoint, source: str) -> str:
        """Why ``cp`` does not verify, or "" when it does."""
        pub = self.keys.public_key(cp.key_id)
        if pub is None:
            return f"checkpoint at seq {cp.seq} ({source}) is signed by unknown key {cp.key_id}"
        if not verify_signature(pub, cp.message(), cp.signature):
            return (f"checkpoint at seq {cp.seq} ({source}) has an invalid signature "
                    "(altered or forged)")
        return ""
