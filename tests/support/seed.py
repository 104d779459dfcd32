"""The seed documentation's code blocks, read verbatim from shared/seed/MLOPS.md."""

from __future__ import annotations

import re
from pathlib import Path

_CANDIDATES = [
    Path(__file__).resolve().parents[3] / "shared" / "seed" / "MLOPS.md",
    Path(__file__).resolve().parents[2] / "shared" / "seed" / "MLOPS.md",
]


def seed_doc() -> str:
    for path in _CANDIDATES:
        if path.is_file():
            return path.read_text()
    raise FileNotFoundError(f"seed documentation not found at any of {_CANDIDATES}")


def python_blocks(heading: str) -> list[str]:
    """The ```python blocks under the markdown heading that contains ``heading``."""
    blocks: list[str] = []
    inside, fence, current = False, "", []  # type: ignore[var-annotated]
    for line in seed_doc().splitlines(keepends=True):
        if fence:
            if line.startswith("```"):
                if fence == "python" and inside:
                    blocks.append("".join(current))
                fence, current = "", []
            else:
                current.append(line)
        elif line.startswith("```"):
            fence = line.strip()[3:] or "text"
        elif line.startswith("#"):
            if inside:
                break
            inside = heading in line
    if not blocks:
        raise LookupError(f"no python block under a heading containing {heading!r}")
    return blocks


def remote(block: str, constructor: str, url: str) -> str:
    """The same block pointed at a control plane: only the constructor's location changes."""
    pattern = re.compile(re.escape(constructor) + r'\("\./[\w]+"\)')
    out, n = pattern.subn(f'{constructor}("{url}")', block)
    if n == 0:
        raise ValueError(f"{constructor}(\"./...\") not found in the block")
    return out
