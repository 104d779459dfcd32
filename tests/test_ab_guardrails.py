"""Guardrail metrics stop an A/B test when the treatment is significantly worse."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from support.processes import ServerProcess, start_server

from neural.mlops.ab_testing import ABTestManager
from neural.mlops.server.errors import InvalidArgument
from neural.mlops.server.experiments.guardrails import Guardrail, evaluate, parse_guardrails
from neural.mlops.v1.traffic import VariantStats


def _traffic(rng: np.random.Generator, users: int, *, error_rate: float, latency: float,
             prefix: str) -> list[dict]:
    records = []
    for u in range(users):
        for _ in range(int(rng.geometric(0.25))):
            records.append({
                "user_id": f"{prefix}{u}", "success": bool(rng.random() < 0.3),
                "error": bool(rng.random() < error_rate),
                "latency": float(rng.lognormal(np.log(latency), 0.3)),
                "custom_metrics": {"revenue": float(rng.gamma(2.0, 5.0))},
            })
    return records


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = start_server(tmp_path_factory.mktemp("guardrails-server"))
    yield srv
    srv.stop()


@pytest.fixture(params=["embedded", "remote"])
def manager(request: pytest.FixtureRequest) -> Iterator[ABTestManager]:
    """The same behaviour on an embedded store and over gRPC."""
    if request.param == "embedded":
        with tempfile.TemporaryDirectory() as tmp:
            m = ABTestManager(str(Path(tmp) / "store"))
            yield m
            m.close()
    else:
        m = ABTestManager(request.getfixturevalue("shared_server").url)
        yield m
        m.close()


def _test(m: ABTestManager, guardrails: list) -> str:
    tid = m.create_test(name="guarded", control_variant="m:1", treatment_variant="m:2",
                        guardrails=guardrails).test_id
    m.start_test(tid)
    return tid


def test_a_significantly_worse_error_rate_stops_the_test_with_the_measured_values(manager):
    rng = np.random.default_rng(1)
    tid = _test(manager, ["error_rate", {"metric": "latency_p95", "tolerance": 0.1}])
    recs = [dict(r, variant="control") for r in _traffic(rng, 400, error_rate=0.01,
                                                         latency=0.02, prefix="c")]
    recs += [dict(r, variant="treatment") for r in _traffic(rng, 400, error_rate=0.08,
                                                            latency=0.02, prefix="t")]
    for i in range(0, len(recs), 5000):
        manager.record_requests(tid, recs[i:i + 5000])
    a = manager.analyze_test(tid)
    checks = {g["metric"]: g for g in a["guardrail_checks"]}
    assert checks["error_rate"]["violated"] and checks["error_rate"]["by"] == "unit"
    assert not checks["latency_p95"]["violated"]
    assert a["recommendation"]["action"] == "stop"
    assert "error_rate" in a["recommendation"]["reason"]
    assert f"{checks['error_rate']['treatment']:.4g}" in a["recommendation"]["reason"]
    test = manager.get_test(tid)
    assert test.status.value == "stopped"
    assert a["status"] == "stopped"


def test_p95_latency_and_custom_metric_guardrails(manager):
    rng = np.random.default_rng(2)
    tid = _test(manager, [{"metric": "latency_p95", "tolerance": 0.1},
                          {"metric": "revenue", "direction": "decrease", "tolerance": 0.05}])
    recs = [dict(r, variant="control") for r in _traffic(rng, 300, error_rate=0.0,
                                                         latency=0.02, prefix="c")]
    slow = _traffic(rng, 300, error_rate=0.0, latency=0.04, prefix="t")
    recs += [dict(r, variant="treatment") for r in slow]
    manager.record_requests(tid, recs)
    a = manager.analyze_test(tid)
    checks = {g["metric"]: g for g in a["guardrail_checks"]}
    assert checks["latency_p95"]["violated"]
    assert checks["latency_p95"]["treatment"] > 1.5 * checks["latency_p95"]["control"]
    assert not checks["revenue"]["violated"]
    assert manager.get_test(tid).status.value == "stopped"


def test_no_violation_keeps_the_test_running(manager):
    rng = np.random.default_rng(3)
    tid = _test(manager, ["error_rate", "latency_p95", "revenue"])
    recs = [dict(r, variant=v) for v in ("control", "treatment")
            for r in _traffic(rng, 200, error_rate=0.02, latency=0.02, prefix=v)]
    manager.record_requests(tid, recs)
    a = manager.analyze_test(tid)
    assert len(a["guardrail_checks"]) == 3
    assert not any(g["violated"] for g in a["guardrail_checks"])
    assert manager.get_test(tid).status.value == "running"


def test_guardrails_are_kept_on_the_test_and_invalid_ones_refused_alike(manager):
    test = manager.create_test(name="kept", control_variant="m:1", treatment_variant="m:2",
                               guardrails=["error_rate", {"metric": "revenue",
                                                          "direction": "decrease",
                                                          "tolerance": 0.05}])
    assert test.guardrails == (Guardrail("error_rate"), Guardrail("revenue", "decrease", 0.05))
    assert manager.get_test(test.test_id).guardrails == test.guardrails
    with pytest.raises(InvalidArgument) as exc:
        manager.create_test(name="bad", control_variant="m:1", treatment_variant="m:2",
                            guardrails=[{"metric": "error_rate", "direction": "sideways"}])
    assert exc.value.field == "guardrails"


def test_guardrail_specs_are_validated():
    assert parse_guardrails(["error_rate"]) == (Guardrail("error_rate"),)
    for bad in ([{"metric": "x", "direction": "sideways"}], [{"metric": "x", "tolerance": -1}],
                ["x", "x"], [42]):
        with pytest.raises(InvalidArgument):
            parse_guardrails(bad)


def test_aa_guardrails_rarely_fire():
    """Request-level data with no difference: the guardrail's false alarm rate is <= alpha."""
    rng = np.random.default_rng(4)
    fired = 0
    for _ in range(300):
        c = VariantStats(count=2000, errors=int(rng.binomial(2000, 0.05)))
        t = VariantStats(count=2000, errors=int(rng.binomial(2000, 0.05)))
        fired += evaluate([Guardrail("error_rate")], c, t, 0.95)[0].violated
    assert fired / 300 <= 0.05
