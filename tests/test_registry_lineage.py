"""Lineage on every model version: recorded once at registration, validated, searchable,
compared, in the registration's audit event and in the compliance report, embedded and
remote alike."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from support.processes import ServerProcess, start_server

from neural.mlops.audit import AuditLogger, EventType
from neural.mlops.errors import InvalidArgument, NotFound
from neural.mlops.registry import (
    DataReference,
    Lineage,
    ModelRegistry,
    Signature,
    TensorDatatype,
    TensorSpec,
)
from neural.mlops.server.storage.database import DB_FILENAME, MIGRATIONS, Database, sqlite_url
from neural.mlops.v1 import registry_pb2 as pb
from neural.mlops.v1.registry_pb2_grpc import RegistryServiceStub

COMMIT = "9FCEB02D0AE598E95DC970B74767F19372D61AF8"
DIGEST = "sha256:" + "ab" * 32
_names = itertools.count()


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = start_server(tmp_path_factory.mktemp("lineage-server"))
    yield srv
    srv.stop()


@pytest.fixture(params=["embedded", "remote"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "embedded":
        return str(tmp_path / "store")
    return request.getfixturevalue("shared_server").url


@pytest.fixture
def name() -> str:
    return f"lineage_{os.getpid()}_{next(_names)}"


def _register(registry: ModelRegistry, name: str, version: str, **lineage: Any) -> Any:
    return registry.register_model(name, version, f"s3://models/{name}/{version}",
                                   created_by="ana@example.com", **lineage)


def _full(parent: str = "1.0.0") -> dict[str, Any]:
    return dict(
        source_run_id="run-42", source_uri="mlflow://runs/run-42", code_revision=COMMIT,
        training_data=["s3://data/train.parquet", ("s3://data/val.parquet", DIGEST)],
        parent_version=parent,
        signature={"inputs": [("features", "fp32", [-1, 12]), ("ids", "BYTES", [-1])],
                   "outputs": [{"name": "churn", "datatype": "FP32", "shape": [-1]}]},
    )


def test_lineage_is_recorded_normalized_and_read_back(location: str, name: str) -> None:
    registry = ModelRegistry(location)
    _register(registry, name, "1.0.0")
    registry.set_alias(name, "champion", "1.0.0", actor="lee@example.com")
    registered = _register(registry, name, "1.1.0", **_full(parent="@champion"))
    expected = Lineage(
        source_run_id="run-42", source_uri="mlflow://runs/run-42",
        code_revision=COMMIT.lower(),
        training_data=[DataReference("s3://data/train.parquet"),
                       DataReference("s3://data/val.parquet", DIGEST)],
        parent_version="1.0.0",  # the alias as it pointed at registration
        signature=Signature(
            inputs=[TensorSpec("features", TensorDatatype.FP32, [-1, 12]),
                    TensorSpec("ids", TensorDatatype.BYTES, [-1])],
            outputs=[TensorSpec("churn", TensorDatatype.FP32, [-1])],
        ),
    )
    assert registered.lineage == expected
    read = registry.get_model_version(name, "1.1.0")
    assert read.lineage == expected
    assert read.lineage.signature.inputs[0].datatype is TensorDatatype.FP32
    assert registry.get_model_version(name, "1.0.0").lineage.empty
    # The same through a Lineage object.
    again = registry.register_model(name, "1.2.0", "s3://m/1.2.0", created_by="a@example.com",
                                    lineage=expected)
    assert again.lineage == expected


def test_a_field_given_twice_is_refused(tmp_path: Path, name: str) -> None:
    registry = ModelRegistry(tmp_path / "store")
    with pytest.raises(InvalidArgument) as err:
        _register(registry, name, "1", lineage=Lineage(source_run_id="a"), source_run_id="b")
    assert err.value.field == "lineage.source_run_id"


@pytest.mark.parametrize(
    ("lineage", "field"),
    [
        (dict(code_revision="abc12"), "lineage.code_revision"),  # 5 digits
        (dict(code_revision="z" * 7), "lineage.code_revision"),
        (dict(code_revision="a" * 41), "lineage.code_revision"),
        (dict(source_run_id="has space"), "lineage.source_run_id"),
        (dict(source_run_id="r" * 257), "lineage.source_run_id"),
        (dict(source_uri="relative/path"), "lineage.source_uri"),
        (dict(source_uri="s3://b/" + "x" * 2048), "lineage.source_uri"),
        (dict(source_uri="s3://b/caf\u00e9"), "lineage.source_uri"),
        (dict(training_data=["not a uri"]), "lineage.training_data[0].uri"),
        (dict(training_data=[("s3://d/x", "sha256:XYZ")]), "lineage.training_data[0].digest"),
        (dict(training_data=[("s3://d/x", "no-algorithm")]), "lineage.training_data[0].digest"),
        (dict(training_data=["s3://d/x", "s3://d/x"]), "lineage.training_data[1].uri"),
        (dict(training_data=[f"s3://d/{i}" for i in range(101)]), "lineage.training_data"),
        (dict(parent_version="a/b"), "lineage.parent_version"),
        (dict(signature={"inputs": [("x", "FP99", [1])]}), "lineage.signature.inputs[0].datatype"),
        (dict(signature={"inputs": [("x", "FP32", [-2])]}), "lineage.signature.inputs[0].shape"),
        (dict(signature={"inputs": [("x", "FP32", [1.5])]}), "lineage.signature.inputs[0].shape"),
        (dict(signature={"outputs": [("", "FP32", [1])]}), "lineage.signature.outputs[0].name"),
        (dict(signature={"outputs": [("y", "FP32"), ("y", "FP16")]}),
         "lineage.signature.outputs[1].name"),
        (dict(signature={"inputs": [("x", "FP32", [1] * 33)]}),
         "lineage.signature.inputs[0].shape"),
    ],
)
def test_invalid_lineage_is_refused_naming_the_field(
    location: str, name: str, lineage: dict[str, Any], field: str
) -> None:
    registry = ModelRegistry(location)
    with pytest.raises(InvalidArgument) as err:
        _register(registry, name, "1", **lineage)
    assert err.value.field == field
    assert registry.list_models(name_prefix=name).items == []


def test_the_parent_must_be_an_existing_other_version(location: str, name: str) -> None:
    registry = ModelRegistry(location)
    with pytest.raises(NotFound) as err:
        _register(registry, name, "1", parent_version="0.9")
    assert err.value.field == "lineage.parent_version"
    _register(registry, name, "1")
    for parent in ("0.9", "@nobody"):
        with pytest.raises(NotFound):
            _register(registry, name, "2", parent_version=parent)
    with pytest.raises(InvalidArgument):
        _register(registry, name, "2", parent_version="2")
    assert [v.version for v in registry.list_versions(name)] == ["1"]


def test_versions_are_found_by_their_lineage(location: str, name: str) -> None:
    registry = ModelRegistry(location)
    _register(registry, name, "1.0.0", code_revision="1111111", training_data=["s3://d/may"])
    _register(registry, name, "1.1.0", **_full())
    _register(registry, name, "1.2.0", parent_version="1.1.0", source_run_id="run-43",
              training_data=[("s3://data/train.parquet", DIGEST)])

    def found(**kwargs: Any) -> list[str]:
        return [v.version for v in registry.search_models(name_prefix=name, **kwargs)]

    assert found(filter="run_id = run-42") == ["1.1.0"]
    assert found(filter="code_revision = 9fceb02") == ["1.1.0"]  # a short hash
    assert found(filter=f"code_revision = {COMMIT}") == ["1.1.0"]  # any case
    assert found(filter="parent = 1.0.0") == ["1.1.0"]
    assert found(filter="parent = '1.1.0'") == ["1.2.0"]
    assert found(filter="data = s3://data/train.parquet") == ["1.1.0", "1.2.0"]
    assert found(filter=f"data_digest = {DIGEST}") == ["1.1.0", "1.2.0"]
    assert found(filter="data = s3://data/train.parquet and run_id = run-43") == ["1.2.0"]
    assert found(source_run_id="run-42") == ["1.1.0"]
    assert found(code_revision="11111") == ["1.0.0"]
    assert found(parent_version="1.1.0", training_data_uri="s3://data/train.parquet") == ["1.2.0"]
    assert found(training_data_digest=DIGEST, filter="run_id = run-42") == ["1.1.0"]
    with pytest.raises(InvalidArgument):
        found(filter="parent > 1")
    with pytest.raises(InvalidArgument):
        found(filter="code_revision = %")


def test_compare_names_the_lineage_fields_that_differ(location: str, name: str) -> None:
    registry = ModelRegistry(location)
    _register(registry, name, "1.0.0", code_revision="1111111", training_data=["s3://d/may"])
    _register(registry, name, "1.1.0", **_full())
    lineage = registry.compare_models(name, "1.0.0", "1.1.0")["lineage"]
    assert lineage["changed"] == ["source_run_id", "source_uri", "code_revision",
                                  "training_data", "parent_version", "signature"]
    assert lineage["version1"]["training_data"] == [{"uri": "s3://d/may", "digest": ""}]
    assert lineage["version2"]["code_revision"] == COMMIT.lower()
    assert lineage["version2"]["signature"]["outputs"] == [
        {"name": "churn", "datatype": "FP32", "shape": [-1]}]
    assert registry.compare_models(name, "1.1.0", "1.1.0")["lineage"]["changed"] == []


def test_the_audit_trail_and_the_compliance_report_carry_the_lineage(
    location: str, name: str
) -> None:
    registry = ModelRegistry(location)
    audit = AuditLogger(location)
    _register(registry, name, "1.0.0")
    _register(registry, name, "1.1.0", **_full())
    [event] = audit.query_events(resource_id=f"{name}:1.1.0",
                                 event_type=EventType.MODEL_REGISTERED)
    assert event.details["lineage"] == registry.get_model_version(name, "1.1.0").lineage.to_dict()
    assert "lineage" not in audit.query_events(resource_id=f"{name}:1.0.0")[0].details
    # Production changes with no approval before them: one of each lineage state.
    for version in ("1.1.0", "1.0.0", "0.1-elsewhere"):
        audit.log_model_deployment(model_name=name, version=version, user="ops@example.com",
                                   environment="production", strategy="manual")
    now = datetime.now(UTC)
    report = audit.generate_compliance_report(start_date=now - timedelta(hours=1),
                                              end_date=now + timedelta(minutes=1))
    mine = {c["resource_id"]: c["lineage"] for c in report.unapproved_production_changes
            if c["resource_id"].startswith(name + ":")}
    assert mine == {f"{name}:1.1.0": event.details["lineage"], f"{name}:1.0.0": {},
                    f"{name}:0.1-elsewhere": None}
    deployed = [d for d in report.deployments if d["resource_id"] == f"{name}:1.1.0"]
    assert deployed and deployed[0]["lineage"]["code_revision"] == COMMIT.lower()


def test_an_unspecified_or_unknown_datatype_on_the_wire_is_invalid_argument(
    shared_server: ServerProcess, name: str
) -> None:
    async def register(datatype: int) -> grpc.aio.AioRpcError:
        async with grpc.aio.insecure_channel(shared_server.address) as channel:
            stub = RegistryServiceStub(channel)
            meta = pb.RegisterModelMetadata(
                name=name, version="1", created_by="a@example.com", artifact_uri="s3://m/1",
                lineage=pb.Lineage(signature=pb.ModelSignature(
                    inputs=[pb.TensorSpec(name="x", datatype=datatype, shape=[-1])])),  # type: ignore[arg-type]
            )
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.RegisterModel(iter([pb.RegisterModelRequest(metadata=meta)]),
                                         metadata=(("x-neural-user", "a@example.com"),))
            return err.value

    for datatype in (pb.TENSOR_DATATYPE_UNSPECIFIED, 99):
        err = asyncio.run(register(datatype))
        assert err.code() is grpc.StatusCode.INVALID_ARGUMENT, err.details()
        assert "datatype" in (err.details() or "")


def test_cli_get_and_compare_show_the_lineage(tmp_path: Path) -> None:
    target = str(tmp_path / "store")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "neural.mlops", "registry", *args, "--target", target],
            capture_output=True, text=True, timeout=120,
        )

    signature = tmp_path / "signature.json"
    signature.write_text(json.dumps({"inputs": [{"name": "x", "datatype": "FP32",
                                                 "shape": [-1, 4]}]}))
    assert cli("register", "churn", "1", "--model-path", "s3://m/1",
               "--created-by", "a@example.com").returncode == 0
    r = cli("register", "churn", "2", "--model-path", "s3://m/2", "--created-by", "a@example.com",
            "--run-id", "run-7", "--code-revision", "9fceb02", "--parent", "1",
            "--data", f"s3://d/train.parquet@{DIGEST}", "--data", "https://u@host/x",
            "--signature", str(signature))
    assert r.returncode == 0, r.stderr
    shown = cli("get", "churn", "2").stdout
    assert "run-7" in shown and "9fceb02" in shown and "x FP32[-1, 4]" in shown
    got = json.loads(cli("get", "churn", "2", "--json").stdout)["lineage"]
    assert got["training_data"] == [{"uri": "s3://d/train.parquet", "digest": DIGEST},
                                    {"uri": "https://u@host/x", "digest": ""}]
    assert got["parent_version"] == "1"
    compared = cli("compare", "churn", "1", "2").stdout
    assert "lineage changed: source_run_id, code_revision, training_data" in compared
    assert '  parent_version: "" -> "1"' in compared
    found = json.loads(cli("search", "--filter", "parent = 1", "--json").stdout)
    assert [v["version"] for v in found["versions"]] == ["2"]
    bad = cli("register", "churn", "3", "--created-by", "a@example.com", "--code-revision", "xyz")
    assert bad.returncode == 2 and "code_revision" in bad.stderr


@pytest.mark.skipif(bool(os.environ.get("NEURAL_MLOPS_TEST_DATABASE_URL")),
                    reason="builds an old SQLite store by hand")
def test_a_store_from_before_lineage_is_upgraded_in_place(tmp_path: Path) -> None:
    """Versions registered before migration 0011 read back with an empty lineage."""
    store = tmp_path / "store"
    store.mkdir()

    async def at_0002() -> None:
        db = await Database.open(sqlite_url(store), migrate=False)

        def run(conn: sa.Connection) -> None:
            cfg = Config()
            cfg.set_main_option("script_location", str(MIGRATIONS))
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0002_registry")
            conn.execute(sa.text("INSERT INTO registered_models VALUES ('old', 1, 1)"))
            conn.execute(sa.text(
                "INSERT INTO model_versions (name, version, stage, framework, description, "
                "created_by, created_us, updated_us, params, config_json, artifact_uri, "
                "artifact_sha256, artifact_size, artifact_filename, artifact_stored) VALUES "
                "('old', '1', 'development', '', '', 'a@example.com', 1, 1, '{}', '{}', "
                "'s3://m/old', '', 0, '', 0)"))

        async with db.engine.begin() as conn:
            await conn.run_sync(run)
        await db.close()

    asyncio.run(at_0002())
    assert (store / DB_FILENAME).is_file()
    registry = ModelRegistry(store)
    assert registry.get_model_version("old", "1").lineage.empty
    new = _register(registry, "old", "2", parent_version="1", code_revision="abcdef0")
    assert new.lineage.parent_version == "1"
    assert [v.version for v in registry.search_models(filter="parent = 1")] == ["2"]
