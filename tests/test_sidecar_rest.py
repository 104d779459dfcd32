"""The sidecar's OIP REST form, driven by a plain HTTP client (urllib): a real control plane,
real sidecar and demo-model processes (the demo model's REST form, ``--http-listen``).

Routes: ``m`` is an A/B test (treatment -> version 2, control -> version 1); ``n`` is a
deployment serving model ``m`` with a 100 % shadow on a second model server whose outputs
are off by 0.5 (so every comparison disagrees), reached over REST through
``--upstream-http-for``.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from peers.procs import READY, Proc, start_all, start_control_plane, write_routes  # noqa: E402
from support.databases import execute_sql  # noqa: E402
from support.processes import wait_for_line  # noqa: E402

from neural.mlops.v1.assignment import Assigner  # noqa: E402

REST = re.compile(r"REST on (https?://\S+:\d+)")
METRICS = re.compile(r"metrics on http://\S+:(\d+)/metrics")
EXPERIMENT = {
    "model_name": "m",
    "route_id": "exp-rest",
    "kind": "experiment",
    "variants": [
        {"name": "treatment", "weight": 0.5, "model_name": "m", "model_version": "2"},
        {"name": "control", "weight": 0.5, "model_name": "m", "model_version": "1"},
    ],
}


def _start(args: list[str], timeout: float = 60.0) -> tuple[Proc, str]:
    """A ``neural-mlops`` process and the REST URL its ready line prints."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "neural.mlops", *args],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        line = wait_for_line(proc, READY, timeout).string
        address = READY.search(line).group(1)  # type: ignore[union-attr]
        rest = REST.search(line).group(1)  # type: ignore[union-attr]
        metrics = METRICS.search(line)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return Proc(proc, address, int(metrics.group(1)) if metrics else 0), rest


def start_rest_demo(name: str, *args: str) -> tuple[Proc, str]:
    return _start(["demo-model", "--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
                   "--name", name, *args])


def start_rest_sidecar(upstream: tuple[Proc, str], control_plane: str, *args: str
                       ) -> tuple[Proc, str]:
    return _start([
        "sidecar", "--listen", "127.0.0.1:0", "--upstream", upstream[0].address,
        "--http-listen", "127.0.0.1:0", "--upstream-http", upstream[1],
        "--control-plane", control_plane, "--metrics-port", "0", "--flush-interval", "0.2",
        "--grace-seconds", "2", "--log-level", "warning", *args,
    ])


def call(url: str, body: Any = None, headers: dict[str, str] | None = None,
         method: str | None = None) -> tuple[int, dict[str, str], Any]:
    """(status, lower-case headers, JSON body) of one plain HTTP request."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            status, hdrs, raw = r.status, r.headers, r.read()
    except urllib.error.HTTPError as exc:
        status, hdrs, raw = exc.code, exc.headers, exc.read()
    return status, {k.lower(): v for k, v in hdrs.items()}, json.loads(raw) if raw else None


def infer_body(x: list[float], **extra: Any) -> dict[str, Any]:
    return {"inputs": [{"name": "x", "shape": [1, len(x)], "datatype": "FP32", "data": x}],
            **extra}


def wait_until(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = predicate()
        if got:
            return got
        time.sleep(0.05)
    raise TimeoutError(what)


def prom(text: str, name: str, **labels: str) -> float:
    """The sum of a Prometheus metric's samples carrying these labels (any order)."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _totals(data_dir: Path, table: str, key: str, value: str) -> dict[str, Any]:
    (rows,) = execute_sql(data_dir, (
        f"SELECT {'variant, ' if table == 'traffic_windows' else ''}stats FROM {table} "
        f"WHERE {key} = ? AND window_start_us = -1",
        (value,),
    ))
    if table == "traffic_windows":
        return {variant: json.loads(stats) for variant, stats in rows}
    return json.loads(rows[0][0]) if rows else {}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("rest")
    record = tmp / "shadow-calls.jsonl"
    primary, biased = start_all(
        lambda: start_rest_demo("m", "--emit-metric"),
        lambda: start_rest_demo("m", "--bias", "0.5", "--record-metadata", str(record)),
    )
    routes = tmp / "routes.json"
    write_routes(routes, [
        EXPERIMENT,
        {
            "model_name": "n",
            "route_id": "dep-rest-n",
            "kind": "deployment",
            "variants": [{"name": "primary", "weight": 1.0, "model_name": "m"}],
            "shadows": [{"shadow_id": "biased-rest", "model_name": "m",
                         "upstream": biased[0].address, "percentage": 100}],
        },
    ])
    cp = start_control_plane(tmp / "cp", routes)
    sidecar, url = start_rest_sidecar(
        primary, cp.address, "--upstream-http-for", f"{biased[0].address}={biased[1]}"
    )
    procs = [sidecar, cp, primary[0], biased[0]]
    try:
        wait_until(lambda: sidecar.health()["routing"] == "live", 30, "no routing table")
        yield {"url": url, "sidecar": sidecar, "cp": cp, "data": tmp / "cp",
               "record": record, "direct": primary[1]}
    finally:
        for p in procs:
            p.stop()


