"""The outside probe (#15) as a bounded CI test: oversized requests beside a health check,
kill -9 under concurrent artifact uploads, and what must hold after each."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from support.databases import execute_sql
from support.processes import ServerProcess, start_server

from neural.mlops.errors import MLOpsError
from neural.mlops.registry import ModelRegistry
from neural.mlops.v1 import registry_pb2, registry_pb2_grpc

HUGE = 100_000


@pytest.fixture
def server(shared_server: ServerProcess) -> ServerProcess:
    """The refusals below change nothing: their tests share the module's control plane."""
    return shared_server


def _huge_requests() -> list[tuple[str, object]]:
    return [
        ("SearchModelVersions", registry_pb2.SearchModelVersionsRequest(tags=["a"] * HUGE)),
        ("SearchModelVersions", registry_pb2.SearchModelVersionsRequest(
            metric_conditions=[registry_pb2.MetricCondition(
                metric="m", op=registry_pb2.COMPARISON_OPERATOR_GREATER, value=1)] * HUGE)),
        ("UpdateModelVersion", registry_pb2.UpdateModelVersionRequest(
            name="m", version="v", updated_by="a@x.com",
            set_metrics={f"k{i}": float(i) for i in range(HUGE)})),
        ("ListModels", registry_pb2.ListModelsRequest(name_prefix="a" * 60_000)),
    ]


def test_a_huge_request_is_refused_at_once_while_health_checks_answer(
    server: ServerProcess,
) -> None:
    """The probe's stall: 100k tags ran past a 55 s deadline and a health check waited 42 s."""
    health_waits: list[float] = []
    stop = threading.Event()

    def probe_health() -> None:
        with grpc.insecure_channel(server.address) as ch:
            stub = health_pb2_grpc.HealthStub(ch)
            while not stop.is_set():
                t = time.monotonic()
                stub.Check(health_pb2.HealthCheckRequest(), timeout=10)
                health_waits.append(time.monotonic() - t)
                time.sleep(0.02)

    checker = threading.Thread(target=probe_health)
    checker.start()
    try:
        with grpc.insecure_channel(server.address) as ch:
            stub = registry_pb2_grpc.RegistryServiceStub(ch)
            for method, request in _huge_requests():
                with pytest.raises(grpc.RpcError) as err:
                    getattr(stub, method)(request, timeout=20)
                assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT, method
                assert "at most" in (err.value.details() or "")
                assert len(err.value.details() or "") < 300  # names the limit, echoes nothing
    finally:
        stop.set()
        checker.join()
    assert health_waits and max(health_waits) < 1.0


def _upload(url: str, i: int, src: Path, errors: list[str]) -> None:
    try:
        ModelRegistry(url, timeout=10).register_model(
            name="probe", version=f"v{i}", model_path=str(src), created_by="ds@x.com")
    except MLOpsError as exc:  # the kill cuts calls off: fine, as long as nothing is left
        errors.append(type(exc).__name__)


def test_no_artifact_file_without_a_row_after_kill9_under_concurrent_uploads(
    tmp_path: Path,
) -> None:
    """The probe found complete model files with no row after kill -9 (moved into place
    before the commit). After each kill and restart, every file under models/ has its row."""
    src = tmp_path / "model.bin"
    src.write_bytes(b"w" * (3 * 1024 * 1024 + 17))
    data = tmp_path / "data"
    n = 0
    for round_ in range(3):
        srv = start_server(data)
        errors: list[str] = []
        threads = [threading.Thread(target=_upload, args=(srv.url, n + k, src, errors))
                   for k in range(6)]
        n += 6
        for t in threads:
            t.start()
        time.sleep(0.15 + 0.1 * round_)
        srv.kill9()
        for t in threads:
            t.join()
        srv = start_server(data)  # the start-up sweep runs here
        try:
            registry = ModelRegistry(srv.url)
            rows = {v.version for v in registry.list_versions("probe", page_size=1000)} \
                if any(m.name == "probe" for m in registry.list_models()) else set()
            files = {p.parent.name for p in (data / "models" / "probe").glob("*/model.bin")} \
                if (data / "models" / "probe").is_dir() else set()
            assert files <= rows, f"round {round_}: files without a row: {files - rows}"
            for version in rows:
                assert registry.get_model_version("probe", version).artifact.stored
        finally:
            srv.stop()


def _checkpoints(data: Path) -> tuple[int, int]:
    rows = execute_sql(data, "SELECT count(*) FROM audit_checkpoints")[0][0][0]
    anchor = data / "audit" / "checkpoints.jsonl"
    lines = len(anchor.read_text().splitlines()) if anchor.exists() else 0
    return rows, lines


def test_audit_verify_of_a_folder_reads_without_writing(tmp_path: Path) -> None:
    """`audit verify --target DIR` wrote a checkpoint into the store it verified."""
    data = tmp_path / "store"
    srv = start_server(data)
    try:
        ModelRegistry(srv.url).register_model(name="m", version="v1", created_by="a@x.com",
                                              artifact_uri="s3://b/k")
    finally:
        srv.stop()
    before = _checkpoints(data)
    out = subprocess.run([sys.executable, "-m", "neural.mlops", "audit", "verify", "--target",
                          str(data)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert _checkpoints(data) == before


def _bad_times() -> list[tuple[str, str, object, str]]:
    from google.protobuf.timestamp_pb2 import Timestamp

    from neural.mlops.v1 import audit_pb2, experiments_pb2

    year_10000 = Timestamp(seconds=253_402_300_800)
    bad_nanos = Timestamp(seconds=0, nanos=2_000_000_000)
    huge = Timestamp(seconds=2**62)
    return [
        ("AuditService", "GenerateComplianceReport",
         audit_pb2.GenerateReportRequest(start_time=bad_nanos, end_time=year_10000),
         "start_time"),
        ("AuditService", "Purge", audit_pb2.PurgeRequest(before=huge), "before"),
        ("ExperimentService", "RecordOutcome", experiments_pb2.RecordOutcomeRequest(
            test_id="t", unit_id="u", success=True, timestamp=year_10000), "timestamp"),
        ("ExperimentService", "AnalyzeTest",
         experiments_pb2.AnalyzeTestRequest(test_id="t", since=bad_nanos), "since"),
    ]


@pytest.mark.parametrize("case", range(4))
def test_timestamps_outside_their_range_are_invalid_arguments(
    server: ServerProcess, case: int
) -> None:
    """Year 10000, nanos = 2e9 or 2^62 seconds answered UNKNOWN (OverflowError) or were
    silently accepted; each names its field."""
    from neural.mlops.v1 import audit_pb2_grpc, experiments_pb2_grpc

    service, method, request, field = _bad_times()[case]
    stubs = {"AuditService": audit_pb2_grpc.AuditServiceStub,
             "ExperimentService": experiments_pb2_grpc.ExperimentServiceStub}
    with grpc.insecure_channel(server.address) as ch:
        with pytest.raises(grpc.RpcError) as err:
            getattr(stubs[service](ch), method)(request, timeout=20)
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert field in (err.value.details() or "")


def test_a_port_in_use_is_one_line_not_a_traceback(server: ServerProcess, tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "neural.mlops", "serve", "--data-dir", str(tmp_path / "other"),
         "--listen", server.address], capture_output=True, text=True, timeout=60)
    assert out.returncode == 8
    assert "Traceback" not in out.stderr
    assert f"error: cannot listen on {server.address}" in out.stderr
