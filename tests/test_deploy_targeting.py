"""Targeted rollouts and custom-metric health rules end to end: a real control plane, two demo
model servers emitting a custom metric, a real sidecar, live traffic.

* a canary targeted at ``x-country in [DE]`` splits only DE traffic; every other request
  stays on the stable version, and ``x-canary: always`` forces the canary (Argo's
  setHeaderRoute);
* custom-metric rules (threshold and canary-vs-stable comparison) pass a healthy canary
  through every step and roll a worse one back by themselves, recording the measured
  values and the deciding rule;
* invalid conditions, header routes and rules are refused on the wire naming the part.
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
from support.status import details  # noqa: E402

from neural.mlops.deployment import (  # noqa: E402
    DeploymentManager,
    DeploymentStatus,
    MetricRule,
    RollbackConfig,
)
from neural.mlops.registry import ModelRegistry, ModelStage  # noqa: E402
from neural.mlops.server.deployments.convert import rollback_to_pb  # noqa: E402
from neural.mlops.v1 import deployments_pb2 as dpb  # noqa: E402
from neural.mlops.v1 import oip_pb2, targeting_pb2  # noqa: E402
from neural.mlops.v1.deployments_pb2_grpc import DeploymentServiceStub  # noqa: E402

pytestmark = pytest.mark.storage  # the control plane's store is the engine under test

INFER = "/inference.GRPCInferenceService/ModelInfer"
Req = oip_pb2.ModelInferRequest
BIAS = 3.0  # the canary's outputs are 2x + 3: its output_mean metric is ~3 above the stable's


def _request(rng: random.Random) -> Req:
    arr = np.asarray([[rng.random() for _ in range(4)]], dtype="<f4")
    return Req(model_name="m", inputs=[Req.InferInputTensor(name="x", datatype="FP32",
                                                            shape=[1, 4])],
               raw_input_contents=[arr.tobytes()])


async def _calls(address: str, metadata: list[tuple[str, str]], n: int) -> list[tuple[str, str]]:
    """``n`` calls with ``metadata`` (plus a fresh x-user-id each): (variant, version)."""
    rng = random.Random()
    out = []
    async with grpc.aio.insecure_channel(address) as ch:
        stub = ch.unary_unary(INFER, request_serializer=Req.SerializeToString,
                              response_deserializer=oip_pb2.ModelInferResponse.FromString)
        for _ in range(n):
            md = (*metadata, ("x-user-id", f"u{rng.randrange(10**9)}"))
            call = stub(_request(rng), metadata=md, timeout=10)
            resp = await call
            trailers = dict(await call.trailing_metadata())
            out.append((str(trailers.get("x-neural-variant", "")), resp.model_version))
    return out


def calls(address: str, n: int, **headers: str) -> list[tuple[str, str]]:
    return asyncio.run(_calls(address, [(k.replace("_", "-"), v) for k, v in headers.items()], n))


@dataclass
class Traffic:
    """Background callers with random inputs (so the metric has a variance)."""

    address: str
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Traffic:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self._thread.start()
        return self

    async def _run(self) -> None:
        async def worker() -> None:
            while not self._stop.is_set():
                try:
                    await _calls(self.address, [], 20)
                except grpc.aio.AioRpcError:
                    await asyncio.sleep(0.05)

        await asyncio.gather(*(worker() for _ in range(4)))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(15)


@dataclass
class Stack:
    server: ServerProcess
    stable: Proc
    canary: Proc
    sidecar: Proc
    manager: DeploymentManager


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with ThreadPoolExecutor(3) as pool:
        f_server = pool.submit(start_server, tmp_path_factory.mktemp("cp"))
        f_stable = pool.submit(start_demo, "m", "--emit-metric")
        f_canary = pool.submit(start_demo, "m", "--emit-metric", "--bias", str(BIAS))
        server, stable, canary = f_server.result(), f_stable.result(), f_canary.result()
        f_sidecar = pool.submit(start_sidecar, stable.address, server.address,
                                "--flush-interval", "0.2")
        reg = ModelRegistry(server.url)
        for version in ("v1", "v2"):
            reg.register_model(name="m", version=version, artifact_uri=f"s3://m/{version}",
                               framework="sklearn", created_by="ds@x.com")
        reg.request_promotion(name="m", version="v2", target_stage=ModelStage.PRODUCTION,
                              requested_by="eng@x.com", justification="offline eval passed")
        reg.approve_promotion(name="m", version="v2", approver="boss@x.com")
        sidecar = f_sidecar.result()
    s = Stack(server, stable, canary, sidecar, DeploymentManager(server.url))
    try:
        yield s
    finally:
        for p in (sidecar, canary, stable):
            p.stop()
        server.stop()


def _wait(cond: Callable[[], bool], timeout: float, what: str,
          state: Callable[[], object] = lambda: "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.1)
    raise TimeoutError(f"{what} {state()}")


def _state(s: Stack, dep_id: str) -> Callable[[], object]:
    def show() -> object:
        d = s.manager.get_deployment(dep_id)
        c = d.last_check
        return (d.status, d.step_index, c and (c.verdict, c.reasons, c.tests))
    return show


def _create(s: Stack, **kw: object) -> str:
    args: dict[str, object] = dict(
        model_name="m", model_version="v2", strategy="canary", created_by="ops@x.com",
        stable_version="v1", upstream=s.canary.address, analysis_interval_seconds=0.25,
        steps=[50, 100], step_duration_seconds=600.0,
    )
    args.update(kw)
    return s.manager.create_deployment(**args).deployment_id  # type: ignore[arg-type]


def _end(s: Stack, dep_id: str) -> None:
    if s.manager.get_deployment(dep_id).active:
        s.manager.abort(dep_id, "ops@x.com", "test over")


def test_a_targeted_canary_splits_only_matching_traffic_and_a_header_forces_it(
        stack: Stack) -> None:
    s = stack
    dep_id = _create(
        s, targeting=["x-country in [DE]"], header_routes=[("x-canary", "always", "canary")],
        rollback_config=RollbackConfig(min_requests_before_check=10**9),  # never decides
    )
    try:
        d = s.manager.get_deployment(dep_id)
        assert d.targeting == ("x-country in [DE]",)
        assert d.header_routes == (("x-canary", "always", "canary"),)
        warm_up = 0

        def routed() -> bool:
            nonlocal warm_up
            warm_up += 20
            return any(v == "canary" for v, _ in calls(s.sidecar.address, 20, x_country="DE"))

        _wait(routed, 30, "the sidecar never routed DE traffic to the canary")
        de = calls(s.sidecar.address, 300, x_country="DE")
        share = sum(v == "canary" for v, _ in de) / len(de)
        assert 0.35 < share < 0.65, share  # the 50 % step, DE only
        assert {ver for v, ver in de if v == "canary"} == {"v2"}
        assert {ver for v, ver in de if v == "stable"} == {"v1"}
        for headers in ({"x_country": "FR"}, {}, {"x_country": "de"},
                        {"x_country": "FR", "x_canary": "never"}):
            others = calls(s.sidecar.address, 150, **headers)
            # Served by the stable version, labelled and counted apart from the rollout.
            assert {v for v, _ in others} == {"untargeted"}, headers
            assert {ver for _, ver in others} == {"v1"}
        forced = calls(s.sidecar.address, 100, x_country="FR", x_canary="always")
        assert {v for v, _ in forced} == {"canary"} and {ver for _, ver in forced} == {"v2"}
        created = s.manager.get_events(dep_id)[0]
        assert created.details["targeting"] == ["x-country in [DE]"]

        # The step's windows hold the rollout's requests only (DE and header-forced): the
        # 600 requests the targeting left out are not in the stable's window.
        def judged() -> int:
            c = s.manager.get_deployment(dep_id).last_check
            return 0 if c is None or c.stable is None else (
                c.new.request_count + c.stable.request_count)

        _wait(lambda: judged() >= 400, 30, "the checks never saw the step's traffic")
        assert judged() <= warm_up + 400
    finally:
        _end(s, dep_id)


def _rolled_back(s: Stack, rules: list[MetricRule]) -> tuple[str, dict[str, object]]:
    traffic = Traffic(s.sidecar.address).start()
    try:
        dep_id = _create(s, rollback_config=RollbackConfig(min_requests_before_check=40,
                                                           metric_rules=rules))
        _wait(lambda: s.manager.get_deployment(dep_id).status is DeploymentStatus.ROLLED_BACK,
              60, "a failing custom metric never rolled the canary back", _state(s, dep_id))
    finally:
        traffic.stop()
    last = s.manager.get_events(dep_id)[-1]
    assert last.action == "rolled_back" and last.actor == "rollout-controller"
    return dep_id, last.details


def test_a_failing_custom_metric_threshold_rolls_the_canary_back(stack: Stack) -> None:
    rule = MetricRule("output_mean", kind="threshold", direction="lower", threshold=2.5,
                      min_samples=40)
    dep_id, details_ = _rolled_back(stack, [rule])
    tests = details_["tests"]
    assert isinstance(tests, dict)
    [measured] = tests["custom_metrics"]
    assert measured["verdict"] == "fail" and measured["n"] >= 40
    assert BIAS < measured["mean"] < BIAS + 2  # 2 * U(0,1) mean + 3
    assert tests["decided_by"] == ["metric_rules[0]"]
    assert details_["thresholds"]["metric_rules"][0]["threshold"] == 2.5  # type: ignore[index]
    d = stack.manager.get_deployment(dep_id)
    assert d.rollback_reasons[0].startswith("metric_rules[0] output_mean (threshold")
    # Afterwards everything is served by the stable version again.
    _wait(lambda: {ver for _, ver in calls(stack.sidecar.address, 30)} == {""}, 30,
          "traffic still reaches the canary")


def test_a_significantly_worse_canary_fails_the_comparison_and_rolls_back(stack: Stack) -> None:
    rule = MetricRule("output_mean", kind="comparison", direction="lower", max_degradation=0.5,
                      alpha=0.01, min_samples=40)
    _, details_ = _rolled_back(stack, [rule])
    tests = details_["tests"]
    assert isinstance(tests, dict)
    [m] = tests["custom_metrics"]
    assert m["verdict"] == "fail" and m["n"] >= 40 and m["n_stable"] >= 40
    assert m["degradation"] > 0.5 and m["p_value"] < 0.01
    assert m["mean"] - m["mean_stable"] == pytest.approx(BIAS, abs=0.6)
    assert tests["decided_by"] == ["metric_rules[0]"]


def test_passing_custom_metric_rules_let_the_canary_complete(stack: Stack) -> None:
    s = stack
    rules = [
        MetricRule("output_mean", kind="threshold", direction="lower", threshold=10.0,
                   min_samples=20),
        MetricRule("output_mean", kind="comparison", direction="higher", max_degradation=0.0,
                   min_samples=20),
    ]
    traffic = Traffic(s.sidecar.address).start()
    try:
        dep_id = _create(s, step_duration_seconds=0.5,
                         rollback_config=RollbackConfig(min_requests_before_check=20,
                                                        metric_rules=rules))
        _wait(lambda: not s.manager.get_deployment(dep_id).active, 60, "never completed",
              _state(s, dep_id))
    finally:
        traffic.stop()
    assert s.manager.get_deployment(dep_id).status is DeploymentStatus.COMPLETED
    judged = [e for e in s.manager.get_events(dep_id) if e.action in ("advanced", "promoted")]
    assert judged and all(e.details["verdict"] == "pass" for e in judged)
    for e in judged:
        measured = e.details["tests"]["custom_metrics"]
        assert [m["verdict"] for m in measured] == ["pass", "pass"]
        assert measured[0]["mean"] < 10.0 and measured[0]["n"] >= 20
        if e.action == "advanced":  # judged at 50 %: the canary's higher outputs are better
            assert measured[1]["mean"] > measured[1]["mean_stable"] and measured[1]["n_stable"]
        else:  # judged at 100 %: the stable serves nothing, only the threshold judges
            assert "stable serves no traffic" in measured[1]["skipped"]
    assert [e.action for e in judged] == ["advanced", "promoted"]


def _with_rule(rule: dpb.MetricRule) -> dpb.RollbackConfig:
    out = rollback_to_pb(RollbackConfig())  # the defaults, then one rule
    out.metric_rules.append(rule)
    return out


def _refused(server: ServerProcess, req: dpb.CreateDeploymentRequest) -> tuple[str, str]:
    with grpc.insecure_channel(server.address) as channel:
        with pytest.raises(grpc.RpcError) as err:
            DeploymentServiceStub(channel).CreateDeployment(req, timeout=20)
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    got = details(err.value)
    assert len(got.field_violations) == 1
    return got.field_violations[0][0], str(err.value.details())


def test_invalid_targeting_header_routes_and_rules_are_refused_naming_the_part(
        stack: Stack) -> None:
    s = stack
    ok = targeting_pb2.Condition(attribute="x-country", op=targeting_pb2.OPERATOR_IN,
                                 values=["DE"])
    cases = [
        ([ok, targeting_pb2.Condition(attribute="x-app-version",
                                      op=targeting_pb2.OPERATOR_VERSION_GTE,
                                      values=["four"])], {}, "targeting[1].values[0]"),
        ([targeting_pb2.Condition(attribute="X-Country", op=targeting_pb2.OPERATOR_EQ,
                                  values=["DE"])], {}, "targeting[0].attribute"),
        ([targeting_pb2.Condition(attribute="x-country")], {}, "targeting[0].op"),
        ([ok, targeting_pb2.Condition(attribute="x-plan", op=targeting_pb2.OPERATOR_EQ,
                                      values=["a", "b"])], {}, "targeting[1].values"),
        ([], {"header_routes": [targeting_pb2.HeaderRoute(header="x-canary", value="always",
                                                          variant="green")]},
         "header_routes[0].variant"),
        ([], {"rollback_config": _with_rule(dpb.MetricRule(
            metric="output_mean", direction=dpb.METRIC_DIRECTION_LOWER_IS_BETTER))},
         "rollback_config.metric_rules[0].kind"),
        ([], {"rollback_config": _with_rule(dpb.MetricRule(
            metric="output_mean", kind=dpb.METRIC_RULE_KIND_THRESHOLD,
            direction=dpb.METRIC_DIRECTION_LOWER_IS_BETTER))},
         "rollback_config.metric_rules[0].threshold"),
        ([], {"rollback_config": _with_rule(dpb.MetricRule(
            metric="output_mean", kind=dpb.METRIC_RULE_KIND_COMPARISON, alpha=1.5,
            direction=dpb.METRIC_DIRECTION_HIGHER_IS_BETTER))},
         "rollback_config.metric_rules[0].alpha"),
    ]
    for conds, extra, field_ in cases:
        req = dpb.CreateDeploymentRequest(
            model_name="m", model_version="v2", created_by="ops@x.com", stable_version="v1",
            strategy=dpb.DEPLOYMENT_STRATEGY_CANARY, targeting=conds, **extra)
        got, message = _refused(s.server, req)
        assert got == field_, (got, message)
        assert field_ in message
    # Nothing was created by the refusals.
    assert not s.manager.list_deployments("m", active_only=True)
