"""Covariates for CUPED through the Python API and the CLI, the same embedded and remote."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from support.processes import ServerProcess, start_server

from neural.mlops.ab_testing import ABTestManager
from neural.mlops.cli import main
from neural.mlops.errors import FailedPrecondition, InvalidArgument


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = start_server(tmp_path_factory.mktemp("units-server"))
    yield srv
    srv.stop()


@pytest.fixture(params=["embedded", "remote"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "embedded":
        return str(tmp_path / "store")
    return request.getfixturevalue("shared_server").url


def _traffic(rng: np.random.Generator, users: int) -> tuple[list[dict], dict[str, float]]:
    """Users whose pre-period activity predicts their success rate in the test."""
    records, before = [], {}
    for u in range(users):
        skill = float(rng.beta(2, 5))
        before[f"user{u}"] = skill * 20 + float(rng.normal(0, 0.5))
        records += [{"user_id": f"user{u}", "success": bool(rng.random() < skill),
                     "latency": 0.01} for _ in range(int(rng.geometric(0.2)))]
    return records, before


def test_covariates_reduce_the_variance_alike_embedded_and_remote(target: str) -> None:
    rng = np.random.default_rng(11)
    records, before = _traffic(rng, 200)
    with ABTestManager(target) as m:
        tid = m.create_test(name="cuped", control_variant="m:1", treatment_variant="m:2").test_id
        assert m.set_covariates(tid, dict(list(before.items())[:50])) == 50  # before traffic
        m.start_test(tid)
        m.record_requests(tid, records)
        assert m.set_covariates(tid, dict(list(before.items())[50:])) == 150  # after
        a = m.analyze_test(tid)
        for bad, field in (({"": 1.0}, "covariates"), ({"u": float("nan")}, "covariates.u"),
                           ({"u": "high"}, "covariates.u")):
            with pytest.raises(InvalidArgument) as exc:
                m.set_covariates(tid, bad)
            assert exc.value.field == field
        m.conclude_test(tid, "control")
        with pytest.raises(FailedPrecondition):
            m.set_covariates(tid, {"user1": 1.0})
    cuped = a["analysis_unit"]["cuped"]["treatment:success_rate"]
    assert cuped["variance_reduction"] > 0.15


def test_ab_covariates_reads_a_csv_file_in_both_modes(target: str, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(12)
    records, before = _traffic(rng, 120)
    path = tmp_path / "pre_period.csv"
    path.write_text("unit_id,visits\n" + "".join(f"{u},{x}\n" for u, x in before.items()),
                    encoding="utf-8")
    with ABTestManager(target) as m:
        tid = m.create_test(name="cuped cli", control_variant="m:1",
                            treatment_variant="m:2").test_id
        m.start_test(tid)
        m.record_requests(tid, records)
    assert main(["ab", "covariates", "--target", target, tid, str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"stored": 120}
    with ABTestManager(target) as m:
        a = m.analyze_test(tid)
    assert a["analysis_unit"]["cuped"]["treatment:success_rate"]["variance_reduction"] > 0.15
    bad = tmp_path / "bad.csv"
    bad.write_text("unit_id,visits\nuser1,3\nuser2,lots\n", encoding="utf-8")
    assert main(["ab", "covariates", "--target", target, tid, str(bad)]) != 0
    assert "bad.csv:3" in capsys.readouterr().err


def test_ab_create_takes_guardrails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ab", "create", "--target", str(tmp_path / "s"), "--name", "g", "--control",
                 "m:1", "--treatment", "m:2", "--guardrail", "error_rate",
                 "--guardrail", "revenue:decrease:0.05", "--json"]) == 0
    test = json.loads(capsys.readouterr().out)
    assert test["guardrails"] == [
        {"metric": "error_rate", "direction": "increase", "tolerance": 0.0},
        {"metric": "revenue", "direction": "decrease", "tolerance": 0.05}]
