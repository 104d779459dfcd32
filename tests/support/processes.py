"""Real processes for tests: a control plane subprocess on a free loopback port."""

from __future__ import annotations

import contextlib
import os
import re
import selectors
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from support.databases import store_args

READY = re.compile(r"listening on (\S+:\d+)")


class Stoppable:
    """Stop (SIGTERM, then SIGKILL after ``timeout``) or kill -9 the ``proc`` a test started."""

    proc: subprocess.Popen[str]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill9(self) -> None:
        self.proc.kill()
        self.proc.wait()


@dataclass
class ServerProcess(Stoppable):
    data_dir: Path
    proc: subprocess.Popen[str]
    address: str
    extra_args: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"grpc://{self.address}"


def wait_for_line(
    proc: subprocess.Popen[str], pattern: re.Pattern[str], timeout: float
) -> re.Match[str]:
    """Read ``proc``'s stdout line by line until one matches ``pattern``. An epoll/kqueue
    selector (no 1024-descriptor limit of ``select.select``), closed on return."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                rest = proc.stdout.read() or ""
                raise RuntimeError(
                    f"process exited with {proc.returncode}: {''.join(seen)}{rest}")
            if sel.select(0.2):
                line = proc.stdout.readline()
                seen.append(line)
                if m := pattern.search(line):
                    return m
    raise TimeoutError(f"no line matching {pattern.pattern!r} within {timeout}s: {''.join(seen)}")


def start_server(data_dir: Path, *extra: str, listen: str = "127.0.0.1:0", timeout: float = 60.0,
                 env: dict[str, str] | None = None, log: Path | None = None) -> ServerProcess:
    """Start ``neural-mlops serve`` and wait until it prints its address. The store is on
    the engine under test (:mod:`support.databases`) unless ``extra`` names a database.
    With ``log``, the server's log (stderr) is appended to that file."""
    store = ["--data-dir", str(data_dir)] if "--database-url" in extra else store_args(data_dir)
    cmd = [sys.executable, "-m", "neural.mlops", "serve", *store, "--listen", listen, *extra]
    with contextlib.ExitStack() as files:
        stderr = files.enter_context(log.open("a")) if log else subprocess.DEVNULL
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=stderr, text=True,
            env={**os.environ, **(env or {})},
        )
    try:
        m = wait_for_line(proc, READY, timeout)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return ServerProcess(data_dir, proc, m.group(1), list(extra))
