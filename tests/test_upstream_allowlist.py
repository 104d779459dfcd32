"""Traffic cannot be redirected through ``upstream`` (issue #18): the control plane refuses
malformed and (with ``serve --allowed-upstream``) unlisted upstreams, every sidecar
refuses upstreams outside its own ``--allowed-upstream`` list (fail-static for a route,
no mirror for a shadow, reported on /healthz and in its metrics), a mirrored call never
carries the caller's credentials, and a registry-gate override needs the admin role."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from peers.procs import (  # noqa: E402
    Proc,
    start_all,
    start_control_plane,
    start_demo,
    start_sidecar,
    write_routes,
)
from support.databases import open_services, store_args  # noqa: E402
from support.processes import ServerProcess, start_server  # noqa: E402
from support.rpc import call, message, status  # noqa: E402
from test_sidecar_routing import infer_stub, request  # noqa: E402

from neural.mlops.deployment import DeploymentManager  # noqa: E402
from neural.mlops.errors import InvalidArgument  # noqa: E402
from neural.mlops.server.clock import ManualClock  # noqa: E402
from neural.mlops.server.config import ServerConfig  # noqa: E402
from neural.mlops.server.deployments.model import GatePolicy  # noqa: E402
from neural.mlops.server.deployments.planning import CreateSpec  # noqa: E402
from neural.mlops.sidecar.allowlist import UpstreamPolicy  # noqa: E402
from neural.mlops.v1.upstream import UpstreamAllowList, parse_upstream  # noqa: E402

REFUSED = ["unix:/tmp/x", "http://a:1", "a:0", "a b:1", "user@h:1", "h:1/x", "dns:///h:1",
           "ipv4:10.0.0.1:80", "::1:80", "h:65536", "0x7f000001:80", "127.1:80", "h:",
           "h\x00:1", "h:080"]


def _wait(predicate: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = predicate()
        if got:
            return got
        time.sleep(0.05)
    raise TimeoutError("condition not met")


def _records(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def _port(address: str) -> str:
    return address.rsplit(":", 1)[1]


# ---------------------------------------------------------------- the address rule


@pytest.mark.parametrize("value", REFUSED)
def test_an_upstream_that_is_not_plain_host_port_is_refused(value: str) -> None:
    with pytest.raises(ValueError):
        parse_upstream(value)


def test_upstreams_are_compared_in_canonical_form() -> None:
    assert parse_upstream("Models.Example.COM:8001") == "models.example.com:8001"
    assert parse_upstream("[0:0::1]:9000") == "[::1]:9000"
    allow = UpstreamAllowList("[::1]:*, *.svc:8001")
    assert allow.allows("[0::1]:1") and allow.allows("a.SVC:8001")
    assert not allow.allows("a.svc:8002") and not allow.allows("unix:/a.svc:8001")


def test_a_sidecar_allows_its_own_upstream_host_on_any_port_by_default() -> None:
    policy = UpstreamPolicy("127.0.0.1:8001")
    assert policy.patterns == ("127.0.0.1:*",)
    assert policy.allows("") and policy.allows("127.0.0.1:9000")
    assert not policy.allows("127.0.0.2:8001") and not policy.allows("unix:/tmp/x")
    explicit = UpstreamPolicy("127.0.0.1:8001", "10.0.0.*:*")
    assert explicit.allows("127.0.0.1:8001")  # its own --upstream, as written
    assert not explicit.allows("127.0.0.1:9000") and explicit.allows("10.0.0.7:1")


# ---------------------------------------------------------------- the control plane


@pytest.fixture(scope="module")
def listed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """`neural-mlops serve --allowed-upstream 127.0.0.1:*`."""
    srv = start_server(tmp_path_factory.mktemp("listed") / "data",
                       "--allowed-upstream", "127.0.0.1:*")
    yield srv
    srv.stop()


@pytest.mark.parametrize("value", ["unix:/tmp/x", "http://a:1", "a:0", "a b:1", "user@h:1"])
def test_create_refuses_a_malformed_upstream_naming_the_field(
    listed: ServerProcess, value: str
) -> None:
    with DeploymentManager(listed.url) as manager:
        with pytest.raises(InvalidArgument) as shadow:
            manager.shadow_deploy("m", "m", 100, "ops@x.com", upstream=value)
        with pytest.raises(InvalidArgument) as deployment:
            manager.create_deployment("m", "v2", created_by="ops@x.com", upstream=value)
        assert manager.list_shadows() == [] and manager.list_deployments() == []
    for exc in (shadow.value, deployment.value):
        assert exc.field == "upstream" and str(exc).startswith("upstream ")


def test_serve_allowed_upstream_refuses_other_hosts(listed: ServerProcess) -> None:
    with DeploymentManager(listed.url) as manager:
        for other in ("10.0.0.1:8001", "localhost:8001", "127.0.0.2:1"):
            with pytest.raises(InvalidArgument, match="not among the upstreams") as exc:
                manager.shadow_deploy("m", "m", 100, "ops@x.com", upstream=other)
            assert exc.value.field == "upstream"
        shadow = manager.shadow_deploy("m", "m", 100, "ops@x.com", upstream="127.0.0.1:9")
        assert shadow.upstream == "127.0.0.1:9"
        manager.stop_shadow(shadow.shadow_id, "ops@x.com")


async def test_without_patterns_any_well_formed_upstream_and_the_gate_come_from_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEURAL_MLOPS_DEPLOY_GATE", "staging")
    s = await open_services(tmp_path / "s", clock=ManualClock())  # embedded: same loader
    try:
        assert s.deployments.gate_policy is GatePolicy.STAGING
        shadow = await s.deployments.shadow_deploy("m", "m", 100, "ops@x.com",
                                                   upstream="Models.Internal:8001")
        assert shadow.upstream == "models.internal:8001"
        with pytest.raises(InvalidArgument):
            await s.deployments.create_deployment(CreateSpec("m", "v2", created_by="ops@x.com",
                                                             upstream="unix:/tmp/x"))
    finally:
        await s.close()
    config = ServerConfig.load({"allowed_upstreams": "10.0.0.*:*", "deploy_gate": "production"})
    s = await open_services(tmp_path / "t", clock=ManualClock(), config=config)
    try:
        assert s.deployments.gate_policy is GatePolicy.PRODUCTION
        with pytest.raises(InvalidArgument, match="not among"):
            await s.deployments.shadow_deploy("m", "m", 100, "ops@x.com", upstream="10.0.1.1:1")
    finally:
        await s.close()


def test_a_gate_override_needs_the_admin_role(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "neural.mlops", "auth", "bootstrap",
                          *store_args(tmp_path), "--json"],
                         check=True, capture_output=True, text=True)
    admin = json.loads(out.stdout)["token"]
    srv = start_server(tmp_path, "--auth", "token")
    try:
        with grpc.insecure_channel(srv.address) as ch:
            auth = "/neural.mlops.v1.AuthService/CreateToken"
            operator = call(ch, auth, message(auth, name="ops", roles=["operator"]),
                            token=admin).secret
            create = "/neural.mlops.v1.DeploymentService/CreateDeployment"
            plain = message(create, model_name="m", model_version="v2")
            override = message(create, model_name="m", model_version="v2",
                               override_reason="hotfix")
            # Allowed past authorization: the domain answers (the version is unknown).
            assert status(ch, create, plain, token=operator) == grpc.StatusCode.NOT_FOUND
            assert status(ch, create, override, token=operator) == \
                grpc.StatusCode.PERMISSION_DENIED
            assert status(ch, create, override, token=admin) == grpc.StatusCode.NOT_FOUND
    finally:
        srv.stop()


# ---------------------------------------------------------------- the sidecar


async def _infer(address: str, n: int, model: str = "m",
                 metadata: tuple[tuple[str, str], ...] = ()) -> list[tuple[str, str]]:
    """(model_version, x-neural-variant) of ``n`` calls."""
    out = []
    async with grpc.aio.insecure_channel(address) as ch:
        stub = infer_stub(ch)
        for i in range(n):
            c = stub(request([1.0, 2.0], model=model),
                     metadata=(("x-user-id", f"u{i}"), *metadata))
            resp = await c
            md = dict(await c.trailing_metadata())
            out.append((resp.model_version, md.get("x-neural-variant", "")))
    return out


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Three demo models recording what they receive: the sidecar's own upstream, one the
    sidecar allows, one it does not (both on loopback, which the control plane accepts)."""
    tmp = tmp_path_factory.mktemp("models")
    files = {k: tmp / f"{k}.jsonl" for k in ("own", "allowed", "denied")}
    procs = start_all(*(lambda f=f: start_demo("m", "--record-metadata", str(f))
                        for f in files.values()))
    yield {"tmp": tmp, "files": files, **dict(zip(files, procs, strict=True))}
    for p in procs:
        p.stop()


