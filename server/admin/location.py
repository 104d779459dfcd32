"""Where a store lives: its database (a URL, or the SQLite file in the data dir), its
artifacts (under the data dir's ``models/``, or in an S3-compatible store) and its data dir
(the checkpoint anchor and purge archives under ``audit/``, the audit signing keys, by
default under ``keys/``)."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from neural.mlops.server.audit.config import AuditConfig
from neural.mlops.server.registry.artifacts import ArtifactStore, open_artifact_store
from neural.mlops.server.storage import Database

CHECKPOINT_ANCHOR = Path("audit") / "checkpoints.jsonl"
ARCHIVE_DIR = Path("audit") / "archive"


@dataclass(frozen=True, slots=True)
class StoreLocation:
    data_dir: Path
    database_url: str = ""  # "" = the SQLite file in data_dir
    artifact_store: str = ""  # "" = data_dir/models; or s3://BUCKET[/PREFIX]
    s3_endpoint_url: str = ""

    @classmethod
    def parse(cls, text: str, data_dir: Path | None = None, *, artifact_store: str = "",
              s3_endpoint_url: str = "") -> StoreLocation:
        """``DIR`` (a store folder) or a database ``URL`` (files in ``data_dir``)."""
        objects = {"artifact_store": artifact_store, "s3_endpoint_url": s3_endpoint_url}
        if "://" in text:
            return cls(Path(data_dir or ".").resolve(), text, **objects)
        return cls(Path(text).resolve(), "", **objects)

    def artifacts(self) -> ArtifactStore:
        """The store's artifacts: the data dir's folder, or its S3-compatible store."""
        return open_artifact_store(self.artifact_store, self.data_dir,
                                   endpoint_url=self.s3_endpoint_url)

    def same_artifacts(self, other: StoreLocation) -> bool:
        """Whether both name the same artifacts (nothing to copy between them)."""
        if self.artifact_store or other.artifact_store:
            return (self.artifact_store, self.s3_endpoint_url) == \
                (other.artifact_store, other.s3_endpoint_url)
        return self.data_dir == other.data_dir

    @property
    def engine(self) -> str:
        return self.database_url.split("+", 1)[0].split(":", 1)[0] if self.database_url \
            else "sqlite"

    @property
    def key_path(self) -> Path:
        """The audit signing key (``NEURAL_MLOPS_AUDIT_KEY_FILE`` or the data dir's)."""
        return AuditConfig.load(self.data_dir).key_path

    def key_files(self) -> list[tuple[Path, Path]]:
        """(path, name inside a copy) of the private key, its public half and the retired
        public keys that still verify older checkpoints."""
        key = self.key_path
        found = [(p, Path(p.name)) for p in (key, key.with_suffix(".pub")) if p.is_file()]
        retired = key.parent / "retired"
        if retired.is_dir():
            found += [(p, Path("retired") / p.name) for p in sorted(retired.glob("*.pub"))]
        return found

    async def open(self, *, migrate: bool) -> Database:
        if self.database_url:
            return await Database.open(self.database_url, migrate=migrate)
        return await Database.open_dir(self.data_dir, migrate=migrate)

    def masked_url(self) -> str:
        """The database for messages (no password)."""
        if not self.database_url:
            return str(self.data_dir)
        if "@" not in self.database_url:
            return self.database_url
        scheme, rest = self.database_url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"


def copy_file(src: Path, dst: Path, *, private: bool = False) -> None:
    """Copy a file and fsync it; ``private`` files (signing keys) get mode 0600."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with open(src, "rb") as fin, os.fdopen(fd, "wb") as fout:
        shutil.copyfileobj(fin, fout, 1024 * 1024)
        fout.flush()
        os.fsync(fout.fileno())
    tmp.replace(dst)
