"""The control-plane process: status codes on the wire, streaming limits, durability, shutdown."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import psutil
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from support.databases import execute_sql
from support.processes import ServerProcess, start_server
from support.status import details

from neural.mlops.errors import DataLoss, NotFound
from neural.mlops.registry import ModelRegistry
from neural.mlops.server.audit.hashchain import EVENT_FIELDS, GENESIS, event_hash
from neural.mlops.v1 import registry_pb2 as pb
from neural.mlops.v1.registry_pb2_grpc import RegistryServiceStub


def stub(server: ServerProcess) -> RegistryServiceStub:
    return RegistryServiceStub(grpc.insecure_channel(server.address))


def meta(name: str, version: str, **kw: object) -> pb.RegisterModelRequest:
    return pb.RegisterModelRequest(metadata=pb.RegisterModelMetadata(
        name=name, version=version, created_by="ds@x.com", **kw))  # type: ignore[arg-type]


def leftovers(data_dir: Path, name: str) -> list[Path]:
    return [
        p
        for p in (data_dir / "models").rglob("*")
        if p.is_file() and name in str(p) or ".staging" in str(p) and p.is_file()
    ]


@pytest.fixture
def server(shared_server: ServerProcess) -> ServerProcess:
    """The module's tests on a running server share one: each uses its own model names,
    and each checks it leaves no staging file behind."""
    return shared_server


def test_health_and_reflection(server: ServerProcess) -> None:
    channel = grpc.insecure_channel(server.address)
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "neural.mlops.v1.RegistryService"):
        resp = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert resp.status == health_pb2.HealthCheckResponse.SERVING
    refl = reflection_pb2_grpc.ServerReflectionStub(channel)
    answer = next(
        refl.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
    )
    names = {s.name for s in answer.list_services_response.service}
    assert {"neural.mlops.v1.RegistryService", "grpc.health.v1.Health"} <= names


def test_status_codes_on_the_wire(server: ServerProcess) -> None:
    s = stub(server)
    cases = [
        (
            lambda: s.GetModelVersion(pb.GetModelVersionRequest(name="nope", version="1")),
            grpc.StatusCode.NOT_FOUND,
        ),
        (lambda: s.RegisterModel(iter([meta("../x", "1")])), grpc.StatusCode.INVALID_ARGUMENT),
    ]
    s.RegisterModel(iter([meta("codes", "1")]))
    with pytest.raises(grpc.RpcError) as no_request:
        s.ApprovePromotion(
            pb.ApprovePromotionRequest(name="codes", version="1", approver="b@x.com")
        )
    assert no_request.value.code() == grpc.StatusCode.NOT_FOUND
    cases.append(
        (lambda: s.RegisterModel(iter([meta("codes", "1")])), grpc.StatusCode.ALREADY_EXISTS)
    )
    s.RequestPromotion(pb.RequestPromotionRequest(name="codes", version="1", requested_by="a@x.com",
                                                  target_stage=pb.MODEL_STAGE_PRODUCTION))
    cases += [
        (
            lambda: s.ApprovePromotion(
                pb.ApprovePromotionRequest(name="codes", version="1", approver="a@x.com")
            ),
            grpc.StatusCode.PERMISSION_DENIED,
        ),
        (
            lambda: s.TransitionStage(
                pb.TransitionStageRequest(
                    name="codes",
                    version="1",
                    actor="a@x.com",
                    target_stage=pb.MODEL_STAGE_PRODUCTION,
                )
            ),
            grpc.StatusCode.FAILED_PRECONDITION,
        ),
    ]
    for call, code in cases:
        with pytest.raises(grpc.RpcError) as err:
            call()
        assert err.value.code() == code, err.value.details()
    with pytest.raises(grpc.RpcError) as err:
        s.RegisterModel(iter([meta("codes", "../2")]))
    assert details(err.value).field_violations == [("version", "INVALID_FIELD")]


def test_upload_cut_off_half_way_leaves_no_row_and_no_file(server: ServerProcess) -> None:
    s = stub(server)

    def dying() -> Iterator[pb.RegisterModelRequest]:
        yield meta("cut", "1", artifact_filename="model.bin")
        for _ in range(8):
            yield pb.RegisterModelRequest(chunk=os.urandom(1024 * 1024))
        raise ConnectionError("client died mid-upload")

    with pytest.raises((grpc.RpcError, ConnectionError)):
        s.RegisterModel(dying())
    time.sleep(0.5)
    with pytest.raises(NotFound):
        ModelRegistry(server.url).get_model_version("cut", "1")
    assert leftovers(server.data_dir, "cut") == []


def test_checksum_mismatch_is_data_loss_and_leaves_nothing(server: ServerProcess) -> None:
    s = stub(server)
    msgs = [meta("sum", "1", artifact_filename="m.bin", expected_sha256="0" * 64),
            pb.RegisterModelRequest(chunk=b"payload")]
    with pytest.raises(grpc.RpcError) as err:
        s.RegisterModel(iter(msgs))
    assert err.value.code() == grpc.StatusCode.DATA_LOSS
    assert leftovers(server.data_dir, "sum") == []
    ok = s.RegisterModel(iter([meta("sum", "1", artifact_filename="m.bin",
                                    expected_sha256=hashlib.sha256(b"payload").hexdigest()),
                               pb.RegisterModelRequest(chunk=b"payload")]))
    assert ok.artifact.sha256 == hashlib.sha256(b"payload").hexdigest()


def test_large_upload_streams_without_holding_the_file_in_memory(
    server: ServerProcess, tmp_path: Path
) -> None:
    size = 400 * 1024 * 1024
    big = tmp_path / "big.bin"
    with open(big, "wb") as fh:
        block = os.urandom(1024 * 1024)
        for _ in range(size // len(block)):
            fh.write(block)
    proc = psutil.Process(server.proc.pid)
    base = proc.memory_info().rss
    peak = base
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, proc.memory_info().rss)
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        mv = ModelRegistry(server.url).register_model(
            name="big", version="1", model_path=big, created_by="ds@x.com")
    finally:
        done.set()
        sampler.join()
    assert mv.artifact.size_bytes == size
    # The server's memory grows by far less than the file it received.
    assert peak - base < size / 4, f"server RSS grew by {(peak - base) / 2**20:.0f} MiB"
    dest = ModelRegistry(server.url).download_artifact("big", "1", tmp_path / "back.bin")
    assert dest.stat().st_size == size


def test_kill_9_right_after_acknowledged_registers_loses_nothing(tmp_path: Path) -> None:
    srv = start_server(tmp_path / "data")
    registry = ModelRegistry(srv.url)
    acknowledged = []
    for i in range(40):
        registry.register_model(name="durable", version=f"v{i}", created_by="ds@x.com",
                                metrics={"accuracy": i / 40})
        acknowledged.append(f"v{i}")
    srv.kill9()
    again = start_server(tmp_path / "data")
    try:
        versions = []
        token = ""
        while True:
            page = ModelRegistry(again.url).list_versions("durable", page_size=7, page_token=token)
            versions += [v.version for v in page]
            if not (token := page.next_page_token):
                break
        assert versions == acknowledged
    finally:
        again.stop()
    (stored,) = execute_sql(tmp_path / "data",
                            f"SELECT {', '.join(EVENT_FIELDS)} FROM audit_events ORDER BY seq")
    rows = [dict(zip(EVENT_FIELDS, r, strict=True)) for r in stored]
    registered = [r for r in rows if r["event_type"] == "model_registered"]
    assert [r["resource_id"] for r in registered] == [f"durable:{v}" for v in acknowledged]
    prev = GENESIS
    for r in rows:
        row = dict(r)
        row["details"] = json.loads(row["details"])
        assert row["prev_hash"] == prev and event_hash(row) == row["hash"]
        prev = row["hash"]


def test_sigterm_drains_and_exits_zero(tmp_path: Path) -> None:
    srv = start_server(tmp_path / "data")
    ModelRegistry(srv.url).register_model(name="m", version="1", created_by="ds@x.com")
    assert srv.stop() == 0


def test_remote_download_of_tampered_artifact_is_data_loss(
    server: ServerProcess, tmp_path: Path
) -> None:
    src = tmp_path / "w.bin"
    src.write_bytes(b"abc" * 1000)
    mv = ModelRegistry(server.url).register_model(name="tamper", version="1", model_path=src,
                                                  created_by="ds@x.com")
    (server.data_dir / mv.artifact.uri).write_bytes(b"xyz" * 1000)
    with pytest.raises(DataLoss):
        ModelRegistry(server.url).download_artifact("tamper", "1", tmp_path / "out.bin")
    assert not (tmp_path / "out.bin").exists()
