"""``neural-mlops ab``: the full flow from a terminal, with JSON output and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from neural.mlops.cli import main


def _json(capsys: pytest.CaptureFixture[str], *argv: str) -> object:
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_ab_cli_flow(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    t = ["--target", str(tmp_path / "store")]
    test = _json(
        capsys,
        "ab",
        "create",
        *t,
        "--name",
        "cli",
        "--control",
        "m:v1",
        "--treatment",
        "m:v2",
        "--split",
        "0.5",
        "--created-by",
        "ds@example.com",
    )
    tid = test["test_id"]
    assert test["status"] == "draft" and test["created_by"] == "ds@example.com"
    assert main(["ab", "start", *t, tid]) == 0
    capsys.readouterr()
    assigned = _json(capsys, "ab", "assign", *t, tid, "user-7")
    assert assigned["variant"] in ("control", "treatment")
    for variant, ok in (("treatment", "yes"), ("control", "no")):
        assert (
            main(
                [
                    "ab",
                    "record",
                    *t,
                    tid,
                    "--variant",
                    variant,
                    "--success",
                    ok,
                    "--latency",
                    "0.04",
                    "--metric",
                    "accuracy=0.9",
                ]
            )
            == 0
        )
    capsys.readouterr()
    credited = _json(capsys, "ab", "record", *t, tid, "--user-id", "user-7", "--outcome")
    assert credited["variant"] == assigned["variant"]
    analysis = _json(capsys, "ab", "analyze", *t, tid)
    assert analysis["treatment"]["n"] == 1 and analysis["control"]["n"] == 1
    assert analysis["recommendation"]["action"] == "keep_running"
    assert main(["ab", "analyze", *t, tid]) == 0
    assert "recommendation" in capsys.readouterr().out
    # shrinking a running split is refused (exit code of FAILED_PRECONDITION), nothing changes
    assert main(["ab", "split", *t, tid, "0.2"]) == 5
    assert "explicit" in capsys.readouterr().err
    assert _json(capsys, "ab", "show", *t, tid)["traffic_split"] == 0.5
    assert main(["ab", "create", *t, "--name", "bad", "--control", "m:v1", "--treatment", "m:v2",
                 "--split", "2"]) == 2
    assert "traffic_split" in capsys.readouterr().err
    lines = tmp_path / "requests.jsonl"
    lines.write_text(
        "\n".join(
            json.dumps({"variant": "control", "success": i % 2 == 0, "latency": 0.01})
            for i in range(10)
        )
        + "\n"
    )
    assert _json(capsys, "ab", "record", *t, tid, "--file", str(lines))["recorded"] == 10
    forced = _json(capsys, "ab", "force", *t, tid, "qa-1", "treatment")
    assert forced["forced_variants"] == {"qa-1": "treatment"}
    assert _json(capsys, "ab", "assign", *t, tid, "qa-1")["variant"] == "treatment"
    assert _json(capsys, "ab", "force", *t, tid, "qa-1", "--clear")["forced_variants"] == {}
    done = _json(capsys, "ab", "conclude", *t, tid, "--winner", "treatment")
    assert done["status"] == "concluded" and done["winner"] == "treatment"
    listed = _json(capsys, "ab", "list", *t)
    assert [x["test_id"] for x in listed["tests"]] == [tid]
