"""``neural-mlops status``: models, running tests and active deployments with their split."""

from __future__ import annotations

import json
from concurrent import futures

import grpc
import pytest

from neural.mlops.ab_testing import ABTestManager
from neural.mlops.cli import main
from neural.mlops.deployment import DeploymentManager, DeploymentStrategy, RollbackConfig
from neural.mlops.registry import ModelRegistry, ModelStage


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_status_shows_models_tests_and_live_split(
    server, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    t = server.url
    with ModelRegistry(t) as reg:
        for version, acc in (("v1", 0.94), ("v2", 0.95)):
            reg.register_model(
                "fraud", version, created_by="ds@company.com", metrics={"accuracy": acc}
            )
            reg.request_promotion("fraud", version, ModelStage.PRODUCTION, "ds@company.com", "ok")
            reg.approve_promotion("fraud", version, "lead@company.com", "ok")
        reg.register_model("fraud", "v3", created_by="ds@company.com", metrics={"accuracy": 0.97})
        reg.request_promotion("fraud", "v3", ModelStage.PRODUCTION, "ds@company.com", "ok")
    with ABTestManager(t) as ab:
        test = ab.create_test(
            name="v3 vs v2",
            description="",
            control_variant="fraud:v2",
            treatment_variant="fraud:v3",
            traffic_split=0.25,
            created_by="ds@company.com",
        )
        ab.start_test(test.test_id)
        ab.record_requests(
            test.test_id,
            [{"variant": "control", "success": True, "latency": 0.03}] * 30
            + [{"variant": "treatment", "success": True, "latency": 0.03}] * 10,
        )
        draft = ab.create_test(
            name="draft",
            description="",
            control_variant="fraud:v2",
            treatment_variant="fraud:v3",
            created_by="ds@company.com",
        )
    with DeploymentManager(t) as dm:
        dep = dm.create_deployment(
            "fraud",
            "v2",
            DeploymentStrategy.CANARY,
            created_by="ops@company.com",
            steps=[10, 100],
            step_duration_seconds=3600,
            rollback_config=RollbackConfig(min_requests_before_check=10**6),
        )

    code, out, err = run(capsys, "status", "--target", t)
    assert code == 0, err
    assert "fraud  3" in out and "v2" in out  # 3 versions, v2 in production
    assert test.test_id in out and "treatment 25% control 75%" in out
    assert "control=30 treatment=10" in out
    assert draft.test_id not in out  # only running/paused tests
    assert dep.deployment_id in out and "canary [#---------]  10.0%" in out and "1/2" in out

    code, out, _ = run(capsys, "status", "--target", t, "--json")
    data = json.loads(out)
    assert data["unavailable"] == {}
    [model] = data["models"]
    assert model["production"] == "v2" and model["pending_approvals"] == ["v3"]
    [running] = data["tests"]
    assert running["split"] == {"treatment": 0.25, "control": 0.75}
    assert running["requests"] == {"control": 30, "treatment": 10}
    [active] = data["deployments"]
    assert active["split"] == {"canary": 10.0, "stable": 90.0}
    assert active["stable_version"] == "v1" and active["step"] == 1 and active["steps"] == 2

    code, out, _ = run(capsys, "status", "--target", t, "--model", "nothing_like_it", "--json")
    assert json.loads(out)["models"] == [] and json.loads(out)["deployments"] == []


def test_status_degrades_when_a_service_is_missing(capsys: pytest.CaptureFixture[str]) -> None:
    # A gRPC server that implements nothing: every section says so, the command still works.
    bare = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    port = bare.add_insecure_port("127.0.0.1:0")
    bare.start()
    try:
        code, out, err = run(capsys, "status", "--target", f"grpc://127.0.0.1:{port}")
    finally:
        bare.stop(0)
    assert code == 0, err
    assert out.count("unavailable: not offered by this control plane") == 3


def test_status_when_the_control_plane_is_down(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "status", "--target", "grpc://127.0.0.1:9")
    assert code == 8 and "unavailable" in err


def test_status_of_an_embedded_store(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = run(capsys, "status", "--target", str(tmp_path / "store"))
    assert code == 0
    assert out.count("  none") == 3


def _running_test(store: str, control: int, treatment: int, success_rate: float = 0.5) -> str:
    with ABTestManager(store) as ab:
        test = ab.create_test(
            name="split check", description="", control_variant="fraud:v1",
            treatment_variant="fraud:v2", traffic_split=0.5, created_by="ds@company.com",
        )
        ab.start_test(test.test_id)
        records = []
        for variant, n in (("control", control), ("treatment", treatment)):
            wins = round(n * success_rate)
            records += [{"variant": variant, "success": i < wins, "latency": 0.03}
                        for i in range(n)]
        ab.record_requests(test.test_id, records)
    return test.test_id


def test_status_names_the_sample_ratio_mismatch_that_stopped_a_test(
    tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    store = str(tmp_path / "store")
    test_id = _running_test(store, control=900, treatment=100)

    code, out, err = run(capsys, "status", "--target", store)
    assert code == 0, err
    [row] = [line for line in out.splitlines() if line.startswith(test_id)]
    assert "stop (sample ratio mismatch p=" in row
    # Not the comparison's p-value beside a verdict it did not decide.
    assert "stop (p=" not in row

    code, out, _ = run(capsys, "status", "--target", store, "--json")
    [t] = json.loads(out)["tests"]
    basis = t["analysis"]["decided_by"]
    assert t["analysis"]["action"] == "stop" and basis["check"] == "sample_ratio_mismatch"
    assert basis["p_value"] < 1e-6 and basis["p_value"] != t["analysis"]["p_value"]


def test_status_says_a_fixed_horizon_test_waits_for_its_planned_size(
    tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    store = str(tmp_path / "store")
    test_id = _running_test(store, control=50, treatment=50)

    code, out, err = run(capsys, "status", "--target", store)
    assert code == 0, err
    [row] = [line for line in out.splitlines() if line.startswith(test_id)]
    assert "keep_running (100 of " in row and "planned requests)" in row
