"""The demo's child processes: ``neural-mlops`` sub-commands started on free loopback
ports, each ready once it prints "listening on HOST:PORT", stopped in reverse order."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

_READY = re.compile(r"listening on (\S+:\d+)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Processes:
    """Child processes of the demo, stopped in reverse order."""

    procs: list[tuple[str, subprocess.Popen[str]]] = field(default_factory=list)
    log_dir: Path | None = None

    def spawn(self, label: str, *args: str) -> subprocess.Popen[str]:
        """Start ``neural-mlops ARGS`` (stderr to logs/LABEL.log); see :meth:`ready`."""
        assert self.log_dir is not None
        err = open(self.log_dir / f"{label}.log", "w")  # noqa: SIM115 (kept open for the child)
        proc = subprocess.Popen(
            [sys.executable, "-m", "neural.mlops", *args],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            start_new_session=True,
        )
        self.procs.append((label, proc))
        return proc

    def ready(self, label: str, proc: subprocess.Popen[str], timeout: float = 90.0) -> str:
        """Wait for the child's "listening on HOST:PORT" line and return the address."""
        assert proc.stdout is not None and self.log_dir is not None
        deadline = time.monotonic() + timeout
        seen: list[str] = []
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"{label} exited with {proc.returncode}: {''.join(seen)} "
                        f"(log: {self.log_dir / (label + '.log')})"
                    )
                continue
            seen.append(line)
            if m := _READY.search(line):
                threading.Thread(target=self._drain, args=(proc,), daemon=True).start()
                return m.group(1)
        raise RuntimeError(f"{label} did not start within {timeout:g}s")

    @staticmethod
    def _drain(proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for _ in proc.stdout:
            pass

    def stop(self) -> None:
        for _, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for _, proc in reversed(self.procs):
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs.clear()
