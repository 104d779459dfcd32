"""The product end to end: an A/B test created with the Python API on `neural-mlops serve`
steers a sidecar, and the sidecar's traffic is what the analysis counts."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from peers.procs import start_demo, start_sidecar  # noqa: E402
from test_sidecar_routing import _call_many  # noqa: E402

from neural.mlops.ab_testing import ABTestManager, TrafficSplitStrategy  # noqa: E402


def _wait(predicate, timeout: float) -> float:  # noqa: ANN001
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if predicate():
            return time.monotonic() - t0
        time.sleep(0.02)
    raise TimeoutError


def test_ab_test_on_the_control_plane_routes_the_sidecar_and_counts_its_traffic(server) -> None:  # noqa: ANN001
    model = start_demo("fraud_detector")
    sidecar = start_sidecar(model.address, server.address, "--flush-interval", "0.2")
    try:
        _wait(lambda: sidecar.health()["routing"] == "live", 20)  # the initial (empty) table
        with ABTestManager(server.url) as manager:
            test = manager.create_test(
                name="Model V2 A/B Test",
                description="sidecar end to end",
                control_variant="fraud_detector:v1.0.0",
                treatment_variant="fraud_detector:v2.0.0",
                traffic_split=0.1,
                strategy=TrafficSplitStrategy.HASH_BASED,
                created_by="ml_engineer@company.com",
            )
            before = sidecar.health()["table_version"]
            manager.start_test(test.test_id)
            assert _wait(lambda: sidecar.health()["table_version"] > before, 10) < 1.0

            users = [f"user{i}" for i in range(1000)]
            got = asyncio.run(_call_many(sidecar.address, users, model="fraud_detector"))
            for user, (version, variant) in zip(users, got, strict=True):
                expected = manager.get_variant(test.test_id, user_id=user)
                assert variant == expected
                assert version == ("v2.0.0" if expected == "treatment" else "v1.0.0")

            # Ramp-up on the control plane reaches the sidecar within a second.
            version = sidecar.health()["table_version"]
            manager.update_split(test.test_id, 0.5)
            assert _wait(lambda: sidecar.health()["table_version"] > version, 10) < 1.0
            sticky = asyncio.run(_call_many(sidecar.address, users, model="fraud_detector"))
            moved = [u for u, a, b in zip(users, got, sticky, strict=True) if a != b]
            assert all(
                a[1] == "control" for u, a in zip(users, got, strict=True) if u in set(moved)
            )

            # Every call through the sidecar is in the analysis, once.
            _wait(lambda: sidecar.health()["batches_pending"] == 0, 10)
            time.sleep(0.5)
            _wait(lambda: sidecar.health()["batches_pending"] == 0, 10)
            analysis = manager.analyze_test(test.test_id)
            assert analysis["control"]["n"] + analysis["treatment"]["n"] == 2000
    finally:
        sidecar.stop()
        model.stop()
