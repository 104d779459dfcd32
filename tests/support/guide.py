"""docs/user-guide.md as the tests read it: its sections, code blocks and printed output.

The guide's ``python`` blocks build on each other, so :class:`GuideRun` executes them in
document order in one namespace, as a reader pasting them into one session would. The
``text`` block right after a ``python`` block is what that block prints; numbers in it
may differ from run to run (random traffic, sizes, sequence numbers), so the printed
output is compared with the documented one with every number masked, and the tests check
the numbers that matter themselves.
"""

from __future__ import annotations

import contextlib
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "user-guide.md"
EMBEDDED_LOCATION = '"./mlops"'

_FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.S | re.M)
_NUMBER = re.compile(r"\d+(?:\.\d+)?(?:e[-+]?\d+)?")


def guide_text() -> str:
    return GUIDE.read_text()


@dataclass
class Block:
    """One ``python`` block, the ``##`` section it sits in and its documented output."""

    section: str
    code: str
    output: str | None
    line: int


def _sections(text: str) -> list[tuple[str, int, int]]:
    """(heading, start, end) of every ``## `` section."""
    starts = [(m.group(1).strip(), m.start()) for m in re.finditer(r"^## (.+)$", text, re.M)]
    ends = [s for _, s in starts[1:]] + [len(text)]
    return [(h, s, e) for (h, s), e in zip(starts, ends, strict=True)]


def section_text(heading_prefix: str) -> str:
    text = guide_text()
    for heading, start, end in _sections(text):
        if heading.startswith(heading_prefix):
            return text[start:end]
    raise LookupError(f"no section of {GUIDE.name} starts with {heading_prefix!r}")


def fenced(text: str, lang: str) -> list[str]:
    return [m.group(2) for m in _FENCE.finditer(text) if m.group(1) == lang]


def python_blocks() -> list[Block]:
    text = guide_text()
    blocks: list[Block] = []
    for heading, start, end in _sections(text):
        fences = list(_FENCE.finditer(text, start, end))
        for i, m in enumerate(fences):
            if m.group(1) != "python":
                continue
            following = fences[i + 1] if i + 1 < len(fences) else None
            output = following.group(2) if following and following.group(1) == "text" else None
            line = text.count("\n", 0, m.start()) + 2
            blocks.append(Block(heading, m.group(2), output, line))
    return blocks


def mask_numbers(text: str) -> str:
    return _NUMBER.sub("#", text)


@dataclass
class GuideRun:
    """Runs the guide's blocks section by section against one location.

    ``location`` None runs them as written (an embedded store in the working directory);
    a ``grpc://`` URL replaces every ``"./mlops"`` with it, the only change a reader makes
    to drive a control plane.
    """

    location: str | None = None
    namespace: dict[str, Any] = field(default_factory=lambda: {"__name__": "__guide__"})
    pending: list[Block] = field(default_factory=python_blocks)

    def _code(self, block: Block) -> str:
        if self.location is None:
            return block.code
        return block.code.replace(EMBEDDED_LOCATION, f'"{self.location}"')

    def section(self, heading_prefix: str) -> str:
        """Run the next section's blocks (it must start with ``heading_prefix``), check
        each block's output against the documented one, return everything printed."""
        assert self.pending, "every block of the guide already ran"
        heading = self.pending[0].section
        assert heading.startswith(heading_prefix), f"next section is {heading!r}"
        printed = []
        while self.pending and self.pending[0].section == heading:
            block = self.pending.pop(0)
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                exec(compile(self._code(block), f"{GUIDE}:{block.line}", "exec"), self.namespace)
            if block.output is not None:
                assert mask_numbers(out.getvalue()) == mask_numbers(block.output), (
                    f"{GUIDE.name} line {block.line} printed:\n{out.getvalue()}"
                    f"but the guide shows:\n{block.output}"
                )
            printed.append(out.getvalue())
        return "".join(printed)

    def finished(self) -> bool:
        return not self.pending
