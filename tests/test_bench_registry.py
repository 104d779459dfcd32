"""benchmarks/registry_vs_mlflow.py: the --smoke mode really drives our server."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from support.peers import require_peer

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "registry_vs_mlflow.py"
SMOKE_N = {"register": 10, "get": 10, "search_tag": 2, "search_metric": 2, "promote": 2,
           "alias": 2, "register_lite": 2}


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("registry_vs_mlflow", BENCH)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _run(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], dict]:
    out = tmp_path / "result.json"
    done = subprocess.run([sys.executable, str(BENCH), "--smoke", "--json", str(out), *args],
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    return done, json.loads(out.read_text())


def test_smoke_runs_every_operation_against_a_real_server(tmp_path: Path) -> None:
    done, result = _run(tmp_path, "--mlflow", "skip")
    rows = {r["phase"]: r for r in result["rows"]}
    assert {p: r["n"] for p, r in rows.items()} == SMOKE_N
    for row in rows.values():
        assert len(row["ours_ops_per_s"]) == 1 and row["ours_ops_per_s"][0] > 0
        assert row["mlflow_ops_per_s"] == [] and row["ratio"] is None
    table = done.stdout
    for label in ("register (metrics+tags)", "get version", "search by tag", "search by metric",
                  "promotion", "set alias", "neural-mlops ops/s", "ours/MLflow"):
        assert label in table
    assert "skipped" in table


def test_workload_expectations_match_the_generated_data() -> None:
    bench = _load()
    w = bench.make_workload(bench.Sizes(versions=300, gets=50, searches=20, promotions=7), seed=3)
    regs = w["registrations"]
    assert len(regs) == 300 and len({(r["name"], r["version"]) for r in regs}) == 300
    assert len(w["tag_searches"]) == 10 and len(w["metric_searches"]) == 10
    for tag, want in zip(w["tag_searches"], w["expected"]["search_tag"], strict=True):
        assert want == min(100, sum(tag in r["tags"] for r in regs)) and want > 0
    # Promotions walk successive versions of each model, so each model ends with one in
    # PRODUCTION: 7 promotions over 3 models.
    assert w["expected"]["production"] == 3
    assert [p[1] for p in w["promotions"] if p[0] == "bench_model_0"] == ["1", "2", "3"]


def test_a_system_returning_wrong_results_fails_the_run() -> None:
    bench = _load()
    w = bench.make_workload(bench.Sizes(10, 10, 4, 2), seed=1)
    good = {"counts": dict(w["expected"])}
    bench.check_counts("x", good, w["expected"])
    bad = {"counts": {**w["expected"], "search_tag": [n + 1 for n in w["expected"]["search_tag"]]}}
    with pytest.raises(bench.BenchError, match="search_tag"):
        bench.check_counts("x", bad, w["expected"])


def test_bad_sizes_are_rejected_naming_the_option(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(BENCH), "--versions", "0", "--mlflow", "skip"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "--versions must be at least 1" in done.stderr


def test_smoke_against_mlflow_when_its_venv_exists(tmp_path: Path) -> None:
    bench = _load()
    # Optional even in CI: the MLflow virtualenv is large and only the benchmark needs it.
    require_peer(
        bench.mlflow_ready(bench.DEFAULT_VENV),
        f"MLflow virtualenv ({bench.DEFAULT_VENV})",
        "python benchmarks/registry_vs_mlflow.py (its first run creates it)",
        required_in_ci=False,
    )
    done, result = _run(tmp_path, "--mlflow", "require")
    assert result["mlflow_version"].startswith("3.")
    for row in result["rows"]:
        assert row["mlflow_ops_per_s"][0] > 0 and row["ratio"] > 0
    assert "MLflow 3." in done.stdout
