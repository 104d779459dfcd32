"""The committed protobuf modules are exactly what `python tools/genproto.py` produces."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
V1 = ROOT / "protos" / "neural" / "mlops" / "v1"


def test_generated_code_is_up_to_date(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(ROOT / "tools" / "genproto.py"), "--out", str(tmp_path)],
                   check=True)
    fresh = {p.relative_to(tmp_path / "neural" / "mlops" / "v1"): p.read_text()
             for p in (tmp_path / "neural" / "mlops" / "v1").glob("*_pb2*.py*")}
    committed = {p.relative_to(V1): p.read_text() for p in V1.glob("*_pb2*.py*")}
    assert fresh.keys() == committed.keys(), "run: python tools/genproto.py"
    stale = sorted(str(k) for k in fresh if fresh[k] != committed[k])
    assert not stale, f"stale generated code {stale}; run: python tools/genproto.py"


def test_every_proto_is_generated() -> None:
    for proto in V1.glob("*.proto"):
        assert (V1 / f"{proto.stem}_pb2.py").is_file(), proto.name


def test_neural_is_the_only_top_level_package() -> None:
    out = subprocess.run(
        [sys.executable, "-c", "import importlib.metadata as m;"
         "print(m.distribution('neural-mlops').read_text('top_level.txt') or '')"],
        capture_output=True, text=True, check=True,
    ).stdout.split()
    assert out in ([], ["neural"])
    import neural.mlops.registry  # noqa: F401
    import neural.mlops.server  # noqa: F401
    import neural.mlops.v1  # noqa: F401
