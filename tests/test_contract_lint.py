"""The wire contract under buf: `buf lint` with protos/buf.yaml, and `buf breaking` against
the committed image of the contract (protos/buf-image.binpb; docs/errors.md says how to
refresh it deliberately)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PROTOS = Path(__file__).resolve().parents[1] / "protos"
BASELINE = PROTOS / "buf-image.binpb"


def _buf() -> str:
    found = shutil.which("buf") or str(Path(sys.executable).parent / "buf")
    if not Path(found).exists():
        pytest.fail("buf is missing: pip install -e '.[dev]' (buf-bin)")
    return found


def _run(*args: str, cwd: Path = PROTOS) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_buf(), *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_the_contract_passes_buf_lint() -> None:
    out = _run("lint")
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_contract_has_no_breaking_change_against_the_baseline_image() -> None:
    assert BASELINE.is_file(), "protos/buf-image.binpb is missing (see docs/errors.md)"
    out = _run("breaking", "--against", str(BASELINE))
    assert out.returncode == 0, out.stdout + out.stderr


def test_a_renumbered_field_is_reported_as_breaking(tmp_path: Path) -> None:
    """The check has teeth: moving a field number in a copy of the contract fails it."""
    copy = tmp_path / "protos"
    shutil.copytree(PROTOS, copy, ignore=shutil.ignore_patterns("*.py", "*.pyi", "__pycache__"))
    proto = copy / "neural" / "mlops" / "v1" / "registry.proto"
    text = proto.read_text()
    start = text.index("message GetModelVersionRequest {")
    field = text.index(" = 1;", start)  # its first field, whatever comments precede it
    proto.write_text(text[:field] + " = 99;" + text[field + len(" = 1;"):])
    out = _run("breaking", "--against", str(BASELINE), cwd=copy)
    assert out.returncode != 0
    assert "GetModelVersionRequest" in out.stdout + out.stderr