def test_infer_is_routed_by_the_unit_hash_and_names_its_variant(stack: dict[str, Any]) -> None:
    url = stack["url"]
    expected = Assigner("exp-rest", [("treatment", 0.5), ("control", 0.5)])
    versions = {"treatment": "2", "control": "1"}
    seen = {"treatment": 0, "control": 0}
    for i in range(60):
        user = f"user-{i}"
        status, headers, answer = call(f"{url}/v2/models/m/infer", infer_body([float(i), 1.0]),
                                       {"x-user-id": user})
        variant = expected.names[expected.choose_index(user)]
        assert status == 200, answer
        assert headers["x-neural-variant"] == variant
        # The variant rewrote the version in the upstream's URL; the model echoes it.
        assert answer["model_name"] == "m" and answer["model_version"] == versions[variant]
        outputs = {o["name"]: o["data"] for o in answer["outputs"]}
        assert outputs == {"x_out": [2.0 * i, 2.0], "score": [i + 1.0]}
        # The upstream's custom metric header comes back to the caller too.
        assert float(headers["x-neural-metric-output_mean"]) == i + 1.0
        seen[variant] += 1
    assert min(seen.values()) > 10  # both arms served
    # The control plane counts each arm's calls, and the custom metric beside them.
    data = stack["data"]
    totals = wait_until(
        lambda: (t := _totals(data, "traffic_windows", "route_id", "exp-rest"))
        and sum(s["count"] for s in t.values()) == 60 and t,
        15, "the control plane did not count the REST calls",
    )
    assert {v: s["count"] for v, s in totals.items()} == seen
    assert sum(s["custom"]["output_mean"]["n"] for s in totals.values()) == 60
    assert sum(s["custom"]["output_mean"]["sum"] for s in totals.values()) == sum(
        i + 1.0 for i in range(60)
    )


def test_forced_variant_and_a_version_in_the_path(stack: dict[str, Any]) -> None:
    status, headers, answer = call(
        f"{stack['url']}/v2/models/m/versions/9/infer", infer_body([1.0]),
        {"x-user-id": "someone", "x-neural-variant": "treatment"},
    )
    assert status == 200 and headers["x-neural-variant"] == "treatment"
    assert answer["model_version"] == "2"  # the variant's version wins over the caller's
    # A model without a route is sent as asked, unlabelled.
    status, headers, answer = call(f"{stack['url']}/v2/models/m2/infer", infer_body([1.0]))
    assert status == 404 and answer == {"error": "unknown model 'm2'"}
    assert "x-neural-variant" not in headers


