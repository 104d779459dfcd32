"""The seed's deployment block, verbatim, embedded and against a real control plane."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

from support.processes import ServerProcess
from support.seed import python_blocks, remote

from neural.mlops.deployment import DeploymentManager, DeploymentStatus
from neural.mlops.registry import ModelRegistry, ModelStage

BLOCK = python_blocks("### 3. Deployment Manager")[0]


def _run(block: str) -> tuple[str, dict]:
    out = io.StringIO()
    scope: dict = {"__name__": "__seed__"}
    with contextlib.redirect_stdout(out):
        exec(compile(block, "MLOPS.md", "exec"), scope)
    return out.getvalue(), scope


def _check(printed: str, scope: dict, location: str) -> None:
    lines = printed.strip().splitlines()
    assert lines[0] == "Agreement rate: 100.00%"
    assert lines[1] == "Shadow latency P95: 0.042s"
    # p95 0.080 s > 1.5 x 0.050 s: the manual check rolls the canary back.
    assert lines[2].startswith("Deployment rolled back: [")
    assert "latency p95 0.0800s > 0.0750s" in lines[2]
    assert "error rate" not in lines[2]  # 0.5 % is under the 1 % threshold
    manager = DeploymentManager(location)
    dep = manager.get_deployment(scope["deployment"].deployment_id)
    assert dep.status is DeploymentStatus.ROLLED_BACK
    assert dep.rollback_reasons and "latency p95" in dep.rollback_reasons[0]
    actions = [e.action for e in manager.get_events(dep.deployment_id)]
    assert actions == ["created", "rolled_back"]
    rolled = manager.get_events(dep.deployment_id)[-1]
    assert rolled.details["measured"]["latency_p95"] == 0.080
    assert rolled.details["measured"]["request_count"] == 2000
    # Asking again gives the same answer and changes nothing.
    assert manager.check_deployment_health(dep.deployment_id, request_count=2000)[0] is True
    assert len(manager.get_events(dep.deployment_id)) == 2


def test_seed_deployment_block_embedded(in_tmp: Path) -> None:
    printed, scope = _run(BLOCK)
    _check(printed, scope, "./deployments")
    assert (in_tmp / "deployments" / "mlops.db").is_file()


def _approve_into_production(url: str, workdir: Path) -> None:
    (workdir / "model.pt").write_bytes(b"weights" * 100)
    registry = ModelRegistry(url)
    for version in ("v1.0.0", "v2.0.0"):
        registry.register_model(name="fraud_detector", version=version, model_path=str(workdir / "model.pt"),
                                framework="pytorch", created_by="data_scientist@company.com")
    registry.request_promotion(name="fraud_detector", version="v2.0.0", target_stage=ModelStage.PRODUCTION,
                               requested_by="ml_engineer@company.com", justification="validated",
                               reviewers=["ml_manager@company.com"])
    registry.approve_promotion(name="fraud_detector", version="v2.0.0", approver="ml_manager@company.com")


def test_seed_deployment_block_remote(in_tmp: Path, server: ServerProcess) -> None:
    _approve_into_production(server.url, in_tmp)
    printed, scope = _run(remote(BLOCK, "DeploymentManager", server.url))
    _check(printed, scope, server.url)
    dep = scope["deployment"]
    assert dep.gate["checked"] and dep.gate["stage"] == "production"
    assert dep.stable_version == ""  # v1.0.0 never served through the registry's PRODUCTION stage
