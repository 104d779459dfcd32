"""Subprocess helpers for sidecar tests and benchmarks: demo models, sidecars, a control plane."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from support.databases import store_args  # noqa: E402
from support.processes import Stoppable, wait_for_line  # noqa: E402

READY = re.compile(r"listening on (\S+:\d+)")
METRICS = re.compile(r"metrics on http://\S+:(\d+)/metrics")


@dataclass
class Proc(Stoppable):
    proc: subprocess.Popen[str]
    address: str
    metrics_port: int = 0

    def health(self) -> dict[str, Any]:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{self.metrics_port}/healthz", timeout=5
        ) as r:
            return json.loads(r.read())

    def metrics(self) -> str:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5
        ) as r:
            return r.read().decode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(proc: subprocess.Popen[str], timeout: float, want_metrics: bool) -> tuple[str, int]:
    try:
        line = wait_for_line(proc, READY, timeout).string
        address = READY.search(line).group(1)  # type: ignore[union-attr]
        port = int(METRICS.search(line).group(1)) if want_metrics else 0  # type: ignore[union-attr]
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return address, port


def _popen(
    cmd: list[str], env: dict[str, str] | None = None, stderr: Any = subprocess.DEVNULL
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=stderr, text=True, env={**os.environ, **(env or {})}
    )


def start_demo(name: str, *args: str, listen: str = "127.0.0.1:0", timeout: float = 30.0) -> Proc:
    proc = _popen(
        [
            sys.executable,
            "-m",
            "neural.mlops",
            "demo-model",
            "--listen",
            listen,
            "--name",
            name,
            *args,
        ]
    )
    address, _ = _wait(proc, timeout, False)
    return Proc(proc, address)


def start_sidecar(
    upstream: str,
    control_plane: str | None,
    *args: str,
    listen: str = "127.0.0.1:0",
    timeout: float = 30.0,
    metrics: bool = True,
    stderr: Any = subprocess.DEVNULL,
) -> Proc:
    cmd = [
        sys.executable,
        "-m",
        "neural.mlops",
        "sidecar",
        "--listen",
        listen,
        "--upstream",
        upstream,
        "--log-level",
        "warning",
    ]
    if control_plane:
        cmd += ["--control-plane", control_plane]
    if metrics:
        cmd += ["--metrics-port", "0", "--metrics-host", "127.0.0.1"]
    proc = _popen([*cmd, *args], stderr=stderr)
    address, port = _wait(proc, timeout, metrics)
    return Proc(proc, address, port)


def start_control_plane(
    data_dir: Path, routes: Path, listen: str = "127.0.0.1:0", timeout: float = 60.0
) -> Proc:
    proc = _popen(
        [
            sys.executable,
            str(ROOT / "tests" / "peers" / "static_control_plane.py"),
            *store_args(data_dir),
            "--routes",
            str(routes),
            "--listen",
            listen,
        ]
    )
    address, _ = _wait(proc, timeout, False)
    return Proc(proc, address)


def write_routes(path: Path, routes: list[dict[str, Any]]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(routes))
    tmp.replace(path)


def wait_for_ready(address: str, timeout: float) -> bool:
    """Whether a gRPC server accepts connections at ``address`` within ``timeout`` seconds."""
    import grpc

    with grpc.insecure_channel(address) as ch:
        try:
            grpc.channel_ready_future(ch).result(timeout=timeout)
            return True
        except grpc.FutureTimeoutError:
            return False


def start_all(*starters: Any) -> list[Proc]:
    """Start several processes at once (each ``starter`` is a zero-argument callable such as
    ``lambda: start_demo("m")``); returns them in order, or stops them all on failure."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(len(starters)) as pool:
        futures = [pool.submit(s) for s in starters]
    procs, error = [], None
    for f in futures:
        try:
            procs.append(f.result())
        except BaseException as exc:  # noqa: BLE001 - stop the others, re-raise below
            error = exc
    if error is not None:
        for p in procs:
            p.stop()
        raise error
    return procs
