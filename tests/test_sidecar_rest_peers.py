"""The sidecar's OIP REST form in front of a real REST peer: MLServer's HTTP port (a
scikit-learn model trained here), driven by a plain HTTP client. Marked ``peers`` (skips
with one line outside CI when the MLServer virtualenv is missing).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from peers.mlserver import ensure_peers, mlserver  # noqa: E402
from peers.procs import Proc, start_control_plane, write_routes  # noqa: E402
from test_sidecar_rest import _totals, call, start_rest_sidecar, wait_until  # noqa: E402

from neural.mlops.v1.assignment import Assigner  # noqa: E402

pytestmark = pytest.mark.peers

ROUTE = {
    "model_name": "iris",
    "route_id": "exp-iris-rest",
    "kind": "experiment",
    "variants": [
        {"name": "treatment", "weight": 0.5, "model_name": "iris", "model_version": "v1"},
        {"name": "control", "weight": 0.5, "model_name": "iris", "model_version": ""},
    ],
}
SHADOWED = {
    "model_name": "iris-shadowed",
    "route_id": "dep-iris-rest",
    "kind": "deployment",
    "variants": [{"name": "primary", "weight": 1.0, "model_name": "iris"}],
    # The same MLServer under its version: the copy must agree with the primary.
    "shadows": [{"shadow_id": "iris-v1", "model_name": "iris", "model_version": "v1",
                 "percentage": 100}],
}


def _body(seed: int) -> dict[str, Any]:
    x = np.random.default_rng(seed).normal(size=(8, 4))
    return {"inputs": [{"name": "input-0", "shape": [8, 4], "datatype": "FP64",
                        "data": x.reshape(-1).tolist()}]}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    ensure_peers()
    tmp = tmp_path_factory.mktemp("rest-peer")
    with mlserver(tmp / "mlserver") as server:
        routes = tmp / "routes.json"
        write_routes(routes, [ROUTE, SHADOWED])
        cp = start_control_plane(tmp / "cp", routes)
        upstream = (Proc(None, server.grpc_address), server.http_url)  # type: ignore[arg-type]
        sidecar, url = start_rest_sidecar(upstream, cp.address)
        try:
            wait_until(lambda: sidecar.health()["routing"] == "live", 30, "no routing table")
            yield {"url": url, "direct": server.http_url, "data": tmp / "cp",
                   "sidecar": sidecar}
        finally:
            sidecar.stop()
            cp.stop()


def test_mlserver_answers_through_the_sidecar_split_by_unit(stack: dict[str, Any]) -> None:
    url, direct = stack["url"], stack["direct"]
    expected = Assigner("exp-iris-rest", [("treatment", 0.5), ("control", 0.5)])
    seen = {"treatment": 0, "control": 0}
    for i in range(24):
        user = f"user-{i}"
        status, headers, answer = call(f"{url}/v2/models/iris/infer", _body(i),
                                       {"x-user-id": user})
        want = call(f"{direct}/v2/models/iris/infer", _body(i))[2]
        assert status == 200, answer
        variant = expected.names[expected.choose_index(user)]
        assert headers["x-neural-variant"] == variant
        assert answer["model_name"] == "iris"
        assert [o["data"] for o in answer["outputs"]] == [o["data"] for o in want["outputs"]]
        seen[variant] += 1
    assert min(seen.values()) > 3
    totals = wait_until(
        lambda: (t := _totals(stack["data"], "traffic_windows", "route_id", "exp-iris-rest"))
        and sum(s["count"] for s in t.values()) == 24 and t,
        15, "the control plane did not count the calls",
    )
    assert {v: s["count"] for v, s in totals.items()} == seen
    assert all(s.get("errors", 0) == 0 for s in totals.values())


def test_mlserver_health_metadata_and_errors_pass_through(stack: dict[str, Any]) -> None:
    url, direct = stack["url"], stack["direct"]
    for path in ("/v2/health/live", "/v2/health/ready", "/v2/models/iris",
                 "/v2/models/iris/versions/v1", "/v2/models/iris/ready"):
        via, want = call(url + path), call(direct + path)
        assert via[0] == want[0] == 200, path
        assert via[2] == want[2], path
    status, _, answer = call(f"{url}/v2/models/nope/infer", _body(0))
    assert status == 404 and "error" in answer
    # A malformed request is MLServer's to refuse, and counted as the variant's error.
    status, headers, answer = call(f"{url}/v2/models/iris/infer", {"inputs": "x"},
                                   {"x-user-id": "user-1"})
    assert 400 <= status < 500 and headers["x-neural-variant"] in ("treatment", "control")


def test_shadow_copy_to_mlserver_agrees(stack: dict[str, Any]) -> None:
    for i in range(10):
        status, headers, _ = call(f"{stack['url']}/v2/models/iris-shadowed/infer", _body(i),
                                  {"x-user-id": f"u{i}"})
        assert status == 200 and headers["x-neural-variant"] == "primary"
    shadow = wait_until(
        lambda: (s := _totals(stack["data"], "shadow_windows", "shadow_id", "iris-v1"))
        and s.get("compared") == 10 and s,
        20, "shadow copies not compared",
    )
    assert shadow["agreements"] == 10 and shadow.get("shadow_errors", 0) == 0
