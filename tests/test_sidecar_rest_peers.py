"""The sidecar's OIP REST form in front of a real REST peer: MLServer's HTTP port (a
scikit-learn model trained here), driven by a plain HTTP client (JSON bodies, and gzip
ones routed by their parameters). Marked ``peers`` (skips with one line outside CI when
the MLServer virtualenv is missing).
"""

from __future__ import annotations

import gzip
import json
import sys
import urllib.error
import urllib.request
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

# Targeting on an OIP request parameter: gold requests go to iris v1, others as asked
# (``iris-gold`` is no model on MLServer: 404).
GOLD = {
    "model_name": "iris-gold",
    "route_id": "exp-iris-gold",
    "kind": "experiment",
    "variants": [{"name": "gold", "weight": 1.0, "model_name": "iris", "model_version": "v1"}],
    "targeting": ["param.tier = gold"],
}
GZ_SHADOWED = dict(SHADOWED, model_name="iris-shadowed-gz", route_id="dep-iris-rest-gz",
                   shadows=[dict(SHADOWED["shadows"][0], shadow_id="iris-v1-gz")])


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
        write_routes(routes, [ROUTE, SHADOWED, GOLD, GZ_SHADOWED])
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


def _post(url: str, data: bytes, encoding: str) -> tuple[int, dict[str, str], Any]:
    """A plain urllib call with an encoded body (``call`` sends JSON as is)."""
    req = urllib.request.Request(url, data=data, headers={
        "Content-Type": "application/json", "Content-Encoding": encoding, "x-user-id": "u1"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            status, headers, raw = r.status, r.headers, r.read()
    except urllib.error.HTTPError as exc:
        status, headers, raw = exc.code, exc.headers, exc.read()
    return status, {k.lower(): v for k, v in headers.items()}, json.loads(raw)


@pytest.mark.parametrize("encoding", ["gzip", "identity"])
def test_gzip_body_is_routed_by_its_parameters_and_mlserver_decodes_it(
    stack: dict[str, Any], encoding: str,
) -> None:
    """MLServer reads gzip request bodies itself: the sidecar reads the parameters from
    its own decoded copy and forwards the caller's bytes, which MLServer answers exactly
    as the plain body sent to it directly."""
    url, direct = stack["url"], stack["direct"]
    encode = gzip.compress if encoding == "gzip" else (lambda b: b)
    for seed in range(3):
        gold = dict(_body(seed), parameters={"tier": "gold"})
        status, headers, answer = _post(f"{url}/v2/models/iris-gold/infer",
                                        encode(json.dumps(gold).encode()), encoding)
        assert status == 200 and headers["x-neural-variant"] == "gold", answer
        want = call(f"{direct}/v2/models/iris/versions/v1/infer", gold)[2]
        assert [o["data"] for o in answer["outputs"]] == [o["data"] for o in want["outputs"]]
        silver = dict(_body(seed), parameters={"tier": "silver"})
        status, headers, _ = _post(f"{url}/v2/models/iris-gold/infer",
                                   encode(json.dumps(silver).encode()), encoding)
        assert status == 404 and "x-neural-variant" not in headers  # sent as asked


def test_gzip_bomb_is_refused_by_the_sidecar_naming_the_limit(stack: dict[str, Any]) -> None:
    bomb = gzip.compress(b'{"parameters": {"tier": "gold"}, "pad": "' + b" " * (65 << 20))
    status, _, answer = _post(f"{stack['url']}/v2/models/iris-gold/infer", bomb, "gzip")
    assert status == 413 and answer["error"] == (
        f"request body decompresses to over {64 << 20} bytes (the contract's message limit)")


def test_shadow_copy_of_a_gzip_request_is_decoded_and_agrees(stack: dict[str, Any]) -> None:
    for i in range(5):
        data = gzip.compress(json.dumps(_body(i)).encode())
        status, headers, _ = _post(f"{stack['url']}/v2/models/iris-shadowed-gz/infer", data,
                                   "gzip")
        assert status == 200 and headers["x-neural-variant"] == "primary"
    shadow = wait_until(
        lambda: (s := _totals(stack["data"], "shadow_windows", "shadow_id", "iris-v1-gz"))
        and s.get("compared") == 5 and s,
        20, "shadow copies of gzip requests not compared",
    )
    assert shadow["agreements"] == 5 and shadow.get("shadow_errors", 0) == 0
