"""Undefined quantities become ``None`` plus a warning: no NaN or infinity reaches a report."""

from __future__ import annotations

import math
from typing import Any


class Warnings(list[str]):
    """The report's warnings, each said once, in the order they were first found."""

    def add(self, message: str) -> None:
        if message not in self:
            self.append(message)


def num(x: Any, warnings: Warnings | None = None, what: str = "") -> float | None:
    """A finite float, or None (with a warning naming ``what``)."""
    if x is None:
        return None
    v = float(x)
    if math.isfinite(v):
        return v
    if warnings is not None and what:
        warnings.add(f"{what} is undefined for this data")
    return None


def pct(x: float | None) -> float | None:
    return None if x is None else x * 100.0
