"""Every refusal carries google.rpc.Status details (docs/errors.md): an ErrorInfo with a
stable reason in domain neural.mlops and the request id, a BadRequest for an invalid
field, a PreconditionFailure for a failed precondition; the Python and Node clients
rebuild their exceptions from them."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import grpc
import pytest
from support.peers import require_peer
from support.processes import ServerProcess
from support.status import details

from neural.mlops.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from neural.mlops.registry import ModelRegistry
from neural.mlops.v1 import registry_pb2 as pb
from neural.mlops.v1.registry_pb2_grpc import RegistryServiceStub

NODE_DIR = Path(__file__).resolve().parents[1] / "clients" / "node"


def _refusal(server: ServerProcess, method: str, request: object,
             request_id: str = "req-test-1") -> grpc.RpcError:
    with grpc.insecure_channel(server.address) as channel:
        with pytest.raises(grpc.RpcError) as err:
            getattr(RegistryServiceStub(channel), method)(
                request, metadata=(("x-request-id", request_id),), timeout=20)
    return err.value


@pytest.fixture
def server(shared_server: ServerProcess) -> ServerProcess:
    """The module's tests share one control plane; each registers its own model."""
    return shared_server


def _registered(server: ServerProcess, name: str) -> ModelRegistry:
    registry = ModelRegistry(server.url)
    registry.register_model(name=name, version="v1", created_by="a@x.com",
                            artifact_uri=f"s3://bucket/{name}/v1")
    return registry


def test_an_invalid_field_is_a_bad_request_naming_it(server: ServerProcess) -> None:
    err = _refusal(server, "GetModelVersion", pb.GetModelVersionRequest(name="../x", version="1"))
    assert err.code() is grpc.StatusCode.INVALID_ARGUMENT
    got = details(err)
    assert (got.reason, got.domain) == ("INVALID_FIELD", "neural.mlops")
    assert got.metadata == {"request_id": "req-test-1", "field": "name"}
    assert got.field_violations == [("name", "INVALID_FIELD")]


def test_an_unknown_enum_value_is_refused_naming_the_field(server: ServerProcess) -> None:
    """ListVersions stage=99 used to return every version (read as 'no stage filter')."""
    err = _refusal(server, "ListVersions", pb.ListVersionsRequest(name="fraud", stage=99))
    assert err.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "stage = 99" in (err.details() or "")
    assert details(err).field_violations == [("stage", "UNKNOWN_ENUM_VALUE")]


def test_self_approval_has_a_stable_reason_in_both_clients(server: ServerProcess) -> None:
    registry = _registered(server, "selfish")
    registry.request_promotion("selfish", "v1", "production", requested_by="a@x.com")
    err = _refusal(server, "ApprovePromotion",
                   pb.ApprovePromotionRequest(name="selfish", version="v1", approver="a@x.com"))
    assert err.code() is grpc.StatusCode.PERMISSION_DENIED
    assert details(err).reason == "SELF_APPROVAL"
    with pytest.raises(PermissionDenied) as exc:
        registry.approve_promotion("selfish", "v1", approver="a@x.com")
    assert (exc.value.reason, exc.value.field) == ("SELF_APPROVAL", "approver")


def test_a_failed_precondition_carries_a_precondition_failure(server: ServerProcess) -> None:
    registry = _registered(server, "gated")
    err = _refusal(server, "TransitionStage", pb.TransitionStageRequest(
        name="gated", version="v1", actor="a@x.com", target_stage=pb.MODEL_STAGE_PRODUCTION))
    assert err.code() is grpc.StatusCode.FAILED_PRECONDITION
    got = details(err)
    assert got.reason == "APPROVAL_REQUIRED"
    assert got.preconditions == [("APPROVAL_REQUIRED", "target_stage")]
    with pytest.raises(FailedPrecondition) as exc:
        registry.transition_stage("gated", "v1", "production", actor="a@x.com")
    assert exc.value.reason == "APPROVAL_REQUIRED"


def test_the_python_client_keeps_field_and_reason_of_a_limit(server: ServerProcess) -> None:
    with pytest.raises(InvalidArgument) as exc:
        ModelRegistry(server.url).list_models(name_prefix="a" * 60_000)
    assert (exc.value.field, exc.value.reason) == ("name_prefix", "LIMIT_EXCEEDED")


NODE_SCRIPT = """
const { NeuralMLOpsClient } = require('./src/index');
const client = new NeuralMLOpsClient(process.argv[1]);
client.getModelVersion('../x', '1').then(() => process.exit(3), (err) => {
  console.log(JSON.stringify({status: err.status, reason: err.reason, field: err.field,
                              requestId: err.requestId, violations: err.fieldViolations}));
  client.close();
});
"""


@pytest.mark.peers
def test_the_node_client_reads_the_details(server: ServerProcess) -> None:
    node = shutil.which("node")
    installed = (NODE_DIR / "node_modules" / "@grpc" / "grpc-js").is_dir()
    require_peer(bool(node) and installed, "Node.js and clients/node/node_modules")
    assert node
    out = subprocess.run([node, "-e", NODE_SCRIPT, server.url], cwd=NODE_DIR,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert (got["status"], got["reason"], got["field"]) == (
        "INVALID_ARGUMENT", "INVALID_FIELD", "name")
    assert got["requestId"] and got["violations"][0]["field"] == "name"
