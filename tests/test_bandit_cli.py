"""``neural-mlops ab create --strategy bandit``: the bandit's options from a terminal, a
wrong one refused with exit code 2 naming it, and nothing created then."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from neural.mlops.cli import main


def test_ab_create_with_the_bandit_strategy_and_its_options(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    t = ["--target", str(tmp_path / "store")]
    base = ["ab", "create", *t, "--name", "b", "--control", "m:v1", "--treatment", "m:v2",
            "--strategy", "bandit"]
    assert main([*base, "--bandit-interval", "600", "--bandit-min-share", "0.2",
                 "--bandit-burn-in-units", "50", "--bandit-metric", "revenue",
                 "--bandit-metric-kind", "continuous", "--bandit-seed", "3", "--json"]) == 0
    test = json.loads(capsys.readouterr().out)
    assert test["strategy"] == "multi_armed_bandit"
    assert test["bandit"] == {"interval_seconds": 600.0, "burn_in_units": 50,
                              "burn_in_seconds": 0.0, "min_share": 0.2, "metric": "revenue",
                              "metric_kind": "continuous", "seed": 3, "minimize": False}
    assert main([*base, "--bandit-min-share", "0.8"]) == 2
    assert "bandit.min_share" in capsys.readouterr().err
    assert main(["ab", "create", *t, "--name", "h", "--control", "m:v1", "--treatment", "m:v2",
                 "--bandit-min-share", "0.1"]) == 2
    assert "multi_armed_bandit" in capsys.readouterr().err
    assert main(["ab", "list", *t, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [x["test_id"] for x in listed["tests"]] == [test["test_id"]]
