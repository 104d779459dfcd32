"""``neural-mlops rpc``: every RPC of every service is reachable from the CLI via reflection."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from support.processes import ServerProcess, start_server

from neural.mlops.cli import main
from neural.mlops.v1 import audit_pb2, deployments_pb2, experiments_pb2, registry_pb2

CONTRACT = [registry_pb2, experiments_pb2, deployments_pb2, audit_pb2]


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One control plane for the read-only and failing calls below."""
    srv = start_server(tmp_path_factory.mktemp("rpc") / "data")
    yield srv
    srv.stop()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_every_contract_rpc_is_listed(
    shared_server: ServerProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "rpc", "list", "--target", shared_server.url, "--json")
    assert code == 0, err
    listing = json.loads(out)
    for module in CONTRACT:
        for service in module.DESCRIPTOR.services_by_name.values():
            methods = {sig.split("(")[0] for sig in listing[service.full_name]}
            assert methods == {m.name for m in service.methods}, service.full_name
    assert "grpc.health.v1.Health" in listing


def test_calls_of_every_shape(server, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    t = server.url
    # client streaming
    code, out, err = run(
        capsys,
        "rpc",
        "call",
        "--target",
        t,
        "--user",
        "ds@company.com",
        "neural.mlops.v1.RegistryService/RegisterModel",
        "-d",
        json.dumps(
            [
                {
                    "metadata": {
                        "name": "fraud",
                        "version": "v1",
                        "created_by": "ds@company.com",
                        "metrics": {"accuracy": 0.9},
                        "artifact_filename": "model.bin",
                    }
                },
                {"chunk": "d2VpZ2h0cw=="},
            ]
        ),
    )
    assert code == 0, err
    assert json.loads(out)["artifact"]["size_bytes"] == "7"
    # unary
    code, out, _ = run(
        capsys,
        "rpc",
        "call",
        "--target",
        t,
        "neural.mlops.v1.RegistryService/GetModelVersion",
        "-d",
        '{"name": "fraud", "version": "v1"}',
    )
    assert code == 0 and json.loads(out)["metrics"] == {"accuracy": 0.9}
    # server streaming
    code, out, _ = run(
        capsys,
        "rpc",
        "call",
        "--target",
        t,
        "neural.mlops.v1.AuditService/QueryEvents",
        "-d",
        '{"page_size": 10}',
        "--json",
    )
    chunks = json.loads(out)
    events = [e for c in chunks for e in c.get("events", [])]
    assert code == 0 and any(e["event_type"] == "EVENT_TYPE_MODEL_REGISTERED" for e in events)
    # describe
    code, out, _ = run(capsys, "rpc", "describe", "--target", t, "neural.mlops.v1.ModelStage")
    assert code == 0 and "MODEL_STAGE_PRODUCTION = 3" in out


@pytest.mark.parametrize(
    "argv, expected, message",
    [
        (
            [
                "neural.mlops.v1.RegistryService/GetModelVersion",
                "-d",
                '{"name": "nope", "version": "v1"}',
            ],
            3,
            "does not exist",
        ),
        (
            ["neural.mlops.v1.RegistryService/Nope"],
            3,
            "has no method 'Nope'; it has: RegisterModel",
        ),
        (["neural.mlops.v1.NoService/Call"], 3, "no service 'neural.mlops.v1.NoService'"),
        (
            ["neural.mlops.v1.RegistryService/ListModels", "-d", '{"bogus": 1}'],
            2,
            'no field named "bogus"',
        ),
        (
            ["neural.mlops.v1.RegistryService/ListModels", "-d", "{not json"],
            2,
            "--data is not valid JSON",
        ),
        (["ListModels"], 2, "method must be SERVICE/METHOD"),
    ],
)
def test_bad_calls_exit_with_the_reason(
    shared_server: ServerProcess,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    expected: int,
    message: str,
) -> None:
    code, _, err = run(capsys, "rpc", "call", "--target", shared_server.url, *argv)
    assert code == expected
    assert message in err


def test_rpc_needs_a_server(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    code, _, err = run(capsys, "rpc", "list", "--target", str(tmp_path))
    assert code == 2 and "rpc needs a running server" in err
