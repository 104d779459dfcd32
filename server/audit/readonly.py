"""Verifying a store folder without writing to it (``neural-mlops audit verify --target
DIR``): the database opened read-only with no migration, the key only read, nothing
signed or recorded, so verifying cannot change the evidence it looks at.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote

from sqlalchemy.engine import URL

from neural.mlops.server.audit.anchor import CheckpointFile, anchor_file
from neural.mlops.server.audit.checkpoints import CheckpointLedger
from neural.mlops.server.audit.config import AuditConfig
from neural.mlops.server.audit.signing import Keyring
from neural.mlops.server.audit.verification import ChainVerifier
from neural.mlops.server.audit.verify import ChainVerification
from neural.mlops.server.clock import SystemClock
from neural.mlops.server.errors import FailedPrecondition, NotFound
from neural.mlops.server.storage import Database
from neural.mlops.server.storage.database import DB_FILENAME


async def verify_store(
    data_dir: str | os.PathLike[str],
    *,
    anchor: str | os.PathLike[str] | None = None,
    pins: Mapping[int, str] | None = None,
) -> ChainVerification:
    """:meth:`AuditService.verify_chain` on the store in ``data_dir``, read-only."""
    folder = Path(data_dir).expanduser().resolve()
    db_file = folder / DB_FILENAME
    if not db_file.is_file():
        raise NotFound(f"no store at {folder} ({DB_FILENAME} is missing)", field="target")
    config = AuditConfig.load(folder)
    if not config.key_path.is_file():
        raise FailedPrecondition(f"no audit key at {config.key_path}: set "
                                 "NEURAL_MLOPS_AUDIT_KEY_FILE to the store's key", field="target")
    files = [CheckpointFile(folder / "audit" / "checkpoints.jsonl", "store's checkpoints.jsonl")]
    if anchor:
        files.append(anchor_file(anchor))
    # A SQLite URI names the file percent-encoded; SQLAlchemy's URL then escapes that.
    url = URL.create("sqlite+aiosqlite", database=f"file:{quote(str(db_file))}",
                     query={"mode": "ro", "uri": "true"})
    db = await Database.open(url.render_as_string(), migrate=False)
    try:
        ledger = CheckpointLedger(db, SystemClock(), Keyring(config.key_path), files)
        return await ChainVerifier(db, ledger, config.checkpoint_interval).verify_chain(pins)
    finally:
        await db.close()
