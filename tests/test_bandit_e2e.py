"""A multi-armed bandit end to end: a real control plane (`neural-mlops serve`), a sidecar
and a demo model. Units go through the sidecar, their conversions are recorded with the
arm the sidecar named, the control plane's loop reweights after the burn-in and pushes
the new split; the sidecar then sends new units mostly to the better arm while every
unit seen before keeps its arm."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from peers.procs import start_demo, start_sidecar  # noqa: E402
from test_sidecar_routing import _call_many  # noqa: E402

from neural.mlops.ab_testing import ABTestManager  # noqa: E402

CONVERSION = {"treatment": 0.35, "control": 0.05}


def _wait(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise TimeoutError(what)


def _arms(address: str, units: list[str]) -> dict[str, str]:
    got = asyncio.run(_call_many(address, list(units), model="shop"))
    return {u: variant for u, (_, variant) in zip(units, got, strict=True)}


def test_the_split_moves_to_the_better_arm_and_seen_units_keep_theirs(server: Any) -> None:
    model = start_demo("shop")
    sidecar = start_sidecar(model.address, server.address, "--flush-interval", "0.2")
    rng = np.random.default_rng(4)
    try:
        _wait(lambda: sidecar.health()["routing"] == "live", 20, "sidecar live")
        with ABTestManager(server.url) as m:
            test = m.create_test(
                name="bandit e2e", control_variant="shop:1", treatment_variant="shop:2",
                strategy="multi_armed_bandit",
                bandit={"interval_seconds": 1, "burn_in_units": 60, "min_share": 0.1,
                        "metric": "converted", "seed": 1})
            before = sidecar.health()["table_version"]
            m.start_test(test.test_id)
            _wait(lambda: sidecar.health()["table_version"] > before, 10, "test routed")
            started = sidecar.health()["table_version"]
            first = [f"early-{i}" for i in range(300)]
            arms = _arms(sidecar.address, first)
            assert set(arms.values()) == {"treatment", "control"}
            # The application's conversions, credited to the arm the sidecar named (one batch).
            m.record_requests(test.test_id, [
                {"variant": arm, "user_id": unit,
                 "custom_metrics": {"converted": float(rng.random() < CONVERSION[arm])}}
                for unit, arm in arms.items()])
            reweighted = _wait(lambda: m.get_test(test.test_id).weights["treatment"] > 0.5,
                               20, "the loop reweighted")
            assert reweighted
            weights = m.get_test(test.test_id).weights
            _wait(lambda: sidecar.health()["table_version"] > started, 10, "new split pushed")
            again = _arms(sidecar.address, first)
            newcomers = _arms(sidecar.address, [f"late-{i}" for i in range(300)])
            analysis = m.analyze_test(test.test_id)
            health = sidecar.health()
    finally:
        sidecar.stop()
        model.stop()
    assert weights["treatment"] == 0.9 and weights["control"] == 0.1
    assert again == arms  # sticky: nobody switched arms
    late_treatment = sum(a == "treatment" for a in newcomers.values()) / len(newcomers)
    assert late_treatment > 0.8  # ~0.9 by the new weights (binomial sd 0.017)
    history = analysis["bandit"]["weight_history"]
    assert history and history[0]["weights"] == {"treatment": 0.9, "control": 0.1}
    assert analysis["bandit"]["observations"]["treatment"] == sum(
        a == "treatment" for a in arms.values())
    assert health["sticky_units"] == 600