def _sidecar(models: dict[str, Any], control_plane: str) -> Proc:
    return start_sidecar(models["own"].address, control_plane, "--flush-interval", "0.2",
                         "--grace-seconds", "1",
                         "--allowed-upstream", f"127.0.0.1:{_port(models['allowed'].address)}",
                         "--sensitive-header", "x-session")


def test_a_shadow_outside_the_allow_list_gets_nothing_and_copies_carry_no_credentials(
    models: dict[str, Any], listed: ServerProcess
) -> None:
    sidecar = _sidecar(models, listed.address)
    files = models["files"]
    try:
        _wait(lambda: sidecar.health()["routing"] == "live")
        with DeploymentManager(listed.url) as manager:
            good = manager.shadow_deploy("m", "m", 100, "ops@x.com",
                                         upstream=models["allowed"].address)
            bad = manager.shadow_deploy("m", "m", 100, "ops@x.com",
                                        upstream=models["denied"].address)
            try:
                health = _wait(lambda: (h := sidecar.health())["upstreams_refused"] and h)
                secret = (("authorization", "Bearer caller-secret"), ("cookie", "s=1"),
                          ("x-api-key", "k"), ("x-session", "s"), ("x-trace", "t"))
                asyncio.run(_infer(sidecar.address, 20, metadata=secret))
                shadowed = _wait(lambda: len(r := _records(files["allowed"])) >= 20 and r)
            finally:
                manager.stop_shadow(good.shadow_id, "ops@x.com")
                manager.stop_shadow(bad.shadow_id, "ops@x.com")
        assert health["allowed_upstreams"] == [f"127.0.0.1:{_port(models['allowed'].address)}"]
        [refusal] = health["upstreams_refused"]
        assert refusal["kind"] == "shadow" and refusal["name"] == bad.shadow_id
        assert refusal["upstream"] == models["denied"].address
        assert refusal["outcome"] == "not mirrored"
        counted = [line for line in sidecar.metrics().splitlines()
                   if line.startswith("neural_sidecar_upstream_refused_total{")]
        # One series per route the shadow rode along with (its route may be renamed as
        # the two shadows' tables come and go); every one names the refused shadow.
        assert counted and all(f'name="{bad.shadow_id}"' in line and 'kind="shadow"' in line
                               for line in counted)
        time.sleep(0.5)  # copies to the refused shadow would have arrived by now
        assert _records(files["denied"]) == []
        for rec in shadowed:
            keys = {k for k, _ in rec["metadata"]}
            assert rec["shadow"] and "x-trace" in keys and "x-user-id" in keys
            assert not keys & {"authorization", "cookie", "x-api-key", "x-session"}
        primary = [r for r in _records(files["own"]) if not r["shadow"]]
        assert len(primary) >= 20  # the primary upstream keeps today's forwarding
        assert all(["authorization", "Bearer caller-secret"] in r["metadata"] for r in primary)
    finally:
        sidecar.stop()


