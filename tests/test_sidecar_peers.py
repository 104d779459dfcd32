"""Real peers: MLServer (scikit-learn model trained here) upstream, tritonclient as the caller.

The peers pin protobuf<7 and cannot share a process with each other, so each runs from its
own virtualenv (``tests/peers/setup_peers.sh`` creates them under ``.peers/``; in CI the
fixture runs it, elsewhere the tests skip when they are missing). Marked ``peers``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from peers.procs import ROOT, free_port, start_control_plane, start_sidecar, write_routes  # noqa: E402
from support.peers import in_ci, require_peer  # noqa: E402

from neural.mlops.v1 import oip_pb2  # noqa: E402

pytestmark = pytest.mark.peers

PEERS = Path(os.environ.get("NEURAL_MLOPS_PEERS", ROOT / ".peers"))
MLSERVER_PY = PEERS / "mlserver-venv" / "bin" / "python"
TRITON_PY = PEERS / "triton-venv" / "bin" / "python"


def _peers_ready() -> bool:
    venvs = ("mlserver-venv", "triton-venv")
    return all((PEERS / venv / ".ready-neural").exists() for venv in venvs)


@pytest.fixture(scope="module")
def peers() -> None:
    if not _peers_ready() and in_ci():
        proc = subprocess.run(
            ["bash", str(ROOT / "tests" / "peers" / "setup_peers.sh")],
            capture_output=True,
            text=True,
            timeout=1200,
        )
        assert proc.returncode == 0, f"peer virtualenvs could not be created: {proc.stderr[-2000:]}"
    require_peer(_peers_ready() and MLSERVER_PY.exists() and TRITON_PY.exists(),
                 "MLServer and tritonclient virtualenvs (.peers/)")


def _run(python: Path, code: str, timeout: float = 120) -> str:
    proc = subprocess.run(
        [str(python), "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


@pytest.fixture(scope="module")
def mlserver(peers: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    models = tmp_path_factory.mktemp("mlserver")
    model_dir = models / "iris"
    model_dir.mkdir()
    # Train a small classifier in the MLServer venv (scikit-learn lives there only).
    _run(
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
    grpc_port = free_port()
    (models / "settings.json").write_text(
        json.dumps(
            {
                "http_port": free_port(),
                "grpc_port": grpc_port,
                "metrics_port": free_port(),
                "parallel_workers": 0,
                "debug": False,
            }
        )
    )
    log = open(models / "mlserver.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [str(PEERS / "mlserver-venv" / "bin" / "mlserver"), "start", str(models)],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=models,
    )
    address = f"127.0.0.1:{grpc_port}"
    ready = oip_pb2.ModelReadyRequest(name="iris")
    deadline = time.monotonic() + 120
    try:
        with grpc.insecure_channel(address) as ch:
            check = ch.unary_unary(
                "/inference.GRPCInferenceService/ModelReady",
                request_serializer=oip_pb2.ModelReadyRequest.SerializeToString,
                response_deserializer=oip_pb2.ModelReadyResponse.FromString,
            )
            while True:
                try:
                    if check(ready, timeout=2).ready:
                        break
                except grpc.RpcError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((models / "mlserver.log").read_text()[-3000:])
                time.sleep(0.3)
        yield address
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


TRITON_CALLER = """
import json, sys
import numpy as np
import tritonclient.grpc as tc
url, user = sys.argv[1], sys.argv[2]
client = tc.InferenceServerClient(url=url)
assert client.is_server_live() and client.is_model_ready("iris")
meta = client.get_model_metadata("iris", as_json=True)
X = np.random.default_rng(1).normal(size=(16, 4))
inp = tc.InferInput("input-0", list(X.shape), "FP64")
inp.set_data_from_numpy(X)
res = client.infer("iris", [inp], headers={"x-user-id": user})
print(json.dumps({"predict": res.as_numpy("predict").tolist(),
                  "model_name": res.get_response().model_name,
                  "model_version": res.get_response().model_version,
                  "metadata_name": meta["name"]}))
"""


def _triton(url: str, user: str = "u1") -> dict:
    return json.loads(
        _run(TRITON_PY, TRITON_CALLER.replace("sys.argv[1], sys.argv[2]", f"{url!r}, {user!r}"))
    )


def test_tritonclient_through_the_sidecar_gets_mlservers_answer(
    mlserver: str, tmp_path: Path
) -> None:
    routes = tmp_path / "routes.json"
    write_routes(
        routes,
        [
            {
                "model_name": "iris",
                "route_id": "exp-iris",
                "variants": [
                    {
                        "name": "treatment",
                        "weight": 0.5,
                        "model_name": "iris",
                        "model_version": "v1",
                    },
                    {"name": "control", "weight": 0.5, "model_name": "iris", "model_version": ""},
                ],
            }
        ],
    )
    cp = start_control_plane(tmp_path / "cp", routes)
    sidecar = start_sidecar(mlserver, cp.address, "--flush-interval", "0.2")
    try:
        deadline = time.monotonic() + 20
        while sidecar.health()["routing"] != "live" and time.monotonic() < deadline:
            time.sleep(0.05)
        direct = _triton(mlserver)
        for user in ("alice", "bob", "carol", "dave"):
            via = _triton(sidecar.address, user)
            assert via["predict"] == direct["predict"]
            assert via["model_name"] == "iris" and via["metadata_name"] == "iris"
        text = sidecar.metrics()
        assert 'route="exp-iris"' in text
    finally:
        sidecar.stop()
        cp.stop()


def test_neural_mlops_imports_beside_tritonclient_and_beside_mlserver(peers: None) -> None:
    code = """
        import {peer}
        import neural.mlops.v1.oip_pb2 as oip, neural.mlops.v1.routing_pb2
        import neural.mlops.sidecar.proxy, neural.mlops.sidecar.demo_model
        assert oip.ModelInferRequest.DESCRIPTOR.full_name == "neural.mlops.v1.oip.ModelInferRequest"
        print("ok")
    """
    assert _run(TRITON_PY, code.format(peer="tritonclient.grpc")).strip() == "ok"
    assert _run(MLSERVER_PY, code.format(peer="mlserver.grpc.dataplane_pb2")).strip() == "ok"
