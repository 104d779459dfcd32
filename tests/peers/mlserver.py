"""MLServer as a real OIP peer (gRPC and REST ports), serving a scikit-learn classifier
trained here in its own virtualenv (``tests/peers/setup_peers.sh`` creates it under
``.peers/``; the peers pin protobuf<7 and cannot share a process with the project).
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc

from neural.mlops.v1 import oip_pb2
from peers.procs import ROOT, free_port

PEERS = Path(os.environ.get("NEURAL_MLOPS_PEERS", ROOT / ".peers"))
MLSERVER_PY = PEERS / "mlserver-venv" / "bin" / "python"
TRITON_PY = PEERS / "triton-venv" / "bin" / "python"
SETUP = ROOT / "tests" / "peers" / "setup_peers.sh"


def peers_ready() -> bool:
    venvs = ("mlserver-venv", "triton-venv")
    return all((PEERS / venv / ".ready-neural").exists() for venv in venvs)


def ensure_peers() -> None:
    """In CI, build the peer virtualenvs when missing; elsewhere skip without them
    (:func:`support.peers.require_peer`)."""
    from support.peers import in_ci, require_peer

    if not peers_ready() and in_ci():
        proc = subprocess.run(
            ["bash", str(SETUP)], capture_output=True, text=True, timeout=1200
        )
        assert proc.returncode == 0, f"peer virtualenvs could not be created: {proc.stderr[-2000:]}"
    require_peer(peers_ready() and MLSERVER_PY.exists() and TRITON_PY.exists(),
                 "MLServer and tritonclient virtualenvs (.peers/)")


def run_in(python: Path, code: str, timeout: float = 120) -> str:
    """Run ``code`` (dedented) with a peer's Python; its standard output."""
    proc = subprocess.run(
        [str(python), "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


@dataclass(frozen=True)
class MLServer:
    grpc_address: str  # HOST:PORT
    http_url: str  # http://HOST:PORT


def _train(model_dir: Path) -> None:
    run_in(
        MLSERVER_PY,
        f"""
        import joblib, numpy as np
        from sklearn.linear_model import LogisticRegression
        rng = np.random.default_rng(0)
        X = rng.normal(size=(300, 4)); y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int) + (X[:, 2] > 1)
        joblib.dump(LogisticRegression(max_iter=500).fit(X, y), {str(model_dir / "model.joblib")!r})
    """,
    )
    (model_dir / "model-settings.json").write_text(
        json.dumps(
            {
                "name": "iris",
                "implementation": "mlserver_sklearn.SKLearnModel",
                "parameters": {"uri": "./model.joblib", "version": "v1"},
            }
        )
    )


def _wait_ready(address: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    ready = oip_pb2.ModelReadyRequest(name="iris")
    deadline = time.monotonic() + 120
    with grpc.insecure_channel(address) as ch:
        check = ch.unary_unary(
            "/inference.GRPCInferenceService/ModelReady",
            request_serializer=oip_pb2.ModelReadyRequest.SerializeToString,
            response_deserializer=oip_pb2.ModelReadyResponse.FromString,
        )
        while True:
            try:
                if check(ready, timeout=2).ready:
                    return
            except grpc.RpcError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(log.read_text()[-3000:])
            time.sleep(0.3)


@contextmanager
def mlserver(models: Path) -> Iterator[MLServer]:
    """An MLServer serving model ``iris`` (version ``v1``) from ``models``, until exit."""
    model_dir = models / "iris"
    model_dir.mkdir(parents=True)
    _train(model_dir)
    grpc_port, http_port = free_port(), free_port()
    (models / "settings.json").write_text(
        json.dumps(
            {
                "http_port": http_port,
                "grpc_port": grpc_port,
                "metrics_port": free_port(),
                "parallel_workers": 0,
                "debug": False,
            }
        )
    )
    log_path = models / "mlserver.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [str(PEERS / "mlserver-venv" / "bin" / "mlserver"), "start", str(models)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=models,
        )
        try:
            _wait_ready(f"127.0.0.1:{grpc_port}", proc, log_path)
            yield MLServer(f"127.0.0.1:{grpc_port}", f"http://127.0.0.1:{http_port}")
        finally:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
