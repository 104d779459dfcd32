"""Signed checkpoints: statements, signed with the store's Ed25519 key, that event ``seq``
of the chain had hash ``hash``.

Each checkpoint is kept in the database, in ``<data_dir>/audit/checkpoints.jsonl`` outside
it and, when the operator configures one, in an anchor outside the store
(:mod:`neural.mlops.server.audit.anchor`), so deleting checkpoints shows up. A checkpoint's
signature covers :data:`CHECKPOINT_CONTEXT` followed by the canonical JSON of its fields but
the signature (:meth:`Checkpoint.message`).

Kinds: ``periodic``, ``shutdown``, ``manual``, ``export``, ``rotation``, ``purge`` (the
chain continues from it after the events up to it were deleted) and ``acknowledged``
(an operator accepted a broken chain; verification continues from it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncConnection

from neural.mlops.server.audit import store
from neural.mlops.server.audit.hashchain import canonical_json
from neural.mlops.server.audit.signing import Keyring, verify_signature
from neural.mlops.server.clock import Clock, from_us, to_us
from neural.mlops.server.storage import Database

if TYPE_CHECKING:  # the anchor module builds on Checkpoint
    from neural.mlops.server.audit.anchor import CheckpointFile

CHECKPOINT_CONTEXT = b"neural-mlops-audit-checkpoint-v1\n"


@dataclass(slots=True)
class Checkpoint:
    """A signed statement that event ``seq`` of the chain had hash ``hash``."""

    seq: int
    hash: str
    created_us: int
    kind: str  # see the module docstring
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

    ``files`` are the copies outside the database: the store's ``checkpoints.jsonl`` and,
    when configured, the operator's anchor (:mod:`neural.mlops.server.audit.anchor`).
    ``lock`` is held by whoever verifies the chain up to its head and signs it (a
    checkpoint, a purge, a key rotation), so no two signers work from the same base."""

    def __init__(
        self, db: Database, clock: Clock, keys: Keyring, files: Sequence[CheckpointFile]
    ) -> None:
        self.db = db
        self.clock = clock
        self.keys = keys
        self.files = list(files)
        self.lock = asyncio.Lock()
        # The newest checkpoint this process signed or loaded: if it disappears while the
        # process runs, checkpoints were deleted, whatever the files say.
        self._newest: Checkpoint | None = None

    def sign(self, seq: int, hash_: str, kind: str) -> Checkpoint:
        key = self.keys.key
        cp = Checkpoint(seq, hash_, to_us(self.clock.now()), kind, key.key_id, "")
        cp.signature = key.sign(cp.message())
        return cp

    async def insert(self, conn: AsyncConnection, cp: Checkpoint) -> None:
        """Store ``cp`` in the caller's transaction; :meth:`append_to_files` after commit."""
        await store.insert_checkpoint(conn, asdict(cp))

    def append_to_files(self, cp: Checkpoint) -> None:
        # After the database commit: a crash in between leaves a checkpoint only in the
        # database, which verification accepts; the reverse would look like tampering.
        for file in self.files:
            file.append(cp)
        if self._newest is None or cp.seq >= self._newest.seq:
            self._newest = cp

    async def load(self) -> tuple[list[Checkpoint], list[tuple[int, str]]]:
        """The checkpoints of the database and the files whose signature verifies, by seq,
        and the problems found as (seq, why): a bad signature, an unknown key, a file line
        that is no checkpoint (seq 0), one in a file that the database lost, or one this
        process saw that is gone (deleted checkpoints). Problems up to the newest
        ``acknowledged`` checkpoint are the broken past an operator accepted: not reported."""
        self.keys.refresh()
        async with self.db.read() as conn:
            db_cps = [Checkpoint(*row) for row in await store.checkpoint_rows(conn)]
        problems: list[tuple[int, str]] = []
        found = [(cp, "database") for cp in db_cps]
        in_db = {cp.signature for cp in db_cps}
        for file in self.files:
            file_cps, unreadable = file.read()
            problems += unreadable
            found += [(cp, file.label) for cp in file_cps]
            problems += [
                (cp.seq, f"signed checkpoint at seq {cp.seq} in the {file.label} is missing "
                         "from the database (checkpoints deleted)")
                for cp in file_cps if cp.signature not in in_db
            ]
        valid: dict[str, Checkpoint] = {}
        for cp, source in found:
            why = self._signature_problem(cp, source)
            if why:
                problems.append((cp.seq, why))
            else:
                valid[cp.signature] = cp
        ordered = sorted(valid.values(), key=lambda cp: (cp.seq, cp.created_us))
        if self._newest is not None and self._newest.signature not in valid:
            problems.append(
                (
                    self._newest.seq,
                    f"signed checkpoint at seq {self._newest.seq}, "
                    "seen by this process, is gone (checkpoints deleted)",
                )
            )
        elif ordered:
            self._newest = ordered[-1]
        accepted = max((cp.seq for cp in ordered if cp.kind == "acknowledged"), default=-1)
        kept = [(seq, why) for seq, why in problems if seq > accepted]
        return ordered, sorted(kept, key=lambda problem: problem[0])

    async def checkpoints(self) -> list[Checkpoint]:
        """Every checkpoint found, by seq (:meth:`load` without the problems)."""
        return (await self.load())[0]

    def _signature_problem(self, cp: Checkpoint, source: str) -> str:
        """Why ``cp`` does not verify, or "" when it does."""
        pub = self.keys.public_key(cp.key_id)
        if pub is None:
            return f"checkpoint at seq {cp.seq} ({source}) is signed by unknown key {cp.key_id}"
        if not verify_signature(pub, cp.message(), cp.signature):
            return (f"checkpoint at seq {cp.seq} ({source}) has an invalid signature "
                    "(altered or forged)")
        return ""
