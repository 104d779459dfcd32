"""``neural-mlops gate``: a candidate's metrics against limits and the PRODUCTION version."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from neural.mlops.cli import main
from neural.mlops.registry import ModelRegistry, ModelStage


def _promote(reg: ModelRegistry, name: str, version: str) -> None:
    reg.request_promotion(
        name, version, ModelStage.PRODUCTION, "ds@company.com", "ok", ["lead@company.com"]
    )
    reg.approve_promotion(name, version, "lead@company.com", "fine")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """An embedded store: fraud v1 in PRODUCTION, candidates v2 (worse) and v3 (better).
    Shared by the module: the gate only reads."""
    location = str(tmp_path_factory.mktemp("gate") / "store")
    reg = ModelRegistry(location)
    reg.register_model(
        "fraud",
        "v1",
        created_by="ds@company.com",
        metrics={"accuracy": 0.95, "f1": 0.90, "latency_p95": 0.040},
    )
    _promote(reg, "fraud", "v1")
    reg.register_model(
        "fraud",
        "v2",
        created_by="ds@company.com",
        metrics={"accuracy": 0.93, "f1": 0.91, "latency_p95": 0.047},
    )
    reg.register_model(
        "fraud", "v3", created_by="ds@company.com", metrics={"accuracy": 0.96, "latency_p95": 0.041}
    )
    return location


def gate(capsys: pytest.CaptureFixture[str], target: str, *args: str) -> tuple[int, str, str]:
    code = main(["gate", "--target", target, "--model", "fraud", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_candidate_within_limits_may_proceed(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = gate(
        capsys,
        store,
        "--candidate",
        "v3",
        "--min",
        "accuracy=0.9",
        "--max-regression",
        "accuracy=0.01",
    )
    assert code == 0, err
    assert "candidate v3 vs production v1" in out
    assert "PASS: fraud v3 may proceed" in out
    assert err == ""


def test_regression_against_production_fails_with_the_numbers(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = gate(
        capsys,
        store,
        "--candidate",
        "v2",
        "--min",
        "accuracy=0.9",
        "--max-regression",
        "accuracy=0.01",
    )
    assert code == 1
    assert (
        "gate failed: accuracy drops by 0.02 (from 0.95 in production to 0.93), "
        "more than the allowed 0.01" in err
    )
    assert "PASS" not in out


def test_relative_regression_and_lower_is_better(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # 0.95 -> 0.93 is a 2.1% drop: allowed at 3%, refused at 2%.
    assert gate(capsys, store, "--candidate", "v2", "--max-regression", "accuracy=3%")[0] == 0
    assert gate(capsys, store, "--candidate", "v2", "--max-regression", "accuracy=2%")[0] == 1
    # latency 0.040 -> 0.047 rises 0.007.
    code, _, err = gate(capsys, store, "--candidate", "v2", "--max-increase", "latency_p95=0.005")
    assert code == 1 and "latency_p95 rises by 0.007" in err
    assert gate(capsys, store, "--candidate", "v2", "--max-increase", "latency_p95=20%")[0] == 0
    code, _, err = gate(capsys, store, "--candidate", "v2", "--max", "latency_p95=0.045")
    assert code == 1 and "latency_p95 = 0.047 is above the maximum 0.045" in err


def test_missing_metric_fails_naming_what_exists(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = gate(capsys, store, "--candidate", "v3", "--min", "precision=0.5")
    assert code == 1
    assert "candidate v3 has no metric 'precision' (it has: accuracy, latency_p95)" in err
    # f1 exists in production but not on v3: a regression check cannot silently pass.
    code, _, err = gate(capsys, store, "--candidate", "v3", "--max-regression", "f1=0.01")
    assert code == 1 and "candidate v3 has no metric 'f1'" in err


def test_json_output_for_scripts(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = gate(
        capsys,
        store,
        "--candidate",
        "v2",
        "--min",
        "accuracy=0.9,f1=0.95",
        "--max-regression",
        "accuracy=0.01",
        "--json",
    )
    assert code == 1
    doc = json.loads(out)
    assert doc["passed"] is False and doc["baseline"] == "v1" and doc["candidate"] == "v2"
    assert [(c["kind"], c["metric"], c["passed"]) for c in doc["checks"]] == [
        ("min", "accuracy", True),
        ("min", "f1", False),
        ("max-regression", "accuracy", False),
    ]
    assert len(doc["reasons"]) == 2


def test_metrics_file_before_registration_and_first_release(
    store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps({"metrics": {"accuracy": 0.951, "note": "text is ignored"}}))
    code, out, _ = gate(
        capsys, store, "--candidate-metrics", str(metrics), "--max-regression", "accuracy=0"
    )
    assert code == 0 and "vs production v1" in out
    # A model never registered: no production version, regression checks are skipped...
    code = main(
        [
            "gate",
            "--target",
            store,
            "--model",
            "brand_new",
            "--candidate-metrics",
            str(metrics),
            "--min",
            "accuracy=0.9",
            "--max-regression",
            "accuracy=0.01",
        ]
    )
    out, _ = capsys.readouterr()
    assert code == 0 and "skip" in out and "no production version" in out
    # ...unless the pipeline insists on a baseline.
    code = main(
        [
            "gate",
            "--target",
            store,
            "--model",
            "brand_new",
            "--candidate-metrics",
            str(metrics),
            "--max-regression",
            "accuracy=0.01",
            "--require-baseline",
        ]
    )
    _, err = capsys.readouterr()
    assert code == 1 and "no PRODUCTION version to compare with" in err


def test_explicit_baseline(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = gate(
        capsys, store, "--candidate", "v2", "--baseline", "v3", "--max-regression", "accuracy=0.02"
    )
    assert code == 1 and "vs baseline v3" in out


@pytest.mark.parametrize(
    "args, expected, message",
    [
        (["--candidate", "v9", "--min", "accuracy=0.9"], 3, "fraud:v9"),
        (
            ["--candidate", "v2", "--min", "accuracy"],
            2,
            "--min: expected METRIC=VALUE, got 'accuracy'",
        ),
        (["--candidate", "v2", "--min", "accuracy=high"], 2, "--min: accuracy needs a number"),
        (["--candidate", "v2", "--min", "accuracy=5%"], 2, "a percentage only makes sense"),
        (["--candidate", "v2", "--max-regression", "accuracy=-1"], 2, "must be >= 0"),
        (["--candidate", "v2"], 2, "give at least one check"),
    ],
)
def test_bad_input_exits_non_zero_with_a_reason(
    store: str, capsys: pytest.CaptureFixture[str], args: list[str], expected: int, message: str
) -> None:
    code, _, err = gate(capsys, store, *args)
    assert code == expected
    assert message in err


def test_unreadable_metrics_file(
    store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    code, _, err = gate(capsys, store, "--candidate-metrics", str(bad), "--min", "accuracy=0.9")
    assert code == 2 and "cannot read" in err
    code, _, err = gate(
        capsys, store, "--candidate-metrics", str(tmp_path / "nope.json"), "--min", "accuracy=0.9"
    )
    assert code == 2 and "no such file" in err


def test_gate_against_a_remote_control_plane(server, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    reg = ModelRegistry(server.url)
    reg.register_model("fraud", "v1", created_by="ds@company.com", metrics={"accuracy": 0.95})
    _promote(reg, "fraud", "v1")
    reg.register_model("fraud", "v2", created_by="ds@company.com", metrics={"accuracy": 0.90})
    reg.close()
    base = ["--candidate", "v2", "--min", "accuracy=0.85"]
    code, _, err = gate(capsys, server.url, *base, "--max-regression", "accuracy=0.01")
    assert code == 1 and "accuracy drops by 0.05" in err
    # As a CI job runs it: the installed command, its exit status and output.
    ok = subprocess.run(
        [
            sys.executable,
            "-m",
            "neural.mlops",
            "gate",
            "--target",
            server.url,
            "--model",
            "fraud",
            *base,
            "--max-regression",
            "accuracy=0.1",
        ],
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stderr
    assert "PASS: fraud v2 may proceed" in ok.stdout


def test_gate_when_the_control_plane_is_down(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = gate(capsys, "grpc://127.0.0.1:9", "--candidate", "v2", "--min", "accuracy=0.9")
    assert code == 8 and "unavailable" in err
