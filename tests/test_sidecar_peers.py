"""Real peers: MLServer (scikit-learn model trained here) upstream, tritonclient as the caller.

The peers pin protobuf<7 and cannot share a process with each other, so each runs from its
own virtualenv (``tests/peers/setup_peers.sh`` creates them under ``.peers/``; in CI the
fixture runs it, elsewhere the tests skip when they are missing). Marked ``peers``.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from peers.mlserver import MLSERVER_PY, TRITON_PY, ensure_peers, run_in  # noqa: E402
from peers.mlserver import mlserver as start_mlserver  # noqa: E402
from peers.procs import start_control_plane, start_sidecar, write_routes  # noqa: E402

pytestmark = pytest.mark.peers


@pytest.fixture(scope="module")
def peers() -> None:
    ensure_peers()


_run = run_in


@pytest.fixture(scope="module")
def mlserver(peers: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with start_mlserver(tmp_path_factory.mktemp("mlserver")) as server:
        yield server.grpc_address


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
