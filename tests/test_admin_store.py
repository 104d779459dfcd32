"""``neural-mlops admin``: migrate-store (an SQLite store into PostgreSQL), backup (an
online snapshot while traffic runs) and restore, each checked by serving the result."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

from support.databases import store_args
from support.processes import start_server

from neural.mlops.audit import AuditLogger
from neural.mlops.registry import ModelRegistry


def _admin(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    out = subprocess.run([sys.executable, "-m", "neural.mlops", "admin", *args],
                         capture_output=True, text=True, timeout=300)
    if check and out.returncode != 0:
        raise AssertionError(f"admin {args[0]} exited {out.returncode}: {out.stderr}")
    return out


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_migrate_store_copies_an_sqlite_store_into_postgresql(
    tmp_path: Path, postgres_url: str
) -> None:
    source = tmp_path / "sqlite-store"
    weights = tmp_path / "w.bin"
    weights.write_bytes(os.urandom(200_000))
    srv = start_server(source, "--database-url", "")  # SQLite whatever the engine under test
    try:
        registry = ModelRegistry(srv.url)
        for i in range(3):
            registry.register_model(name="fraud", version=f"v{i}", model_path=weights,
                                    created_by="ds@x.com", metrics={"auc": 0.8 + i / 100})
        AuditLogger(srv.url).checkpoint()
    finally:
        srv.stop()

    target = tmp_path / "pg-data"
    out = _admin("migrate-store", "--from", str(source), "--to", postgres_url,
                 "--data-dir", str(target), "--json")
    report = json.loads(out.stdout)
    assert report["chain_valid"] and report["checkpoints_checked"] >= 1
    assert report["rows"]["model_versions"] == 3
    assert stat.S_IMODE((target / "keys" / "audit_ed25519.pem").stat().st_mode) == 0o600

    again = _admin("migrate-store", "--from", str(source), "--to", postgres_url,
                   "--data-dir", str(target), check=False)
    assert again.returncode == 5 and "not empty" in again.stderr  # FAILED_PRECONDITION

    srv = start_server(target, "--database-url", postgres_url)
    try:
        registry = ModelRegistry(srv.url)
        got = registry.download_artifact("fraud", "v1", tmp_path / "back.bin")
        assert _sha(got) == _sha(weights)
        # New rows after the copy: serial ids continue past the copied ones.
        registry.register_model(name="fraud", version="v3", model_path=weights,
                                created_by="ds@x.com")
        assert [v.version for v in registry.list_versions("fraud")] == ["v0", "v1", "v2", "v3"]
        result = AuditLogger(srv.url).verify_chain()
        assert result.valid, result.reason
    finally:
        srv.stop()


def test_backup_while_traffic_runs_restores_a_store_that_verifies(tmp_path: Path) -> None:
    data = tmp_path / "data"
    weights = tmp_path / "w.bin"
    weights.write_bytes(os.urandom(50_000))
    srv = start_server(data, env={"NEURAL_MLOPS_AUDIT_CHECKPOINT_SECONDS": "0.2"})
    acknowledged: list[str] = []
    stop = threading.Event()

    def traffic() -> None:
        registry = ModelRegistry(srv.url)
        audit = AuditLogger(srv.url)
        i = 0
        while not stop.is_set():
            registry.register_model(name="m", version=f"v{i}", model_path=weights,
                                    created_by="ds@x.com")
            audit.log_event("custom", user="ops@x.com", resource_type="job",
                            resource_id=str(i), action="run")
            acknowledged.append(f"v{i}")
            i += 1

    writer = threading.Thread(target=traffic)
    try:
        writer.start()
        while len(acknowledged) < 5:
            time.sleep(0.05)
        before = len(acknowledged)
        backup = tmp_path / "out" / "store.backup"
        out = json.loads(_admin("backup", *store_args(data), "--output", str(backup),
                                "--json").stdout)
        after = len(acknowledged)
        stop.set()
        writer.join()
    finally:
        stop.set()
        srv.stop()

    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    assert before <= out["rows"]["model_versions"] <= after + 1
    assert out["audit_head"]["seq"] > 0

    restored = tmp_path / "restored"
    report = json.loads(_admin("restore", *store_args(restored), "--input", str(backup),
                               "--json").stdout)
    assert report["chain_valid"] and report["head_seq"] == out["audit_head"]["seq"]
    assert report["checkpoints_checked"] >= 1
    assert stat.S_IMODE((restored / "keys" / "audit_ed25519.pem").stat().st_mode) == 0o600

    srv = start_server(restored)
    try:
        registry = ModelRegistry(srv.url)
        versions = [v.version for v in registry.list_versions("m", page_size=1000)]
        assert versions == acknowledged[:len(versions)]  # a prefix: nothing torn
        assert len(versions) == out["rows"]["model_versions"]
        got = registry.download_artifact("m", versions[-1], tmp_path / "back.bin")
        assert _sha(got) == _sha(weights)
        audit = AuditLogger(srv.url)
        result = audit.verify_chain()
        assert result.valid, result.reason
        assert audit.list_checkpoints()
    finally:
        srv.stop()


def test_a_damaged_backup_or_a_used_store_is_refused_and_nothing_is_written(
    tmp_path: Path
) -> None:
    data = tmp_path / "data"
    srv = start_server(data)
    try:
        ModelRegistry(srv.url).register_model(name="m", version="1", created_by="ds@x.com")
    finally:
        srv.stop()
    backup = tmp_path / "store.backup"
    _admin("backup", *store_args(data), "--output", str(backup))
    assert _admin("backup", *store_args(data), "--output", str(backup),
                  check=False).returncode == 5  # never overwrites

    damaged = tmp_path / "damaged.backup"
    damaged.write_bytes(backup.read_bytes()[:-200])
    target = tmp_path / "target"
    out = _admin("restore", *store_args(target), "--input", str(damaged), check=False)
    assert out.returncode == 7, out.stderr  # DATA_LOSS
    assert not (target / "models").exists() and not (target / "keys").exists()

    out = _admin("restore", *store_args(data), "--input", str(backup), check=False)
    assert out.returncode == 5 and "not empty" in out.stderr


def test_restore_moves_a_store_between_engines(tmp_path: Path, postgres_url: str) -> None:
    """A backup is engine-neutral: an SQLite store's backup restores into PostgreSQL."""
    data = tmp_path / "sqlite"
    srv = start_server(data, "--database-url", "")
    try:
        ModelRegistry(srv.url).register_model(name="m", version="1", created_by="ds@x.com")
    finally:
        srv.stop()
    backup = tmp_path / "store.backup"
    _admin("backup", "--data-dir", str(data), "--output", str(backup))
    report = json.loads(_admin("restore", "--data-dir", str(tmp_path / "pg"), "--database-url",
                               postgres_url, "--input", str(backup), "--json").stdout)
    assert report["chain_valid"] and report["rows"]["model_versions"] == 1
