"""Terminal rendering shared by ``ci canary``, ``status`` and ``demo``: a traffic bar and
one line per rollout decision, readable in a CI log (no cursor tricks when not a TTY)."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Any

BAR_WIDTH = 20


def bar(percent: float, width: int = BAR_WIDTH) -> str:
    """``[#####---------------]  25%``"""
    p = max(0.0, min(100.0, float(percent)))
    filled = int(round(p / 100 * width))
    return f"[{'#' * filled}{'-' * (width - filled)}] {p:5.1f}%"


def clock(at: datetime | None = None) -> str:
    return (at or datetime.now()).astimezone().strftime("%H:%M:%S")


def metrics_summary(m: Any) -> str:
    """``p95 41.0ms err 0.20% n=1200`` from a PerformanceMetrics (unknown parts left out)."""
    if m is None:
        return ""
    parts = []
    if getattr(m, "latency_p95", None) is not None:
        parts.append(f"p95 {m.latency_p95 * 1000:.1f}ms")
    if getattr(m, "error_rate", None) is not None:
        parts.append(f"err {m.error_rate:.2%}")
    if getattr(m, "request_count", 0):
        parts.append(f"n={m.request_count}")
    return " ".join(parts)


def deployment_line(dep: Any) -> str:
    steps = len(dep.plan.steps) or 1
    return (
        f"{dep.model_name}:{dep.model_version} {dep.strategy.value} "
        f"step {min(dep.step_index + 1, steps)}/{steps} {bar(dep.traffic_percentage)} "
        f"{dep.status.value}"
    )


def event_line(event: Any, dep: Any) -> str:
    details = event.details or {}
    reasons = details.get("reasons") or []
    why = f" ({'; '.join(str(r) for r in reasons)})" if reasons else ""
    if not why and details.get("reason"):
        why = f" ({details['reason']})"
    return (
        f"{clock(event.at)}  {event.action:<12} {bar(event.traffic_percentage)} "
        f"-> {event.to_status.value}{why}"
    )


class Live:
    """Rewrites one status line in place on a TTY; elsewhere prints only changes."""

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream or sys.stdout
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last = ""
        self._open = False

    def status(self, text: str) -> None:
        if self.tty:
            self.stream.write("\r\x1b[2K" + text)
            self.stream.flush()
            self._open = True
        elif text != self._last:
            self.stream.write(text + "\n")
            self.stream.flush()
        self._last = text

    def line(self, text: str) -> None:
        """A permanent line (an event), printed above the live status."""
        if self._open:
            self.stream.write("\r\x1b[2K")
        self.stream.write(text + "\n")
        if self._open and self._last:
            self.stream.write(self._last)
        self.stream.flush()

    def settle(self) -> None:
        """Drop the live status line (a phase is over); the next line starts clean."""
        if self._open:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()
        self._open = False
        self._last = ""

    def close(self) -> None:
        if self._open:
            self.stream.write("\n")
            self.stream.flush()
            self._open = False