def test_health_and_metadata_are_forwarded(stack: dict[str, Any]) -> None:
    url, direct = stack["url"], stack["direct"]
    for path in ("/v2/health/live", "/v2/health/ready", "/v2", "/v2/models/m",
                 "/v2/models/m/versions/1", "/v2/models/m/ready",
                 "/v2/models/m/versions/1/ready", "/v2/models/zz"):
        via, want = call(url + path), call(direct + path)
        assert (via[0], via[2]) == (want[0], want[2]), path
    assert call(url + "/v2/models/zz")[0] == 404


def test_shadow_is_mirrored_over_http_and_compared(stack: dict[str, Any]) -> None:
    url = stack["url"]
    for i in range(20):
        status, headers, answer = call(
            f"{url}/v2/models/n/infer", infer_body([float(i), 2.0]),
            {"x-user-id": f"u{i}", "authorization": "Bearer secret", "x-request-id": f"r{i}"},
        )
        assert status == 200 and headers["x-neural-variant"] == "primary"
        assert answer["model_name"] == "m"
    shadow = wait_until(
        lambda: (s := _totals(stack["data"], "shadow_windows", "shadow_id", "biased-rest"))
        and s.get("compared") == 20 and s,
        15, "shadow windows not reported",
    )
    assert shadow["agreements"] == 0 and shadow.get("shadow_errors", 0) == 0
    lines = [json.loads(ln) for ln in stack["record"].read_text().splitlines()]
    assert len(lines) == 20 and all(ln["shadow"] for ln in lines)
    assert all(ln["model_name"] == "m" for ln in lines)
    sent = {k for ln in lines for k, _ in ln["metadata"]}
    assert "authorization" not in sent and "x-user-id" in sent
    text = stack["sidecar"].metrics()
    assert prom(text, "neural_sidecar_shadow_total", shadow="biased-rest",
                outcome="disagreed") == 20


def test_body_over_the_limit_is_refused_before_the_upstream(stack: dict[str, Any]) -> None:
    import http.client

    host, port = stack["url"].removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.putrequest("POST", "/v2/models/m/infer")
        conn.putheader("Content-Length", str(64 * 1024 * 1024 + 1))
        conn.endheaders()
        resp = conn.getresponse()
        assert resp.status == 413
        assert "request body over" in json.loads(resp.read())["error"]
    finally:
        conn.close()


def test_upstream_down_is_503_and_counted(stack: dict[str, Any], tmp_path: Path) -> None:
    # A sidecar whose REST upstream has gone away: the caller gets an OIP REST error.
    gone, gone_url = start_rest_demo("m")
    gone.stop()
    sidecar, url = start_rest_sidecar((gone, gone_url), stack["cp"].address)
    try:
        wait_until(lambda: sidecar.health()["routing"] == "live", 30, "no routing table")
        status, headers, answer = call(f"{url}/v2/models/m/infer", infer_body([1.0]),
                                       {"x-user-id": "user-1"})
        assert status == 503 and headers["x-neural-variant"] in ("treatment", "control")
        assert answer["error"].startswith(f"upstream {gone_url} unavailable")
        assert call(f"{url}/v2/health/ready")[0] == 503
        assert prom(sidecar.metrics(), "neural_sidecar_requests_total", route="exp-rest",
                    code="UNAVAILABLE") == 1
    finally:
        sidecar.stop()


def test_control_plane_away_keeps_routing_on_the_last_table(stack: dict[str, Any]) -> None:
    """Fail-static (runs last: it stops the module's control plane)."""
    stack["cp"].stop()
    sidecar = stack["sidecar"]
    wait_until(lambda: sidecar.health()["routing"] == "stale", 20, "still live")
    expected = Assigner("exp-rest", [("treatment", 0.5), ("control", 0.5)])
    for user in ("a", "b", "c", "d"):
        status, headers, _ = call(f"{stack['url']}/v2/models/m/infer", infer_body([1.0]),
                                  {"x-user-id": user})
        assert status == 200
        assert headers["x-neural-variant"] == expected.names[expected.choose_index(user)]
