"""The seed's Quick Start block, verbatim: every manager opens its own embedded store."""

from __future__ import annotations

from pathlib import Path

from support.seed import python_blocks

BLOCK = python_blocks("### Basic Usage")[0]


def test_seed_basic_usage_block_creates_four_embedded_stores(in_tmp: Path) -> None:
    namespace: dict[str, object] = {"__name__": "__seed__"}
    exec(compile(BLOCK, "MLOPS.md", "exec"), namespace)
    for folder in ("models", "deployments", "ab_tests", "audit_logs"):
        assert (in_tmp / folder / "mlops.db").is_file(), folder
    registry = namespace["registry"]
    assert registry.list_models().items == []  # type: ignore[attr-defined]
