"""Artifacts in an S3-compatible object store (moto's server mode on a loopback port):
same streaming, hashing and no-partial-object rules as the folder store."""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import grpc
import pytest
from moto.server import ThreadedMotoServer
from support.processes import ServerProcess, start_server

from neural.mlops.errors import DataLoss, NotFound
from neural.mlops.registry import ModelRegistry
from neural.mlops.server.clock import ManualClock
from neural.mlops.server.registry.artifacts import ABANDONED_UPLOAD_SECONDS
from neural.mlops.server.registry.artifacts_s3 import PART_SIZE, S3ArtifactStore, S3Location
from neural.mlops.v1 import registry_pb2 as pb
from neural.mlops.v1.registry_pb2_grpc import RegistryServiceStub

AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    yield f"http://{host}:{port}"
    moto.stop()


@pytest.fixture
def s3(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    for key, value in AWS_ENV.items():
        monkeypatch.setenv(key, value)
    return boto3.client("s3", endpoint_url=endpoint)


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"art-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


def serve_s3(data_dir: Path, endpoint: str, bucket: str) -> ServerProcess:
    return start_server(data_dir, "--artifact-store", f"s3://{bucket}/team-a",
                        "--s3-endpoint-url", endpoint, env=AWS_ENV)


def keys(s3: Any, bucket: str) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", ()))


def uploads(s3: Any, bucket: str) -> list[str]:
    return [u["Key"] for u in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", ())]


def meta(name: str, version: str, **kw: object) -> pb.RegisterModelRequest:
    return pb.RegisterModelRequest(metadata=pb.RegisterModelMetadata(
        name=name, version=version, created_by="ds@x.com", **kw))  # type: ignore[arg-type]


def test_register_and_download_remote_and_embedded(
    tmp_path: Path, s3: Any, bucket: str, endpoint: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(2 * PART_SIZE + 12345))  # three parts, the last one short
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    srv = serve_s3(tmp_path / "data", endpoint, bucket)
    try:
        remote = ModelRegistry(srv.url)
        mv = remote.register_model(name="s3m", version="1", model_path=big, created_by="ds@x.com")
        assert mv.artifact.sha256 == hashlib.sha256(big.read_bytes()).hexdigest()
        assert mv.artifact.uri == "models/s3m/1/big.bin"
        remote.register_model(name="s3m", version="2", model_path=empty, created_by="ds@x.com")
        out = remote.download_artifact("s3m", "1", tmp_path / "out.bin")
        assert out.read_bytes() == big.read_bytes()
        assert remote.download_artifact("s3m", "2", tmp_path / "e.bin").read_bytes() == b""
        remote.delete_model_version("s3m", "2", deleted_by="ds@x.com")
    finally:
        srv.stop()
    assert keys(s3, bucket) == ["team-a/models/s3m/1/big.bin"]
    assert uploads(s3, bucket) == []
    assert not (tmp_path / "data" / "models").exists() or not any(
        p.is_file() for p in (tmp_path / "data" / "models").rglob("*"))

    monkeypatch.setenv("NEURAL_MLOPS_ARTIFACT_STORE", f"s3://{bucket}/embedded")
    monkeypatch.setenv("NEURAL_MLOPS_S3_ENDPOINT_URL", endpoint)
    embedded = ModelRegistry(tmp_path / "embedded-store")
    embedded.register_model(name="emb", version="1", model_path=big, created_by="ds@x.com")
    assert embedded.download_artifact("emb", "1", tmp_path / "o2.bin").read_bytes() == \
        big.read_bytes()
    assert "embedded/models/emb/1/big.bin" in keys(s3, bucket)


def test_an_upload_cut_off_half_way_leaves_no_object_and_no_upload(
    tmp_path: Path, s3: Any, bucket: str, endpoint: str,
) -> None:
    srv = serve_s3(tmp_path / "data", endpoint, bucket)
    try:
        stub = RegistryServiceStub(grpc.insecure_channel(srv.address))

        def dying() -> Iterator[pb.RegisterModelRequest]:
            yield meta("cut", "1", artifact_filename="model.bin")
            for _ in range(12):  # one 8 MiB part sent, the second half-way
                yield pb.RegisterModelRequest(chunk=os.urandom(1024 * 1024))
            raise ConnectionError("client died mid-upload")

        with pytest.raises((grpc.RpcError, ConnectionError)):
            stub.RegisterModel(dying())
        with pytest.raises(grpc.RpcError) as err:  # checksum mismatch: refused, aborted
            stub.RegisterModel(iter([meta("sum", "1", artifact_filename="m.bin",
                                          expected_sha256="0" * 64),
                                     pb.RegisterModelRequest(chunk=b"payload")]))
        assert err.value.code() == grpc.StatusCode.DATA_LOSS
        deadline = time.monotonic() + 10
        while uploads(s3, bucket) and time.monotonic() < deadline:
            time.sleep(0.1)  # the server aborts once it sees the cancellation
        with pytest.raises(NotFound):
            ModelRegistry(srv.url).get_model_version("cut", "1")
    finally:
        srv.stop()
    assert keys(s3, bucket) == []
    assert uploads(s3, bucket) == []


def test_a_corrupted_or_missing_object_is_data_loss(
    tmp_path: Path, s3: Any, bucket: str, endpoint: str,
) -> None:
    src = tmp_path / "w.bin"
    src.write_bytes(b"abc" * 1000)
    srv = serve_s3(tmp_path / "data", endpoint, bucket)
    try:
        registry = ModelRegistry(srv.url)
        registry.register_model(name="tamper", version="1", model_path=src, created_by="ds@x.com")
        registry.register_model(name="tamper", version="2", model_path=src, created_by="ds@x.com")
        s3.put_object(Bucket=bucket, Key="team-a/models/tamper/1/w.bin", Body=b"xyz" * 1000)
        s3.delete_object(Bucket=bucket, Key="team-a/models/tamper/2/w.bin")
        for version in ("1", "2"):
            with pytest.raises(DataLoss):
                registry.download_artifact("tamper", version, tmp_path / "out.bin")
            assert not (tmp_path / "out.bin").exists()
    finally:
        srv.stop()


def test_kill_9_during_uploads_leaves_no_orphan_object_after_restart(
    tmp_path: Path, s3: Any, bucket: str, endpoint: str,
) -> None:
    srv = serve_s3(tmp_path / "data", endpoint, bucket)
    src = tmp_path / "small.bin"
    src.write_bytes(b"kept" * 1000)
    ModelRegistry(srv.url).register_model(name="kept", version="1", model_path=src,
                                          created_by="ds@x.com")
    started = threading.Barrier(5)

    def slow_upload(i: int) -> None:
        def chunks() -> Iterator[pb.RegisterModelRequest]:
            yield meta("inflight", f"v{i}", artifact_filename="m.bin")
            started.wait()
            for _ in range(200):
                yield pb.RegisterModelRequest(chunk=os.urandom(1024 * 1024))
                time.sleep(0.05)

        try:
            RegistryServiceStub(grpc.insecure_channel(srv.address)).RegisterModel(chunks())
        except grpc.RpcError:
            pass

    threads = [threading.Thread(target=slow_upload, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    started.wait()
    deadline = time.monotonic() + 60
    while len(uploads(s3, bucket)) < 4 and time.monotonic() < deadline:
        time.sleep(0.1)  # every upload has sent a part
    assert len(uploads(s3, bucket)) == 4
    srv.kill9()
    for t in threads:
        t.join()
    # What a kill -9 between completing an upload and the commit leaves: an object
    # without a row.
    s3.put_object(Bucket=bucket, Key="team-a/models/ghost/1/m.bin", Body=b"no row")
    again = serve_s3(tmp_path / "data", endpoint, bucket)
    try:
        assert keys(s3, bucket) == ["team-a/models/kept/1/small.bin"]
        registry = ModelRegistry(again.url)
        assert registry.download_artifact("kept", "1", tmp_path / "k.bin").read_bytes() == \
            src.read_bytes()
        with pytest.raises(NotFound):
            registry.get_model_version("inflight", "v0")
    finally:
        again.stop()
    # The killed process's multipart uploads were never objects; the restart's sweep
    # aborted them (moto dates every upload 2010-11-10T20:48:33Z, so they look old).
    assert uploads(s3, bucket) == []


def test_the_sweep_aborts_only_uploads_older_than_any_still_running(
    s3: Any, bucket: str, endpoint: str,
) -> None:
    s3.create_multipart_upload(Bucket=bucket, Key="team-a/models/m/1/a.bin")
    initiated = s3.list_multipart_uploads(Bucket=bucket)["Uploads"][0]["Initiated"]
    young = ManualClock(initiated + timedelta(seconds=ABANDONED_UPLOAD_SECONDS - 60))
    store = S3ArtifactStore(S3Location(bucket, "team-a"), endpoint_url=endpoint, clock=young)
    asyncio.run(store.sweep())
    assert uploads(s3, bucket) == ["team-a/models/m/1/a.bin"]  # maybe another replica's
    store.clock = ManualClock(initiated + timedelta(seconds=ABANDONED_UPLOAD_SECONDS + 60))
    asyncio.run(store.sweep())
    assert uploads(s3, bucket) == []
