"""The demo's A/B test: a prediction service asks the control plane for each user's arm,
calls that version's model server, and reports the simulated business outcome."""

from __future__ import annotations

import hashlib
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from neural.mlops.cli._demo_traffic import MODEL, MODEL_INFER, infer_request
from neural.mlops.cli._progress import Live

if TYPE_CHECKING:
    from neural.mlops.cli.demo import Pace


def _converts(user: str, variant: str) -> bool:
    """The simulated business outcome: v2 converts 15% of users, v1 10%."""
    u = int.from_bytes(hashlib.sha256(f"demo-outcome:{user}".encode()).digest()[:8], "big") / 2**64
    return u < (0.15 if variant == "treatment" else 0.10)


def ab_phase(target: str, models: dict[str, str], pace: Pace, live: Live) -> str:
    """A prediction service asks for each user's arm, calls that version's model server,
    and reports the outcome; the sequential test may be watched after every batch."""
    import grpc

    from neural.mlops.ab_testing import ABTestManager
    from neural.mlops.v1 import oip_pb2
    from neural.mlops.v1.assignment import assign

    live.line("")
    live.line("2. A/B TEST: v2 (treatment) against v1 (control), 50/50, sequential decision rule")
    channels = {v: grpc.insecure_channel(models[v]) for v in ("v1", "v2")}
    calls = {
        v: ch.unary_unary(
            MODEL_INFER,
            request_serializer=oip_pb2.ModelInferRequest.SerializeToString,
            response_deserializer=oip_pb2.ModelInferResponse.FromString,
        )
        for v, ch in channels.items()
    }
    req = infer_request()
    verdict = "no verdict"
    pool = ThreadPoolExecutor(max_workers=6, thread_name_prefix="demo-app")
    try:
        with ABTestManager(target) as ab:
            test = ab.create_test(
                name="fraud_detector v2 vs v1",
                description="demo",
                control_variant=f"{MODEL}:v1",
                treatment_variant=f"{MODEL}:v2",
                traffic_split=0.5,
                created_by="ml_engineer@company.com",
                decision_rule="sequential",
                minimum_detectable_effect=0.2,
            )
            ab.start_test(test.test_id)
            weights = [v.weight for v in test.variants]
            names = [v.name for v in test.variants]
            version_of = {"treatment": "v2", "control": "v1"}
            users = 0
            analysis: dict[str, Any] = {}

            def serve_user(user: str) -> dict[str, Any]:
                arm = names[assign(test.test_id, user, weights)]
                t0 = time.perf_counter()
                ok = True
                try:
                    calls[version_of[arm]](req, timeout=5, metadata=(("x-user-id", user),))
                except grpc.RpcError:
                    ok = False
                return {
                    "variant": arm,
                    "user_id": user,
                    "latency": time.perf_counter() - t0,
                    "success": ok and _converts(user, arm),
                    "error": not ok,
                }

            while users < pace.max_ab_users:
                batch = list(pool.map(serve_user, (f"customer{users + i}" for i in range(250))))
                users += len(batch)
                ab.record_requests(test.test_id, batch)
                batch = []
                analysis = ab.analyze_test(test.test_id)
                c, t = analysis["control"], analysis["treatment"]
                rec = analysis["recommendation"]
                p = analysis.get("sequential", {}).get("p_value", analysis.get("p_value"))
                live.status(
                    f"   users {users:6d} | control {c['success_rate'] or 0:6.2%} (n={c['n']}) | "
                    f"treatment {t['success_rate'] or 0:6.2%} (n={t['n']}) | "
                    f"always-valid p {p if p is not None else float('nan'):.3g} | {rec['action']}"
                )
                if rec["action"] != "keep_running":
                    break
            rec = analysis["recommendation"]
            live.settle()
            live.line(f"   verdict after {users} users: {rec['action']} ({rec['reason']})")
            if rec["action"] in ("ship_treatment", "keep_control"):
                done = ab.conclude_test(
                    test.test_id, reason="demo: sequential test reached a verdict"
                )
                live.line(f"   concluded {test.test_id}: winner {done.winner}")
                lift = analysis.get("improvement", {}).get("relative_improvement")
                verdict = f"{rec['action']} after {users} users" + (
                    f", lift {lift:+.1f}%" if lift else ""
                )
            else:
                ab.stop_test(test.test_id, "demo: no verdict within the user budget")
                verdict = f"no verdict after {users} users"
    finally:
        pool.shutdown()
        for ch in channels.values():
            ch.close()
    return verdict
