"""`neural-mlops registry` as a user runs it: tables, --json, one-line errors, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from support.processes import ServerProcess


def cli(*args: str, target: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "neural.mlops", "registry", *args, "--target", target],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_registry_cli_round_trip_remote(server: ServerProcess, tmp_path: Path) -> None:
    model = tmp_path / "m.bin"
    model.write_bytes(b"weights" * 100)
    t = server.url
    r = cli("register", "churn", "1", "--model-path", str(model), "--created-by", "ds@x.com",
            "--metric", "accuracy=0.81", "--tag", "tabular", "--json", target=t)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["artifact"]["size_bytes"] == 700
    assert cli("register", "churn", "2", "--created-by", "ds@x.com", "--metric", "accuracy=0.86",
               target=t).returncode == 0
    assert (
        cli(
            "request-promotion",
            "churn",
            "2",
            "--requested-by",
            "ml@x.com",
            "--reviewer",
            "boss@x.com",
            target=t,
        ).returncode
        == 0
    )
    pending = json.loads(cli("pending", "--json", target=t).stdout)
    assert [p["version"] for p in pending] == ["2"]
    r = cli("approve", "churn", "2", "--approver", "ml@x.com", target=t)
    assert r.returncode == 6 and r.stderr.count("\n") == 1 and "permission denied" in r.stderr
    assert (
        cli(
            "approve", "churn", "2", "--approver", "boss@x.com", "--comment", "ok", target=t
        ).returncode
        == 0
    )
    table = cli("list", "churn", target=t).stdout
    assert "production" in table.splitlines()[2] and table.splitlines()[0].startswith("NAME")
    cmp = json.loads(cli("compare", "churn", "1", "2", "--json", target=t).stdout)
    assert abs(cmp["metrics_comparison"]["accuracy"]["difference"] - 0.05) < 1e-12
    found = json.loads(cli("search", "--where", "accuracy > 0.85", "--json", target=t).stdout)
    assert [v["version"] for v in found["versions"]] == ["2"]
    assert (
        cli("alias", "set", "churn", "champion", "2", "--actor", "ml@x.com", target=t).returncode
        == 0
    )
    assert (
        json.loads(cli("show", "churn", "@champion", "--json", target=t).stdout)["version"] == "2"
    )
    out = tmp_path / "dl"
    out.mkdir()
    assert cli("download", "churn", "1", "-o", str(out), target=t).returncode == 0
    assert (out / "m.bin").read_bytes() == model.read_bytes()
    missing = cli("show", "churn", "9", target=t)
    assert missing.returncode == 3 and "churn:9 does not exist" in missing.stderr
    bad = cli("register", "churn", "../3", "--created-by", "ds@x.com", target=t)
    assert bad.returncode == 2 and "version" in bad.stderr


def test_registry_cli_embedded_store(tmp_path: Path) -> None:
    target = str(tmp_path / "store")
    assert (
        cli(
            "register", "m", "1", "--created-by", "a@x.com", "--metric", "auc=0.7", target=target
        ).returncode
        == 0
    )
    dup = cli("register", "m", "1", "--created-by", "a@x.com", target=target)
    assert dup.returncode == 4 and "already exists" in dup.stderr
    history = cli("history", "m", "--json", target=target)
    assert json.loads(history.stdout) == []
