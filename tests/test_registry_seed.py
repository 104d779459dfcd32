"""The seed's registry block, verbatim, embedded and against a real control plane."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

from support.processes import ServerProcess
from support.seed import python_blocks, remote

from neural.mlops.registry import ModelRegistry, ModelStage

BLOCK = python_blocks("### 1. Model Registry")[0]


def _prepare(location: str, workdir: Path) -> None:
    """What the block assumes: ./model.pt exists and v1.0.0 was registered before."""
    (workdir / "model.pt").write_bytes(b"\x80\x02fake-torch-weights" * 100)
    ModelRegistry(location).register_model(
        name="fraud_detector", version="v1.0.0", model_path=str(workdir / "model.pt"),
        framework="pytorch", created_by="data_scientist@company.com",
        metrics={"accuracy": 0.93, "f1": 0.90}, tags=["fraud"],
    )


def _run(block: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block, "MLOPS.md", "exec"), {"__name__": "__seed__"})
    return out.getvalue()


def _check(location: str, printed: str) -> None:
    assert printed.strip().startswith("Accuracy improvement: ")
    assert abs(float(printed.split(":")[1]) - 0.03) < 1e-9
    registry = ModelRegistry(location)
    v2 = registry.get_model_version("fraud_detector", "v2.0.0")
    assert v2.stage is ModelStage.PRODUCTION
    assert v2.tags == ["fraud", "production-ready"]
    assert v2.artifact.stored and len(v2.artifact.sha256) == 64
    assert registry.list_pending_approvals() == []


def test_seed_registry_block_embedded(in_tmp: Path) -> None:
    _prepare("./models", in_tmp)
    printed = _run(BLOCK)
    _check("./models", printed)
    assert (in_tmp / "models" / "models" / "fraud_detector" / "v2.0.0" / "model.pt").is_file()


def test_seed_registry_block_remote(in_tmp: Path, server: ServerProcess) -> None:
    _prepare(server.url, in_tmp)
    printed = _run(remote(BLOCK, "ModelRegistry", server.url))
    _check(server.url, printed)
    stored = server.data_dir / "models" / "fraud_detector" / "v2.0.0" / "model.pt"
    assert stored.read_bytes() == (in_tmp / "model.pt").read_bytes()