def test_a_route_to_an_unlisted_upstream_keeps_the_previous_route(
    models: dict[str, Any], tmp_path: Path
) -> None:
    routes = tmp_path / "routes.json"

    def route(model: str, version: str, upstream: str) -> dict[str, Any]:
        return {"model_name": model, "route_id": f"dep-{model}-{version}", "kind": "deployment",
                "variants": [{"name": "new", "weight": 1.0, "model_name": "m",
                              "model_version": version, "upstream": upstream}]}

    write_routes(routes, [route("m", "v2", models["allowed"].address)])
    cp = start_control_plane(tmp_path / "cp", routes)
    sidecar = _sidecar(models, cp.address)
    try:
        _wait(lambda: sidecar.health()["routes"] == 1)
        assert set(asyncio.run(_infer(sidecar.address, 5))) == {("v2", "new")}
        version = sidecar.health()["table_version"]
        denied = models["denied"].address
        before = len(_records(models["files"]["denied"]))
        write_routes(routes, [route("m", "v3", denied), route("n", "v3", denied)])
        health = _wait(lambda: (h := sidecar.health())["table_version"] > version and h)
        outcomes = {(r["model"], r["kind"], r["outcome"]) for r in health["upstreams_refused"]}
        assert outcomes == {("m", "variant", "kept previous route"),
                            ("n", "variant", "not routed")}
        assert set(asyncio.run(_infer(sidecar.address, 5))) == {("v2", "new")}  # fail-static
        # An unrouted model goes to the sidecar's own upstream as the caller named it (the
        # demo model serves only "m", so it answers NOT_FOUND).
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            asyncio.run(_infer(sidecar.address, 1, model="n"))
        assert exc.value.code() == grpc.StatusCode.NOT_FOUND
        assert _records(models["files"]["own"])[-1]["model_name"] == "n"
        assert len(_records(models["files"]["denied"])) == before
        assert "neural_sidecar_upstreams_refused 2.0" in sidecar.metrics()
    finally:
        sidecar.stop()
        cp.stop()
