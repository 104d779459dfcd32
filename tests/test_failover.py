"""Several control-plane replicas on one store: the sidecar and the Python API fail over.

Real processes: two control planes on one shared store, kill -9 of one while traffic,
metrics and API reads go on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from google.protobuf import descriptor_pool
from peers.procs import start_all, start_control_plane, start_demo, start_sidecar, write_routes
from support.processes import start_server
from test_sidecar_control_plane import Traffic, _counted, _wait
from test_sidecar_routing import EXPERIMENT

from neural.mlops.errors import InvalidArgument
from neural.mlops.registry import ModelRegistry
from neural.mlops.v1 import (  # noqa: F401 - their services join the descriptor pool
    audit_pb2,
    auth_pb2,
    deployments_pb2,
    experiments_pb2,
    registry_pb2,
    routing_pb2,
)
from neural.mlops.v1.replicas import READS, channel_target, split_addresses


def test_the_sidecar_keeps_serving_and_reporting_through_the_other_replica(
    tmp_path: Path,
) -> None:
    routes = tmp_path / "routes.json"
    write_routes(routes, [EXPERIMENT])
    data = tmp_path / "shared-store"
    first = start_control_plane(data, routes)  # migrates the store before the second opens it
    second, model = start_all(lambda: start_control_plane(data, routes),
                              lambda: start_demo("m"))
    sidecar = start_sidecar(model.address, f"{first.address},{second.address}",
                            "--flush-interval", "0.2")
    try:
        _wait(lambda: sidecar.health()["routing"] == "live", 20, "no routing table")
        with Traffic(sidecar.address) as traffic:
            _wait(lambda: sidecar.health()["batches_acked"] > 3, 30, "no metrics acknowledged")
            first.kill9()
            during = traffic.ok
            _wait(lambda: traffic.ok > during + 200, 30, "traffic stopped")
            # Live again on the second replica, and it acknowledges the batches, resent
            # ones included, while the first stays dead.
            _wait(lambda: sidecar.health()["routing"] == "live", 20, "no failover of routes")
            acked = sidecar.health()["batches_acked"]
            _wait(lambda: sidecar.health()["batches_acked"] > acked + 3, 20,
                  "no metrics through the second replica")
        assert traffic.failures == []
        assert sidecar.stop() == 0  # the last window is acknowledged by the second replica
        counted = _counted(data, EXPERIMENT["route_id"])
        assert sum(counted.values()) == traffic.ok  # exactly once across the replicas
    finally:
        for p in (sidecar, model, first, second):
            p.stop()


def test_the_python_api_and_cli_keep_reading_after_a_replica_is_killed(tmp_path: Path) -> None:
    data = tmp_path / "shared-store"
    first = start_server(data)
    second = start_server(data)
    location = f"grpc://{first.address},{second.address}"
    try:
        registry = ModelRegistry(location)
        registry.register_model(name="ha", version="1", created_by="ds@x.com",
                                metrics={"accuracy": 0.9})
        first.kill9()
        for _ in range(30):  # round robin: half of these would go to the dead replica
            assert registry.get_model_version("ha", "1").metrics == {"accuracy": 0.9}
            assert [v.version for v in registry.list_versions("ha")] == ["1"]
        # A write goes to the replica that is up (the dead one is never picked).
        registry.register_model(name="ha", version="2", created_by="ds@x.com")
        out = subprocess.run(
            [sys.executable, "-m", "neural.mlops", "registry", "get", "ha", "2", "--json"],
            capture_output=True, text=True, timeout=60,
            env={**os.environ, "NEURAL_MLOPS_TARGET": location},
        )
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["version"] == "2"
        registry.close()
    finally:
        first.stop()
        second.stop()


def test_a_replica_down_at_start_is_skipped(tmp_path: Path) -> None:
    server = start_server(tmp_path / "store")
    try:
        dead = "127.0.0.1:1"  # nothing listens on port 1
        registry = ModelRegistry(f"grpc://{dead},{server.address}")
        for i in range(5):
            registry.register_model(name="down", version=str(i), created_by="ds@x.com")
        assert len(list(registry.list_versions("down"))) == 5
        registry.close()
    finally:
        server.stop()


def test_addresses_are_checked_and_become_one_round_robin_channel() -> None:
    assert split_addresses("a.example:1, 10.0.0.2:2") == ["a.example:1", "10.0.0.2:2"]
    for bad in ("", "a:1,", "a", "a:1,http://b:2", "a:1,b:0"):
        with pytest.raises(ValueError):
            split_addresses(bad)
    with pytest.raises(InvalidArgument):
        ModelRegistry("grpc://127.0.0.1:1,nope")
    target, options = channel_target(["localhost:7001", "127.0.0.2:7002"],
                                      [("grpc.enable_retries", 0), ("x", 1)])
    assert target == "ipv4:127.0.0.1:7001,127.0.0.2:7002"
    opts = dict(options)
    assert opts["grpc.enable_retries"] == 1 and opts["x"] == 1
    assert opts["grpc.default_authority"] == "localhost:7001"
    config = json.loads(opts["grpc.service_config"])
    assert config["loadBalancingConfig"] == [{"round_robin": {}}]
    assert channel_target(["[::1]:1", "[::1]:2"])[0] == "ipv6:[::1]:1,[::1]:2"
    assert channel_target(["one.example:1"]) == ("one.example:1", [])


def test_every_retried_read_is_a_method_of_the_contract() -> None:
    pool = descriptor_pool.Default()
    for service, methods in READS.items():
        if service.startswith("grpc."):
            continue
        found = {m.name for m in pool.FindServiceByName(service).methods}
        assert set(methods) <= found, service
