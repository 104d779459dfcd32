"""``admin backup``, ``restore`` and ``migrate-store`` with artifacts in an S3-compatible
object store (moto's server mode on a loopback port, as tests/test_artifacts_s3.py): the
objects are read, verified and written through the artifact stores, folder or S3 on
either side, and the result is checked by serving it."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
from support.databases import store_args
from support.processes import start_server
from test_artifacts_s3 import AWS_ENV, bucket, endpoint, keys, s3  # noqa: F401 - fixtures

from neural.mlops.audit import AuditLogger
from neural.mlops.registry import ModelRegistry

pytestmark = pytest.mark.storage


def _admin(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "neural.mlops", "admin", *args],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, **AWS_ENV})


def _objects(store: str, url: str) -> list[str]:
    return ["--artifact-store", store, "--s3-endpoint-url", url]


def _register(url: str, weights: Path, versions: int) -> None:
    registry = ModelRegistry(url)
    for i in range(versions):
        registry.register_model(name="fraud", version=f"v{i}", model_path=weights,
                                created_by="ds@x.com")


def _check_served(data: Path, weights: Path, tmp: Path, *args: str) -> None:
    srv = start_server(data, *args, env=AWS_ENV)
    try:
        registry = ModelRegistry(srv.url)
        got = registry.download_artifact("fraud", "v1", tmp / "back.bin")
        assert got.read_bytes() == weights.read_bytes()
        assert AuditLogger(srv.url).verify_chain().valid
    finally:
        srv.stop()


def test_backup_and_restore_a_store_whose_artifacts_are_in_s3(
    tmp_path: Path, s3: Any, bucket: str, endpoint: str,  # noqa: F811 - fixtures
) -> None:
    weights = tmp_path / "w.bin"
    weights.write_bytes(os.urandom(300_000))
    data = tmp_path / "data"
    source = _objects(f"s3://{bucket}/live", endpoint)
    srv = start_server(data, *source, env=AWS_ENV)
    try:
        _register(srv.url, weights, 2)
    finally:
        srv.stop()

    archive = tmp_path / "store.backup"
    out = _admin("backup", *store_args(data), *source, "--output", str(archive), "--json")
    assert out.returncode == 0, out.stderr
    with tarfile.open(archive) as tar:
        member = tar.extractfile("files/models/fraud/v1/w.bin")
        assert member is not None and member.read() == weights.read_bytes()

    restored = tmp_path / "restored"
    target = _objects(f"s3://{bucket}/restored", endpoint)
    out = _admin("restore", *store_args(restored), *target, "--input", str(archive), "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["chain_valid"]
    assert [k for k in keys(s3, bucket) if k.startswith("restored/")] == [
        "restored/models/fraud/v0/w.bin", "restored/models/fraud/v1/w.bin"]
    assert not (restored / "models").exists()  # nothing beside the object store
    _check_served(restored, weights, tmp_path, *target)


def test_a_backup_refuses_an_s3_object_changed_behind_the_store(
    tmp_path: Path, s3: Any, bucket: str, endpoint: str,  # noqa: F811 - fixtures
) -> None:
    weights = tmp_path / "w.bin"
    weights.write_bytes(os.urandom(10_000))
    data = tmp_path / "data"
    source = _objects(f"s3://{bucket}/live", endpoint)
    srv = start_server(data, *source, env=AWS_ENV)
    try:
        _register(srv.url, weights, 2)
    finally:
        srv.stop()
    s3.put_object(Bucket=bucket, Key="live/models/fraud/v1/w.bin", Body=b"tampered")
    archive = tmp_path / "store.backup"
    out = _admin("backup", *store_args(data), *source, "--output", str(archive))
    assert out.returncode == 7 and "fraud/v1/w.bin" in out.stderr  # DATA_LOSS
    assert not archive.exists()
    assert [p for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_migrate_store_moves_folder_artifacts_into_s3_and_postgresql(
    tmp_path: Path, s3: Any, bucket: str, endpoint: str,  # noqa: F811 - fixtures
    postgres_url: str,
) -> None:
    weights = tmp_path / "w.bin"
    weights.write_bytes(os.urandom(200_000))
    source = tmp_path / "sqlite-store"
    srv = start_server(source, "--database-url", "")  # SQLite, artifacts in its folder
    try:
        _register(srv.url, weights, 3)
    finally:
        srv.stop()

    target = tmp_path / "pg-data"
    objects = _objects(f"s3://{bucket}/migrated", endpoint)
    out = _admin("migrate-store", "--from", str(source), "--to", postgres_url,
                 "--data-dir", str(target), *objects, "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["chain_valid"]
    stored = [k for k in keys(s3, bucket) if k.startswith("migrated/")]
    assert stored == [f"migrated/models/fraud/v{i}/w.bin" for i in range(3)]
    body = s3.get_object(Bucket=bucket, Key=stored[1])["Body"].read()
    assert hashlib.sha256(body).digest() == hashlib.sha256(weights.read_bytes()).digest()
    _check_served(target, weights, tmp_path, "--database-url", postgres_url, *objects)
