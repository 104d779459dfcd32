"""Rollouts end to end: a real control plane, demo model servers and a sidecar, live traffic.

The controller judges the metric batches the sidecar streams; nothing is fed by hand.
"""

from __future__ import annotations

import asyncio
import random
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from peers.procs import Proc, start_demo, start_sidecar  # noqa: E402
from support.processes import ServerProcess, start_server  # noqa: E402

from neural.mlops.deployment import (  # noqa: E402
    DeploymentManager,
    DeploymentStatus,
    DeploymentStrategy,
    PerformanceMetrics,
    RollbackConfig,
)
from neural.mlops.registry import ModelRegistry, ModelStage  # noqa: E402
from neural.mlops.v1 import oip_pb2  # noqa: E402

INFER = "/inference.GRPCInferenceService/ModelInfer"
Req = oip_pb2.ModelInferRequest


def _request() -> Req:
    arr = np.asarray([[1.0, 2.0, 3.0, 4.0]], dtype="<f4")
    return Req(model_name="m", model_version="v1",
               inputs=[Req.InferInputTensor(name="x", datatype="FP32", shape=[1, 4])],
               raw_input_contents=[arr.tobytes()])


@dataclass
class Traffic:
    """Closed-loop callers through the sidecar; each call is recorded as
    (t, code, variant, version)."""

    address: str
    concurrency: int = 6
    results: list[tuple[float, str, str, str]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Traffic:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self._thread.start()
        return self

    async def _run(self) -> None:
        async with grpc.aio.insecure_channel(self.address) as ch:
            stub = ch.unary_unary(INFER, request_serializer=Req.SerializeToString,
                                  response_deserializer=oip_pb2.ModelInferResponse.FromString)
            req = _request()

            async def worker() -> None:
                rng = random.Random()
                while not self._stop.is_set():
                    call = stub(
                        req, metadata=(("x-user-id", f"u{rng.randrange(10**9)}"),), timeout=10
                    )
                    try:
                        resp = await call
                        md = dict(await call.trailing_metadata())
                        self.results.append((time.monotonic(), "OK", md.get("x-neural-variant", ""),
                                             resp.model_version))
                    except grpc.aio.AioRpcError as err:
                        self.results.append((time.monotonic(), err.code().name, "", ""))

            await asyncio.gather(*(worker() for _ in range(self.concurrency)))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(15)

    def since(self, t0: float) -> list[tuple[float, str, str, str]]:
        return [r for r in list(self.results) if r[0] >= t0]


@dataclass
class Stack:
    server: ServerProcess
    stable: Proc
    canary: Proc
    sidecar: Proc
    traffic: Traffic
    manager: DeploymentManager


def _register(url: str) -> None:
    reg = ModelRegistry(url)
    for version in ("v1", "v2"):
        reg.register_model(name="m", version=version, artifact_uri=f"s3://models/m/{version}",
                           framework="sklearn", created_by="ds@x.com")
    reg.request_promotion(name="m", version="v2", target_stage=ModelStage.PRODUCTION,
                          requested_by="eng@x.com", justification="offline eval passed")
    reg.approve_promotion(name="m", version="v2", approver="boss@x.com")


def _stack(tmp_path: Path, canary_args: tuple[str, ...]) -> Iterator[Stack]:
    with ThreadPoolExecutor(3) as pool:  # processes start in parallel: a second, not four
        f_server = pool.submit(start_server, tmp_path / "cp")
        f_stable = pool.submit(start_demo, "m")
        f_canary = pool.submit(start_demo, "m", *canary_args)
        server, stable, canary = f_server.result(), f_stable.result(), f_canary.result()
        f_sidecar = pool.submit(
            start_sidecar, stable.address, server.address, "--flush-interval", "0.2"
        )
        _register(server.url)
        sidecar = f_sidecar.result()
    traffic = Traffic(sidecar.address).start()
    stack = Stack(server, stable, canary, sidecar, traffic, DeploymentManager(server.url))
    try:
        yield stack
    finally:
        traffic.stop()
        for p in (sidecar, canary, stable):
            p.stop()
        stack.server.stop()  # the one running now: tests restart it after kill -9


# One stack per module and kind (process start-up dominates on a small machine); each test
# leaves the model without an active deployment, so the next one starts clean.
@pytest.fixture(scope="module")
def failing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from _stack(tmp_path_factory.mktemp("failing"), ("--error-rate", "0.05", "--seed", "7"))


@pytest.fixture(scope="module")
def healthy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from _stack(tmp_path_factory.mktemp("healthy"), ())


def _wait(cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.1)
    raise TimeoutError(what)


def _create(s: Stack, **kw: object) -> str:
    args = dict(
        model_name="m",
        model_version="v2",
        strategy=DeploymentStrategy.CANARY,
        created_by="ops@x.com",
        baseline_metrics=PerformanceMetrics(latency_p95=0.050, error_rate=0.001),
        rollback_config=RollbackConfig(error_rate_threshold=0.01, min_requests_before_check=300),
        analysis_interval_seconds=0.25,
        stable_version="v1",
        upstream=s.canary.address,
    )
    args.update(kw)
    return s.manager.create_deployment(**args).deployment_id  # type: ignore[arg-type]


def test_canary_failing_five_percent_is_rolled_back_with_no_human_step(failing: Stack) -> None:
    s = failing
    dep_id = _create(s, steps=[25, 50, 100], step_duration_seconds=600.0)
    _wait(
        lambda: s.manager.get_deployment(dep_id).status is DeploymentStatus.ROLLED_BACK,
        60,
        "no rollback",
    )
    d = s.manager.get_deployment(dep_id)
    assert d.traffic_percentage == 25.0
    assert d.rollback_reasons[0].startswith("error rate 0.0")
    rolled = s.manager.get_events(dep_id)[-1]
    assert rolled.action == "rolled_back" and rolled.actor == "rollout-controller"
    assert rolled.details["source"] == "live" and rolled.details["measured"]["request_count"] >= 300
    assert 0.01 < rolled.details["measured"]["error_rate"] < 0.12
    # Afterwards the sidecar routes nothing to the canary.
    time.sleep(1.0)
    t0 = time.monotonic()
    _wait(lambda: len(s.traffic.since(t0)) >= 300, 30, "no traffic")
    after = s.traffic.since(t0)
    assert {r[2] for r in after} == {""}  # no route: the sidecar forwards as a plain proxy
    assert {r[1] for r in after} == {"OK"} and {r[3] for r in after} == {"v1"}


def test_blue_green_switch_and_switch_back_without_a_failed_request(healthy: Stack) -> None:
    s = healthy
    t0 = time.monotonic()
    dep_id = _create(s, strategy=DeploymentStrategy.BLUE_GREEN, step_duration_seconds=600.0,
                     rollback_config=RollbackConfig(min_requests_before_check=10))

    def served_by(variant: str) -> bool:
        t = time.monotonic()
        time.sleep(0.5)
        recent = s.traffic.since(t)
        return bool(recent) and {r[2] for r in recent} == {variant}

    _wait(lambda: served_by("blue"), 30, "blue never served")
    _wait(
        lambda: s.manager.get_deployment(dep_id).last_check is not None, 30, "green never checked"
    )
    s.manager.promote(dep_id, "ops@x.com", "preview looks good")  # the switch
    _wait(lambda: served_by("green"), 30, "never switched to green")
    s.manager.rollback(dep_id, "ops@x.com", "switch back drill")
    _wait(lambda: served_by(""), 30, "never switched back")  # no route left: plain forward
    calls = s.traffic.since(t0)
    assert len(calls) > 200
    assert {r[1] for r in calls} == {"OK"}
    assert {r[2] for r in calls} >= {"blue", "green"}


def test_healthy_canary_is_promoted_through_every_step_across_a_control_plane_kill9(
    healthy: Stack,
) -> None:
    s = healthy
    t0 = time.monotonic()
    dep_id = _create(
        s,
        rollback_config=RollbackConfig(error_rate_threshold=0.01, min_requests_before_check=10),
        step_duration_seconds=1.0,
    )
    _wait(lambda: s.manager.get_deployment(dep_id).step_index >= 2, 60, "never reached step 2")
    s.server.kill9()
    time.sleep(1.0)
    s.server = start_server(s.server.data_dir, listen=s.server.address)
    s.manager = DeploymentManager(s.server.url)
    _wait(
        lambda: not s.manager.get_deployment(dep_id).active,
        90,
        "rollout never finished after restart",
    )
    d = s.manager.get_deployment(dep_id)
    assert d.status is DeploymentStatus.COMPLETED
    events = s.manager.get_events(dep_id)
    assert [e.action for e in events] == [
        "created",
        "advanced",
        "advanced",
        "advanced",
        "advanced",
        "promoted",
    ]
    assert [e.traffic_percentage for e in events] == [5.0, 10.0, 25.0, 50.0, 100.0, 100.0]
    assert all(e.details["source"] == "live" and e.details["verdict"] == "pass" for e in events[1:])
    assert ModelRegistry(s.server.url).get_model_version("m", "v2").stage is ModelStage.PRODUCTION
    time.sleep(1.0)
    t1 = time.monotonic()
    _wait(lambda: len(s.traffic.since(t1)) >= 200, 30, "no traffic")
    assert {r[3] for r in s.traffic.since(t1)} == {"v2"}  # pinned to the promoted version
    # The sidecar kept serving on its last table while the control plane was gone.
    assert {r[1] for r in s.traffic.since(t0)} == {"OK"}


def test_rollback_is_not_lost_when_the_control_plane_dies_before_judging(failing: Stack) -> None:
    s = failing
    dep_id = _create(s, steps=[50, 100], step_duration_seconds=600.0, analysis_interval_seconds=4.0)
    created = time.monotonic()
    time.sleep(2.5)  # bad batches reach the store, the first check is not due yet
    s.server.kill9()
    assert time.monotonic() - created < 4.0
    assert s.manager  # the old connection is dead; a new one after restart
    s.server = start_server(s.server.data_dir, listen=s.server.address)
    s.manager = DeploymentManager(s.server.url)
    _wait(
        lambda: s.manager.get_deployment(dep_id).status is DeploymentStatus.ROLLED_BACK,
        60,
        "rollback lost",
    )
    assert s.manager.get_events(dep_id)[-1].details["measured"]["request_count"] >= 300


def test_shadow_deploy_mirrors_through_the_sidecar_into_the_same_comparison(healthy: Stack) -> None:
    s = healthy
    shadow = s.manager.shadow_deploy(
        "m:v1", "m:v2", traffic_percentage=100.0, created_by="ds@x.com", upstream=s.canary.address
    )
    _wait(
        lambda: s.manager.compare_shadow_deployment(shadow.shadow_id)["n"] >= 100,
        60,
        "nothing mirrored",
    )
    auto = s.manager.compare_shadow_deployment(shadow.shadow_id)
    assert auto["agreement_rate"] == 1.0  # the same model behind both upstreams
    assert auto["shadow_latency"]["p95"] is not None and auto["primary_latency"]["p95"] is not None
    # Agreement and errors decide here; latency ratios on a loaded 2-core box are not the point.
    judged = s.manager.compare_shadow_deployment(shadow.shadow_id, max_latency_ratio=100.0)
    assert judged["verdict"] == "pass", judged["reasons"]
    s.manager.stop_shadow(shadow.shadow_id, "ds@x.com")
    # The sidecar drops the shadow from its table, then flushes its last windows: wait until quiet.
    counts = [-2, -1]
    while counts[-1] != counts[-2]:
        time.sleep(1.0)
        counts.append(s.manager.compare_shadow_deployment(shadow.shadow_id)["n"])
    before = counts[-1]
    s.manager.record_shadow_comparison(
        shadow.shadow_id, {"y": 1}, {"y": 2}, 0.01, 0.02
    )  # the seed's form
    after = s.manager.compare_shadow_deployment(shadow.shadow_id)
    assert after["n"] == before + 1 and after["disagreement_samples"][-1]["shadow"] == {"y": 2}
